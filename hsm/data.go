package hsm

import (
	"bytes"

	"github.com/miekg/pkcs11"
)

// MaxDataSize bounds the value of a data object (WriteData, ReadData).
const MaxDataSize = 1 << 16

// Data objects are token objects of class CKO_DATA, private (readable only
// after login) and found by CKA_LABEL: small public records the node keeps
// beside its identity keys, such as its domain anchor. They are not secret
// but their integrity matters; the token keeps them with its other objects.

func dataTemplate(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
}

// Some modules keep no private or token data objects: NSS's softoken
// answers CKR_ATTRIBUTE_VALUE_INVALID to any CKO_DATA object with CKA_TOKEN
// or CKA_PRIVATE true. On those the record is a token secret key instead
// (CKK_GENERIC_SECRET, private, sensitive, usable for nothing, a random
// CKA_ID), which such a module keeps encrypted under the user PIN like its
// other keys. Its value cannot be read as an
// attribute (NSS never returns CKA_VALUE of a token key), so ReadData wraps
// it under a fresh session AES key (CKM_AES_CBC_PAD) and decrypts the result
// with the same key, both inside the token. Reads look for both forms, so a
// label names one record whichever form it took.

func holderTemplate(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
}

// dataObject is a record found in the token: its handle, and whether it is
// a key standing in for a data object.
type dataObject struct {
	h      pkcs11.ObjectHandle
	holder bool
}

// findAll returns the handles of at most n objects matching template.
// Every object the package looks up by template is private, and a session
// that is not logged in sees no private object: C_FindObjects then answers
// nothing rather than an error. So when nothing matches, findAll checks
// the session's login state (restoreLogin) and, if the login had lapsed,
// searches once more after logging in again; a login it cannot restore
// fails with ErrNotLoggedIn, never with an empty answer.
func (t *Token) findAll(s pkcs11.SessionHandle, template []*pkcs11.Attribute, n int) ([]pkcs11.ObjectHandle, error) {
	hs, err := t.findObjects(s, template, n)
	if err != nil || len(hs) > 0 {
		return hs, err
	}
	relogged, err := t.restoreLogin(s)
	if err != nil || !relogged {
		return nil, err
	}
	return t.findObjects(s, template, n)
}

// findObjects is one C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal.
func (t *Token) findObjects(s pkcs11.SessionHandle, template []*pkcs11.Attribute, n int) ([]pkcs11.ObjectHandle, error) {
	if err := t.ctx.FindObjectsInit(s, template); err != nil {
		return nil, err
	}
	hs, _, err := t.ctx.FindObjects(s, n)
	if ferr := t.ctx.FindObjectsFinal(s); err == nil {
		err = ferr
	}
	return hs, err
}

// findRecords returns at most n records labelled label, data objects
// first.
func (t *Token) findRecords(s pkcs11.SessionHandle, label string, n int) ([]dataObject, error) {
	var out []dataObject
	for _, holder := range []bool{false, true} {
		template := dataTemplate(label)
		if holder {
			template = holderTemplate(label)
		}
		hs, err := t.findAll(s, template, n-len(out))
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			out = append(out, dataObject{h: h, holder: holder})
		}
		if len(out) >= n {
			break
		}
	}
	return out, nil
}

// findData returns the one record labelled label: ErrObjectNotFound if
// none, ErrObjectAmbiguous if several.
func (t *Token) findData(s pkcs11.SessionHandle, label string) (dataObject, error) {
	const op = "find data object"
	recs, err := t.findRecords(s, label, 2)
	if err != nil {
		return dataObject{}, err
	}
	switch len(recs) {
	case 0:
		return dataObject{}, fail(op, ErrObjectNotFound, "")
	case 1:
		return recs[0], nil
	}
	return dataObject{}, fail(op, ErrObjectAmbiguous, "more than one object with the label")
}

// value reads a record's value.
func (t *Token) value(s pkcs11.SessionHandle, rec dataObject) ([]byte, error) {
	if !rec.holder {
		attrs, err := t.ctx.GetAttributeValue(s, rec.h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return nil, err
		}
		return bytes.Clone(attrs[0].Value), nil
	}
	// A session key of this session only, destroyed before returning.
	k, err := t.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, symKeyLen),
	})
	if err != nil {
		return nil, err
	}
	defer t.ctx.DestroyObject(s, k)
	// The key is fresh for this one message, so a fixed IV is safe.
	iv := make([]byte, 16)
	wrapped, err := t.ctx.WrapKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CBC_PAD, iv)}, k, rec.h)
	if err != nil {
		return nil, err
	}
	if err := t.ctx.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CBC_PAD, iv)}, k); err != nil {
		return nil, err
	}
	return t.ctx.Decrypt(s, wrapped)
}

// ReadData returns the value of the data object labelled label. It fails
// with ErrObjectNotFound if there is none, ErrObjectAmbiguous if there are
// several and ErrInputTooLarge if the value exceeds MaxDataSize.
func (t *Token) ReadData(label string) ([]byte, error) {
	const op = "read data object"
	var out []byte
	err := t.do(op, func(s pkcs11.SessionHandle) error {
		rec, err := t.findData(s, label)
		if err != nil {
			return err
		}
		out, err = t.value(s, rec)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(out) > MaxDataSize {
		return nil, fail(op, ErrInputTooLarge, "data object larger than MaxDataSize")
	}
	return out, nil
}

// WriteData stores value (1 to MaxDataSize bytes) in the data object
// labelled label, with CKA_APPLICATION application: a new object (created
// true) if the token has none, else the existing one's CKA_VALUE is
// replaced in place (C_SetAttributeValue), so that the token never holds two
// objects under the label. Modules that refuse to modify CKA_VALUE get a
// new object first and the old one destroyed after; modules that keep no
// private token data objects get a key standing in for one (above).
func (t *Token) WriteData(label, application string, value []byte) (created bool, err error) {
	const op = "write data object"
	if label == "" || len(value) == 0 || len(value) > MaxDataSize {
		return false, fail(op, ErrInvalidInput, "empty label, or value not 1 to MaxDataSize bytes")
	}
	err = t.do(op, func(s pkcs11.SessionHandle) error {
		created = false
		old, err := t.findData(s, label)
		found := err == nil
		if err != nil && !isObjectNotFound(err) {
			return err
		}
		if found && !old.holder {
			err := t.ctx.SetAttributeValue(s, old.h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, value)})
			if err == nil || !isCode(err, pkcs11.CKR_ATTRIBUTE_READ_ONLY) {
				return err
			}
		}
		template := append(dataTemplate(label),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, application),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
		)
		h, err := t.ctx.CreateObject(s, template)
		if isCode(err, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID) || isCode(err, pkcs11.CKR_TEMPLATE_INCONSISTENT) {
			// A module without private token data objects (above). The
			// key's CKA_ID is random: NSS merges a new token key into an
			// existing one with the same class, type and CKA_ID.
			var id []byte
			if id, err = t.ctx.GenerateRandom(s, 16); err != nil {
				return err
			}
			h, err = t.ctx.CreateObject(s, append(holderTemplate(label),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
				pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
				pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
				pkcs11.NewAttribute(pkcs11.CKA_ID, id),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
			))
		}
		if err != nil {
			return err
		}
		created = !found
		if found && h != old.h {
			return t.ctx.DestroyObject(s, old.h)
		}
		return nil
	})
	return created, err
}

// DestroyData destroys the data object labelled label; found reports
// whether there was one. Several objects under the label are all
// destroyed.
func (t *Token) DestroyData(label string) (found bool, err error) {
	err = t.do("destroy data object", func(s pkcs11.SessionHandle) error {
		found = false
		for {
			h, err := t.firstData(s, label)
			if isObjectNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := t.ctx.DestroyObject(s, h); err != nil {
				return err
			}
			found = true
		}
	})
	return found, err
}

// firstData returns one of the records labelled label.
func (t *Token) firstData(s pkcs11.SessionHandle, label string) (pkcs11.ObjectHandle, error) {
	recs, err := t.findRecords(s, label, 1)
	if err != nil {
		return 0, err
	}
	if len(recs) == 0 {
		return 0, fail("find data object", ErrObjectNotFound, "")
	}
	return recs[0].h, nil
}

func isObjectNotFound(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Err == ErrObjectNotFound
}

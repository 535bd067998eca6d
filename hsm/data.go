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

// findData returns the one data object labelled label: ErrObjectNotFound
// if none, ErrObjectAmbiguous if several.
func (t *Token) findData(s pkcs11.SessionHandle, label string) (pkcs11.ObjectHandle, error) {
	return t.findUnique(s, dataTemplate(label), "find data object", ErrObjectNotFound, ErrObjectAmbiguous)
}

// ReadData returns the value of the data object labelled label. It fails
// with ErrObjectNotFound if there is none, ErrObjectAmbiguous if there are
// several and ErrInputTooLarge if the value exceeds MaxDataSize.
func (t *Token) ReadData(label string) ([]byte, error) {
	const op = "read data object"
	var out []byte
	err := t.do(op, func(s pkcs11.SessionHandle) error {
		h, err := t.findData(s, label)
		if err != nil {
			return err
		}
		attrs, err := t.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return err
		}
		out = bytes.Clone(attrs[0].Value)
		return nil
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
// new object first and the old one destroyed after.
func (t *Token) WriteData(label, application string, value []byte) (created bool, err error) {
	const op = "write data object"
	if label == "" || len(value) == 0 || len(value) > MaxDataSize {
		return false, fail(op, ErrInvalidInput, "empty label, or value not 1 to MaxDataSize bytes")
	}
	err = t.do(op, func(s pkcs11.SessionHandle) error {
		created = false
		old, err := t.findData(s, label)
		if isObjectNotFound(err) {
			old = 0
		} else if err != nil {
			return err
		}
		if old != 0 {
			err := t.ctx.SetAttributeValue(s, old, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, value)})
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
		if _, err := t.ctx.CreateObject(s, template); err != nil {
			return err
		}
		created = old == 0
		if old != 0 {
			return t.ctx.DestroyObject(s, old)
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

// firstData returns one of the data objects labelled label.
func (t *Token) firstData(s pkcs11.SessionHandle, label string) (pkcs11.ObjectHandle, error) {
	if err := t.ctx.FindObjectsInit(s, dataTemplate(label)); err != nil {
		return 0, err
	}
	hs, _, err := t.ctx.FindObjects(s, 1)
	if ferr := t.ctx.FindObjectsFinal(s); err == nil {
		err = ferr
	}
	if err != nil {
		return 0, err
	}
	if len(hs) == 0 {
		return 0, fail("find data object", ErrObjectNotFound, "")
	}
	return hs[0], nil
}

func isObjectNotFound(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Err == ErrObjectNotFound
}

package session

import (
	"crypto"
	"crypto/ecdh"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// One-pass C(1,2) ECC DH: a sender with a static signing key and an
// ephemeral key pair (dE, QE) wraps one payload for several recipients, each
// identified by a static agreement key. For recipient i:
//
//	Z_i   = ECDH(dE, QHAK_i)
//	KEK_i = OneStepKDF(Z_i, label ‖ 0x00 ‖ len ‖ sender ID ‖ len ‖ recipient ID ‖ QE)
//	C_i   = AES-256-GCM(KEK_i, nonce 0, payload, AAD_i)
//
// and the sender signs the whole message. Exported domain tokens use it to
// carry the domain-key encryption key to each member HSM (domain.SealToken).

// ErrNotRecipient means the message has no entry for the recipient.
var ErrNotRecipient = errors.New("session: not a recipient of the message")

// OnePass is a one-pass C(1,2) message.
type OnePass struct {
	SenderID   string
	QE         []byte
	Context    []byte // what the payload is for, bound to every entry
	Recipients []Wrapped
	Sig        []byte
}

// Wrapped is one recipient's entry.
type Wrapped struct {
	ID         string
	Ciphertext []byte
}

// Recipient names a recipient and its static agreement key.
type Recipient struct {
	ID        string
	Agreement *ecdh.PublicKey
}

func (m *OnePass) addUnsigned(b *cryptobyte.Builder) {
	addHeader(b, TypeOnePass)
	addID(b, m.SenderID)
	addFixed(b, m.QE, PointSize, "QE")
	if len(m.Context) > MaxContextLen {
		b.SetError(errors.New("session: one-pass context too long"))
		return
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.Context) })
	if len(m.Recipients) == 0 || len(m.Recipients) > MaxRecipients {
		b.SetError(errors.New("session: one-pass recipient count out of range"))
		return
	}
	b.AddUint8(uint8(len(m.Recipients)))
	for i, w := range m.Recipients {
		if i > 0 && m.Recipients[i-1].ID >= w.ID {
			b.SetError(errors.New("session: one-pass recipients not in strictly increasing order"))
			return
		}
		addID(b, w.ID)
		if len(w.Ciphertext) < tagSize || len(w.Ciphertext) > maxPayloadWrap {
			b.SetError(errors.New("session: one-pass ciphertext length out of range"))
			return
		}
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(w.Ciphertext) })
	}
}

// Marshal encodes the message.
func (m *OnePass) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	m.addUnsigned(&b)
	addSig(&b, m.Sig)
	return b.Bytes()
}

// ParseOnePass decodes a one-pass message strictly: recipients in strictly
// increasing ID order (so no duplicates), QE on P-384.
func ParseOnePass(in []byte) (*OnePass, error) {
	s := cryptobyte.String(in)
	m := &OnePass{}
	if err := readHeader(&s, TypeOnePass); err != nil {
		return nil, err
	}
	if err := readID(&s, &m.SenderID, "sender ID"); err != nil {
		return nil, err
	}
	var err error
	if m.QE, err = readPoint(&s, "QE"); err != nil {
		return nil, err
	}
	var ctx cryptobyte.String
	var n uint8
	if !s.ReadUint16LengthPrefixed(&ctx) || len(ctx) > MaxContextLen || !s.ReadUint8(&n) || n == 0 || int(n) > MaxRecipients {
		return nil, malformed("one-pass context or recipient count")
	}
	m.Context = append([]byte(nil), ctx...)
	for i := 0; i < int(n); i++ {
		var w Wrapped
		if err := readID(&s, &w.ID, "recipient ID"); err != nil {
			return nil, err
		}
		if i > 0 && m.Recipients[i-1].ID >= w.ID {
			return nil, malformed("recipients not in strictly increasing order")
		}
		var ct cryptobyte.String
		if !s.ReadUint24LengthPrefixed(&ct) || len(ct) < tagSize || len(ct) > maxPayloadWrap {
			return nil, malformed("one-pass ciphertext")
		}
		w.Ciphertext = append([]byte(nil), ct...)
		m.Recipients = append(m.Recipients, w)
	}
	if err := readSig(&s, &m.Sig); err != nil {
		return nil, err
	}
	return m, done(s)
}

func onePassKEK(z []byte, senderID, recipientID string, qe []byte) []byte {
	fi := append([]byte(labelOnePassKEK), 0)
	fi = append(fi, lp8([]byte(senderID))...)
	fi = append(fi, lp8([]byte(recipientID))...)
	fi = append(fi, qe...)
	return oneStepKDF(z, fi)
}

// onePassAAD is label ‖ 0x00 ‖ len ‖ sender ID ‖ len ‖ recipient ID ‖ QE ‖
// SHA-384(context).
func onePassAAD(senderID, recipientID string, qe, context []byte) []byte {
	aad := append([]byte(labelOnePassAAD), 0)
	aad = append(aad, lp8([]byte(senderID))...)
	aad = append(aad, lp8([]byte(recipientID))...)
	aad = append(aad, qe...)
	return append(aad, hash384(context)...)
}

// SealOnePass wraps payload for recipients with the ephemeral key eph (in
// the sender's token), signed by signer, and returns the encoded message.
// The ephemeral key is not destroyed here: the caller owns it.
func SealOnePass(senderID string, signer crypto.Signer, eph EphemeralKey, context, payload []byte, recipients []Recipient) ([]byte, error) {
	if len(payload) > MaxPayloadLen {
		return nil, fmt.Errorf("session: one-pass payload of %d bytes exceeds %d", len(payload), MaxPayloadLen)
	}
	rs := slices.Clone(recipients)
	slices.SortFunc(rs, func(a, b Recipient) int { return strings.Compare(a.ID, b.ID) })
	qe := eph.PublicKey().Bytes()
	m := &OnePass{SenderID: senderID, QE: qe, Context: context}
	for i, r := range rs {
		if i > 0 && rs[i-1].ID == r.ID {
			return nil, fmt.Errorf("session: recipient %q listed twice", r.ID)
		}
		if r.Agreement == nil || r.Agreement.Curve() != ecdh.P384() {
			return nil, fmt.Errorf("%w: recipient %q", ErrInvalidPoint, r.ID)
		}
		z, err := eph.ECDH(r.Agreement.Bytes())
		if err != nil {
			return nil, fmt.Errorf("session: ecdh with %q: %w", r.ID, err)
		}
		kek := onePassKEK(z, senderID, r.ID, qe)
		clear(z)
		ct := gcm(kek).Seal(nil, zeroNonce, payload, onePassAAD(senderID, r.ID, qe, context))
		clear(kek)
		m.Recipients = append(m.Recipients, Wrapped{ID: r.ID, Ciphertext: ct})
	}
	var b cryptobyte.Builder
	m.addUnsigned(&b)
	unsigned, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	if m.Sig, err = sign(signer, labelOnePassSig, unsigned); err != nil {
		return nil, err
	}
	return m.Marshal()
}

// AgreementKey is a static ECDH key that can compute Z with a peer point:
// an HSM's token-held dHAK (hsm.AgreementKey).
type AgreementKey interface {
	ECDH(peer []byte) ([]byte, error)
}

// OpenOnePass checks a one-pass message from a member HSM of dir (its
// signature over the whole message) and unwraps the entry of recipientID
// with its agreement key. It returns the payload and the context.
func OpenOnePass(raw []byte, dir Directory, recipientID string, key AgreementKey) (payload, context []byte, err error) {
	m, err := ParseOnePass(raw)
	if err != nil {
		return nil, nil, err
	}
	senderKey, _, err := dir.Member(m.SenderID)
	if err != nil {
		return nil, nil, err
	}
	var b cryptobyte.Builder
	m.addUnsigned(&b)
	unsigned, err := b.Bytes()
	if err != nil {
		return nil, nil, err
	}
	if !verify(senderKey, m.Sig, labelOnePassSig, unsigned) {
		return nil, nil, fmt.Errorf("%w: one-pass message from %q", ErrBadSignature, m.SenderID)
	}
	i := slices.IndexFunc(m.Recipients, func(w Wrapped) bool { return w.ID == recipientID })
	if i < 0 {
		return nil, nil, fmt.Errorf("%w: %q", ErrNotRecipient, recipientID)
	}
	z, err := key.ECDH(m.QE)
	if err != nil {
		return nil, nil, fmt.Errorf("session: ecdh: %w", err)
	}
	kek := onePassKEK(z, m.SenderID, recipientID, m.QE)
	clear(z)
	defer clear(kek)
	payload, err = gcm(kek).Open(nil, zeroNonce, m.Recipients[i].Ciphertext, onePassAAD(m.SenderID, recipientID, m.QE, m.Context))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: one-pass entry", ErrAuthentication)
	}
	return payload, m.Context, nil
}

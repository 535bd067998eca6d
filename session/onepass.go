package session

import (
	"crypto"
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"
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
	Hybrid     bool // header version VersionHybrid: every entry has a KEM ciphertext
	QE         []byte
	Context    []byte // what the payload is for, bound to every entry
	Recipients []Wrapped
	Sig        []byte
}

// Wrapped is one recipient's entry.
type Wrapped struct {
	ID            string
	KEMCiphertext []byte // hybrid: ML-KEM-1024 ciphertext to the recipient's KEM key
	Ciphertext    []byte
}

// Recipient names a recipient and its static agreement key.
type Recipient struct {
	ID        string
	Agreement *ecdh.PublicKey
	KEM       []byte // its ML-KEM-1024 encapsulation key: needed by SealOnePassHybrid
}

func (m *OnePass) addUnsigned(b *cryptobyte.Builder) {
	addHeaderV(b, m.Hybrid, TypeOnePass)
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
		if m.Hybrid {
			addFixed(b, w.KEMCiphertext, KEMCiphertextSize, "one-pass ML-KEM ciphertext")
		}
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
	var err error
	if m.Hybrid, err = readHeaderV(&s, TypeOnePass); err != nil {
		return nil, err
	}
	if err := readID(&s, &m.SenderID, "sender ID"); err != nil {
		return nil, err
	}
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
		if m.Hybrid {
			if w.KEMCiphertext, err = readFixed(&s, KEMCiphertextSize, "one-pass ML-KEM ciphertext"); err != nil {
				return nil, err
			}
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

// onePassKEKHybrid is the KEK of a hybrid entry: the one-step KDF of
// Z_i ‖ Z_mlkem_i with the classical FixedInfo under its own label and the
// hashes of the recipient's KEM key and the entry's ciphertext after QE.
func onePassKEKHybrid(z []byte, senderID, recipientID string, qe, ek, ct []byte) []byte {
	fi := append([]byte(labelOnePassKEKHybrid), 0)
	fi = append(fi, lp8([]byte(senderID))...)
	fi = append(fi, lp8([]byte(recipientID))...)
	fi = append(fi, qe...)
	fi = append(fi, hash384(ek)...)
	fi = append(fi, hash384(ct)...)
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
	return sealOnePass(senderID, signer, eph, nil, context, payload, recipients)
}

// SealOnePassHybrid is SealOnePass in the hybrid form (header version
// VersionHybrid): each entry's KEK comes from Z_i ‖ the secret of an
// ML-KEM-1024 encapsulation to the recipient's KEM key, with
// randomness m_i from kemRand (the sender's token RNG). Every recipient
// must have a KEM key.
func SealOnePassHybrid(senderID string, signer crypto.Signer, eph EphemeralKey, kemRand io.Reader, context, payload []byte, recipients []Recipient) ([]byte, error) {
	if kemRand == nil {
		return nil, errors.New("session: hybrid one-pass without an RNG")
	}
	return sealOnePass(senderID, signer, eph, kemRand, context, payload, recipients)
}

func sealOnePass(senderID string, signer crypto.Signer, eph EphemeralKey, kemRand io.Reader, context, payload []byte, recipients []Recipient) ([]byte, error) {
	hybrid := kemRand != nil
	if len(payload) > MaxPayloadLen {
		return nil, fmt.Errorf("session: one-pass payload of %d bytes exceeds %d", len(payload), MaxPayloadLen)
	}
	rs := slices.Clone(recipients)
	slices.SortFunc(rs, func(a, b Recipient) int { return strings.Compare(a.ID, b.ID) })
	qe := eph.PublicKey().Bytes()
	m := &OnePass{SenderID: senderID, Hybrid: hybrid, QE: qe, Context: context}
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
		w := Wrapped{ID: r.ID}
		var kek []byte
		if hybrid {
			ek, err := ParseKEMKey(r.KEM)
			if err != nil {
				clear(z)
				return nil, fmt.Errorf("%w: recipient %q", err, r.ID)
			}
			mi := make([]byte, kemEncapsSize)
			if _, err := io.ReadFull(kemRand, mi); err != nil {
				clear(z)
				return nil, fmt.Errorf("session: random: %w", err)
			}
			var zk []byte
			w.KEMCiphertext, zk = kemEncaps(ek, mi)
			clear(mi)
			zh := hybridSecret(z, zk)
			kek = onePassKEKHybrid(zh, senderID, r.ID, qe, r.KEM, w.KEMCiphertext)
			clear(zk)
			clear(zh)
		} else {
			kek = onePassKEK(z, senderID, r.ID, qe)
		}
		clear(z)
		w.Ciphertext = gcm(kek).Seal(nil, zeroNonce, payload, onePassAAD(senderID, r.ID, qe, context))
		clear(kek)
		m.Recipients = append(m.Recipients, w)
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
	payload, context, _, err = OpenOnePassHybrid(raw, dir, recipientID, key, nil)
	return payload, context, err
}

// OpenOnePassHybrid is OpenOnePass for a classical or hybrid message: dk
// is the recipient's ML-KEM-1024 decapsulation key (a hybrid entry cannot
// be opened without it). hybrid reports which the message was.
func OpenOnePassHybrid(raw []byte, dir Directory, recipientID string, key AgreementKey, dk *mlkem1024.PrivateKey) (payload, context []byte, hybrid bool, err error) {
	m, err := ParseOnePass(raw)
	if err != nil {
		return nil, nil, false, err
	}
	payload, context, err = m.open(dir, recipientID, key, dk)
	return payload, context, m.Hybrid, err
}

func (m *OnePass) open(dir Directory, recipientID string, key AgreementKey, dk *mlkem1024.PrivateKey) (payload, context []byte, err error) {
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
	if m.Hybrid && dk == nil {
		return nil, nil, fmt.Errorf("%w: no ML-KEM key to open a hybrid one-pass entry", ErrInvalidKEM)
	}
	z, err := key.ECDH(m.QE)
	if err != nil {
		return nil, nil, fmt.Errorf("session: ecdh: %w", err)
	}
	var kek []byte
	if m.Hybrid {
		ct := m.Recipients[i].KEMCiphertext
		zk, err := kemDecaps(dk, ct)
		if err != nil {
			clear(z)
			return nil, nil, err
		}
		ek := make([]byte, KEMKeySize)
		dk.Public().(*mlkem1024.PublicKey).Pack(ek)
		zh := hybridSecret(z, zk)
		kek = onePassKEKHybrid(zh, m.SenderID, recipientID, m.QE, ek, ct)
		clear(zk)
		clear(zh)
	} else {
		kek = onePassKEK(z, m.SenderID, recipientID, m.QE)
	}
	clear(z)
	defer clear(kek)
	payload, err = gcm(kek).Open(nil, zeroNonce, m.Recipients[i].Ciphertext, onePassAAD(m.SenderID, recipientID, m.QE, m.Context))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: one-pass entry", ErrAuthentication)
	}
	return payload, m.Context, nil
}

package nitro

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
)

// CiphertextForRecipient: a CMS ContentInfo holding an EnvelopedData
// (RFC 5652) exactly as KMS emits it. BER with indefinite lengths at the
// four outer levels (ContentInfo, its [0], EnvelopedData, and the
// EncryptedContentInfo), EnvelopedData version 2, one KeyTransRecipientInfo
// version 2 naming the recipient by a 32-byte subjectKeyIdentifier, the
// content key wrapped with RSAES-OAEP (SHA-256, MGF1-SHA-256, NULL
// parameters in the hash identifiers), and id-data content encrypted with
// AES-256-CBC (PKCS#7 padding) in a constructed, indefinite [0] of one
// OCTET STRING.
//
// Hand-written: Go's encoding/asn1 and cryptobyte speak DER only, and the
// enclave SDK's parser accepts only this BER shape, so the bytes are
// assembled here, and read back by a small BER reader (definite and
// indefinite lengths) for tests and conformance checks.

var (
	oidEnvelopedData = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03}
	oidData          = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}
	oidAES256CBC     = []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a}
	// rsaesOaep with SHA-256 and MGF1-SHA-256, as KMS writes the
	// AlgorithmIdentifier (with the NULL parameters).
	algOAEPSHA256 = []byte{
		0x30, 0x3c, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07,
		0x30, 0x2f,
		0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
		0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
		0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
	}
)

// ErrCMS is wrapped by every refusal of a CiphertextForRecipient.
var ErrCMS = errors.New("nitro: malformed CiphertextForRecipient")

// SubjectKeyID is the recipient identifier Trent writes: the SHA-256 of
// the recipient's SubjectPublicKeyInfo (the attestation document's
// public_key).
func SubjectKeyID(spki []byte) []byte {
	s := sha256.Sum256(spki)
	return s[:]
}

// definite encodes tag ‖ DER length ‖ content.
func definite(tag byte, content []byte) []byte {
	b, err := asn1.Marshal(asn1.RawValue{FullBytes: nil, Class: int(tag>>6) & 3, Tag: int(tag & 0x1f),
		IsCompound: tag&0x20 != 0, Bytes: content})
	if err != nil {
		panic("nitro: " + err.Error())
	}
	return b
}

// indefinite encodes tag (constructed) ‖ 0x80 ‖ content ‖ 00 00.
func indefinite(tag byte, content ...[]byte) []byte {
	out := []byte{tag, 0x80}
	for _, c := range content {
		out = append(out, c...)
	}
	return append(out, 0, 0)
}

// SealForRecipient encrypts plaintext to the RSA key pub (named by ski,
// 32 bytes) as KMS's CiphertextForRecipient, drawing the content key and
// IV from rng.
func SealForRecipient(rng io.Reader, pub *rsa.PublicKey, ski, plaintext []byte) ([]byte, error) {
	if len(ski) != 32 {
		return nil, errors.New("nitro: subjectKeyIdentifier must be 32 bytes")
	}
	kiv := make([]byte, 32+16)
	if _, err := io.ReadFull(rng, kiv); err != nil {
		return nil, err
	}
	defer clear(kiv)
	key, iv := kiv[:32], kiv[32:]
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rng, pub, key, nil)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(pad)}, pad)...)
	defer clear(padded)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)

	ktri := definite(0x30, bytes.Join([][]byte{
		{0x02, 0x01, 0x02},
		definite(0x80, ski),
		algOAEPSHA256,
		definite(0x04, wrapped),
	}, nil))
	eci := indefinite(0x30,
		oidData,
		definite(0x30, append(bytes.Clone(oidAES256CBC), definite(0x04, iv)...)),
		indefinite(0xa0, definite(0x04, ct)))
	env := indefinite(0x30, []byte{0x02, 0x01, 0x02}, definite(0x31, ktri), eci)
	return indefinite(0x30, oidEnvelopedData, indefinite(0xa0, env)), nil
}

// Envelope is a parsed CiphertextForRecipient.
type Envelope struct {
	SubjectKeyID []byte
	WrappedKey   []byte
	IV           []byte
	Ciphertext   []byte
}

// berReader reads BER TLVs from a buffer.
type berReader struct {
	b     []byte
	depth int // nesting of indefinite values being skipped
}

// maxBERDepth bounds nested indefinite values (KMS's messages nest four).
const maxBERDepth = 16

// next reads one TLV: its tag, content (for an indefinite constructed
// value, the raw concatenation of its children) and whether it was
// indefinite.
func (r *berReader) next() (tag byte, content []byte, indef bool, err error) {
	if len(r.b) < 2 {
		return 0, nil, false, fmt.Errorf("%w: truncated", ErrCMS)
	}
	tag, l := r.b[0], r.b[1]
	if tag&0x1f == 0x1f {
		return 0, nil, false, fmt.Errorf("%w: high tag numbers", ErrCMS)
	}
	r.b = r.b[2:]
	switch {
	case l == 0x80:
		if tag&0x20 == 0 {
			return 0, nil, false, fmt.Errorf("%w: indefinite primitive", ErrCMS)
		}
		if r.depth >= maxBERDepth {
			return 0, nil, false, fmt.Errorf("%w: nested too deep", ErrCMS)
		}
		r.depth++
		defer func() { r.depth-- }()
		start := r.b
		for depth := 0; ; {
			if len(r.b) >= 2 && r.b[0] == 0 && r.b[1] == 0 {
				content = start[:len(start)-len(r.b)]
				r.b = r.b[2:]
				return tag, content, true, nil
			}
			if _, _, _, err := r.next(); err != nil {
				return 0, nil, false, err
			}
			depth++
			if depth > 64 {
				return 0, nil, false, fmt.Errorf("%w: too many elements", ErrCMS)
			}
		}
	case l < 0x80:
		n := int(l)
		if len(r.b) < n {
			return 0, nil, false, fmt.Errorf("%w: truncated", ErrCMS)
		}
		content, r.b = r.b[:n], r.b[n:]
		return tag, content, false, nil
	default:
		k := int(l & 0x7f)
		if k > 3 || len(r.b) < k {
			return 0, nil, false, fmt.Errorf("%w: length", ErrCMS)
		}
		n := 0
		for _, c := range r.b[:k] {
			n = n<<8 | int(c)
		}
		r.b = r.b[k:]
		if len(r.b) < n {
			return 0, nil, false, fmt.Errorf("%w: truncated", ErrCMS)
		}
		content, r.b = r.b[:n], r.b[n:]
		return tag, content, false, nil
	}
}

func (r *berReader) expect(tag byte, what string) ([]byte, error) {
	t, c, _, err := r.next()
	if err != nil {
		return nil, err
	}
	if t != tag {
		return nil, fmt.Errorf("%w: %s: tag %#x", ErrCMS, what, t)
	}
	return c, nil
}

// expectIndefinite is expect for the four outer levels, which KMS writes
// with indefinite lengths and the Nitro Enclaves SDK's parser requires so.
func (r *berReader) expectIndefinite(tag byte, what string) ([]byte, error) {
	t, c, indef, err := r.next()
	if err != nil {
		return nil, err
	}
	if t != tag || !indef {
		return nil, fmt.Errorf("%w: %s: want tag %#x with an indefinite length, as KMS writes it", ErrCMS, what, tag)
	}
	return c, nil
}

func (r *berReader) expectBytes(want []byte, what string) error {
	if !bytes.HasPrefix(r.b, want) {
		return fmt.Errorf("%w: %s", ErrCMS, what)
	}
	r.b = r.b[len(want):]
	return nil
}

// ParseEnvelope reads a CiphertextForRecipient of the shape KMS emits and
// the Nitro Enclaves SDK accepts: indefinite lengths at the four outer
// levels (ContentInfo, its [0], EnvelopedData, EncryptedContentInfo), the
// content as a constructed [0] of OCTET STRINGs or a primitive [0].
func ParseEnvelope(ber []byte) (*Envelope, error) {
	top := &berReader{b: ber}
	ci, err := top.expectIndefinite(0x30, "ContentInfo")
	if err != nil {
		return nil, err
	}
	if len(top.b) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", ErrCMS)
	}
	r := &berReader{b: ci}
	if err := r.expectBytes(oidEnvelopedData, "contentType"); err != nil {
		return nil, err
	}
	inner, err := r.expectIndefinite(0xa0, "content")
	if err != nil {
		return nil, err
	}
	r = &berReader{b: inner}
	envBody, err := r.expectIndefinite(0x30, "EnvelopedData")
	if err != nil {
		return nil, err
	}
	r = &berReader{b: envBody}
	if err := r.expectBytes([]byte{0x02, 0x01, 0x02}, "EnvelopedData version 2"); err != nil {
		return nil, err
	}
	set, err := r.expect(0x31, "recipientInfos")
	if err != nil {
		return nil, err
	}
	sr := &berReader{b: set}
	ktri, err := sr.expect(0x30, "KeyTransRecipientInfo")
	if err != nil || len(sr.b) != 0 {
		return nil, fmt.Errorf("%w: one KeyTransRecipientInfo", ErrCMS)
	}
	kr := &berReader{b: ktri}
	e := &Envelope{}
	if err := kr.expectBytes([]byte{0x02, 0x01, 0x02}, "KeyTransRecipientInfo version 2"); err != nil {
		return nil, err
	}
	if e.SubjectKeyID, err = kr.expect(0x80, "subjectKeyIdentifier"); err != nil {
		return nil, err
	}
	if err := kr.expectBytes(algOAEPSHA256, "rsaesOaep SHA-256"); err != nil {
		return nil, err
	}
	if e.WrappedKey, err = kr.expect(0x04, "encryptedKey"); err != nil {
		return nil, err
	}
	eci, err := r.expectIndefinite(0x30, "EncryptedContentInfo")
	if err != nil {
		return nil, err
	}
	er := &berReader{b: eci}
	if err := er.expectBytes(oidData, "id-data"); err != nil {
		return nil, err
	}
	alg, err := er.expect(0x30, "contentEncryptionAlgorithm")
	if err != nil {
		return nil, err
	}
	ar := &berReader{b: alg}
	if err := ar.expectBytes(oidAES256CBC, "aes-256-cbc"); err != nil {
		return nil, err
	}
	if e.IV, err = ar.expect(0x04, "IV"); err != nil || len(e.IV) != aes.BlockSize {
		return nil, fmt.Errorf("%w: IV", ErrCMS)
	}
	t, c, _, err := er.next()
	switch {
	case err != nil:
		return nil, err
	case t == 0x80: // primitive [0]
		e.Ciphertext = c
	case t == 0xa0: // constructed [0] of OCTET STRINGs
		cr := &berReader{b: c}
		for len(cr.b) > 0 {
			chunk, err := cr.expect(0x04, "content chunk")
			if err != nil {
				return nil, err
			}
			e.Ciphertext = append(e.Ciphertext, chunk...)
		}
	default:
		return nil, fmt.Errorf("%w: encryptedContent tag %#x", ErrCMS, t)
	}
	if len(e.Ciphertext) == 0 || len(e.Ciphertext)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: encrypted content length", ErrCMS)
	}
	return e, nil
}

// Open decrypts the envelope with the recipient's private key (the
// enclave's side; Trent uses it in tests and conformance checks).
func (e *Envelope) Open(priv *rsa.PrivateKey) ([]byte, error) {
	key, err := rsa.DecryptOAEP(sha256.New(), nil, priv, e.WrappedKey, nil)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%w: the content key does not unwrap", ErrCMS)
	}
	defer clear(key)
	block, _ := aes.NewCipher(key)
	pt := make([]byte, len(e.Ciphertext))
	cipher.NewCBCDecrypter(block, e.IV).CryptBlocks(pt, e.Ciphertext)
	pad := int(pt[len(pt)-1])
	if subtle.ConstantTimeLessOrEq(1, pad)&subtle.ConstantTimeLessOrEq(pad, aes.BlockSize) == 0 {
		return nil, fmt.Errorf("%w: padding", ErrCMS)
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("%w: padding", ErrCMS)
		}
	}
	return pt[:len(pt)-pad], nil
}

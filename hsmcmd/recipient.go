package hsmcmd

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/nitro"
)

// Recipient runs an inner command for a Nitro enclave: the HSM verifies
// the enclave's attestation document and returns the inner command's
// plaintext only as a CiphertextForRecipient to the document's RSA key.
//
//	in:  v24 attestation document (at most nitro.MaxDocument) ‖
//	     u16 inner command type (RecipientInner) ‖ v24 inner command
//	out: v16 CiphertextForRecipient ‖ v16 the inner answer's other fields
//
// The inner answer's other fields: for GenerateDataKey, v16 blob; for
// GenerateDataKeyPair, v16 public key ‖ v16 blob; for the others (their
// whole answer is the plaintext), nothing.

// ErrRecipient is wrapped by refusals of a Recipient's document or key.
var ErrRecipient = errors.New("hsmcmd: recipient refused")

// MinRecipientBits and MaxRecipientBits bound the enclave's RSA key, as
// KMS does.
const (
	MinRecipientBits = 2048
	MaxRecipientBits = 4096
)

// MaxCiphertextForRecipient bounds a CiphertextForRecipient: the CMS
// EnvelopedData of at most hbk.MaxPlaintext bytes to an RSA-4096 key is
// well under it.
const MaxCiphertextForRecipient = 0xffff

// RecipientRequest wraps an inner command.
type RecipientRequest struct {
	Document []byte // attestation document, at most nitro.MaxDocument bytes
	Inner    Code   // RecipientInner
	Command  []byte // the inner command's encoding, at most MaxMessage bytes
}

func (RecipientRequest) Code() Code { return Recipient }

func (m RecipientRequest) Marshal() ([]byte, error) {
	w := newWriter(Recipient)
	w.v24(m.Document, 0, nitro.MaxDocument, "attestation document")
	if w.check(m.Inner.RecipientInner(), "inner command "+m.Inner.String()) {
		w.u16(uint16(m.Inner))
	}
	w.v24(m.Command, 0, MaxMessage, "inner command")
	return w.bytes()
}

// NewRecipientRequest wraps inner for the enclave of document.
func NewRecipientRequest(document []byte, inner Request) (*RecipientRequest, error) {
	cmd, err := inner.Marshal()
	if err != nil {
		return nil, err
	}
	return &RecipientRequest{Document: document, Inner: inner.Code(), Command: cmd}, nil
}

// ParseRecipientRequest decodes a Recipient; the inner command is left
// encoded, for the inner command's own Parse.
func ParseRecipientRequest(in []byte) (*RecipientRequest, error) {
	r := newReader(Recipient, in)
	m := &RecipientRequest{Document: r.v24(0, nitro.MaxDocument, "attestation document")}
	m.Inner = Code(r.u16("inner command type"))
	if r.err == nil && !m.Inner.RecipientInner() {
		r.fail("inner command " + m.Inner.String())
	}
	m.Command = r.v24(0, MaxMessage, "inner command")
	return result(m, r)
}

// RecipientResponse is the CiphertextForRecipient and the inner answer's
// other fields.
type RecipientResponse struct {
	CiphertextForRecipient []byte // CMS EnvelopedData (BER), 1 to MaxCiphertextForRecipient bytes
	Rest                   []byte // the inner answer's other fields, at most 0xffff bytes
}

func (m RecipientResponse) Marshal() ([]byte, error) {
	w := newWriter(Recipient)
	w.v16(m.CiphertextForRecipient, 1, MaxCiphertextForRecipient, "CiphertextForRecipient")
	w.v16(m.Rest, 0, 0xffff, "inner answer")
	return w.bytes()
}

// ParseRecipientResponse decodes a Recipient's answer.
func ParseRecipientResponse(in []byte) (*RecipientResponse, error) {
	r := newReader(Recipient, in)
	m := &RecipientResponse{
		CiphertextForRecipient: r.v16(1, MaxCiphertextForRecipient, "CiphertextForRecipient"),
		Rest:                   r.v16(0, 0xffff, "inner answer"),
	}
	return result(m, r)
}

// RecipientKey is a verified document's RSA public key (2048 to 4096
// bits), as KMS requires of a Recipient.
func RecipientKey(d *nitro.Document) (*rsa.PublicKey, error) {
	if len(d.PublicKey) == 0 {
		return nil, fmt.Errorf("%w: the attestation document has no public_key", ErrRecipient)
	}
	k, err := x509.ParsePKIXPublicKey(d.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: public_key is not a DER SubjectPublicKeyInfo", ErrRecipient)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < MinRecipientBits || pub.N.BitLen() > MaxRecipientBits {
		return nil, fmt.Errorf("%w: public_key must be an RSA key of 2048 to 4096 bits", ErrRecipient)
	}
	return pub, nil
}

// DataKeyBlob decodes Rest of a Recipient whose inner command was
// GenerateDataKey: v16 blob (1 to hbk.MaxBlob bytes).
func (m *RecipientResponse) DataKeyBlob() ([]byte, error) {
	r := newReader(Recipient, m.Rest)
	blob := r.v16(1, hbk.MaxBlob, "blob")
	if err := r.done(); err != nil {
		return nil, err
	}
	return blob, nil
}

// DataKeyPair decodes Rest of a Recipient whose inner command was
// GenerateDataKeyPair: v16 public key (1 to MaxPublicKey bytes) ‖ v16
// blob (1 to hbk.MaxBlob bytes).
func (m *RecipientResponse) DataKeyPair() (public, blob []byte, err error) {
	r := newReader(Recipient, m.Rest)
	public, blob = r.v16(1, MaxPublicKey, "public key"), r.v16(1, hbk.MaxBlob, "blob")
	if err := r.done(); err != nil {
		return nil, nil, err
	}
	return public, blob, nil
}

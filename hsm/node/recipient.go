package node

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/nitro"
	"github.com/trentkms/trent/session"
)

// Recipient operations (Nitro Enclaves): the HSM verifies the enclave's
// attestation document against the AWS Nitro root and the roots its domain
// state lists, as of its clock (or Options.AttestationTime), and returns
// the plaintext of the inner command only as a CiphertextForRecipient to
// the document's RSA key (package nitro), so that the host never sees it.
//
//	CmdRecipient  v24 attestation document ‖ u16 inner command type ‖ v24 inner command
//	              → v16 CiphertextForRecipient ‖ v16 the inner answer's other fields
//
// Inner commands: CmdRandom, CmdDecrypt, CmdDeriveSharedSecret (their whole
// answer is the plaintext; the rest is empty), CmdGenerateDataKey and
// CmdGenerateDataKeyPair (the first field is the plaintext, which must be
// asked for; the rest is their other fields as they encode them).
const CmdRecipient uint16 = 21

// ErrRecipient is wrapped by refusals of a Recipient.
var ErrRecipient = errors.New("node: recipient refused")

// MinRecipientBits and MaxRecipientBits bound the enclave's RSA key, as
// KMS does.
const (
	MinRecipientBits = 2048
	MaxRecipientBits = 4096
)

// VerifyAttestation verifies a document as this HSM trusts it and returns
// it with the enclave's RSA key.
func (n *Node) VerifyAttestation(doc []byte) (*nitro.Document, *rsa.PublicKey, error) {
	v := &nitro.Verifier{Roots: []*x509.Certificate{nitro.RootG1()}, Now: n.attestationTime, Cache: &n.chains}
	if st, _ := n.DomainState(); st != nil {
		v.RootsDER = st.Roots
	}
	d, err := v.Verify(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrRecipient, err)
	}
	pub, err := RecipientKey(d)
	if err != nil {
		return nil, nil, err
	}
	return d, pub, nil
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

func (n *Node) attestationTime() time.Time {
	if n.attestAt != nil {
		return n.attestAt()
	}
	return time.Now()
}

func (n *Node) recipientCommand(m map[uint16]session.CommandHandler, refused func(error) error) {
	inner := map[uint16]session.CommandHandler{
		CmdRandom: m[CmdRandom], CmdDecrypt: m[CmdDecrypt], CmdDeriveSharedSecret: m[CmdDeriveSharedSecret],
		CmdGenerateDataKey: m[CmdGenerateDataKey], CmdGenerateDataKeyPair: m[CmdGenerateDataKeyPair],
	}
	m[CmdRecipient] = func(r *session.Request) ([]byte, error) {
		s := cryptobyte.String(r.Command)
		var doc, cmd cryptobyte.String
		var typ uint16
		if !s.ReadUint24LengthPrefixed(&doc) || len(doc) > nitro.MaxDocument || !s.ReadUint16(&typ) ||
			!s.ReadUint24LengthPrefixed(&cmd) || !s.Empty() || inner[typ] == nil {
			return nil, refused(ErrKeyCommand)
		}
		d, pub, err := n.VerifyAttestation(doc)
		if err != nil {
			return nil, refused(err)
		}
		out, err := inner[typ](&session.Request{SessionID: r.SessionID, HostID: r.HostID, Seq: r.Seq, Type: typ, Command: cmd})
		if err != nil {
			return nil, err // already a refusal or an internal error
		}
		defer clear(out)
		plain, rest := out, []byte(nil)
		if typ == CmdGenerateDataKey || typ == CmdGenerateDataKeyPair {
			o := cryptobyte.String(out)
			var p cryptobyte.String
			if !o.ReadUint16LengthPrefixed(&p) || len(p) == 0 {
				return nil, refused(fmt.Errorf("%w: the inner command must return its plaintext", ErrRecipient))
			}
			plain, rest = p, o
		}
		cms, err := nitro.SealForRecipient(n.tok.Reader(), pub, nitro.SubjectKeyID(d.PublicKey), plain)
		if err != nil {
			return nil, err
		}
		return KeyCommand(nil, cms, rest)
	}
}

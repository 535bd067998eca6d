package node

import (
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/nitro"
	"github.com/trentkms/trent/session"
)

// Recipient operations (Nitro Enclaves, hsmcmd.Recipient): the HSM
// verifies the enclave's attestation document against the AWS Nitro root
// and the roots its domain state lists, as of its clock (or
// Options.AttestationTime), and returns the plaintext of the inner command
// only as a CiphertextForRecipient to the document's RSA key (package
// nitro), so that the host never sees it. Inner commands: Random,
// Decrypt, DeriveSharedSecret (their whole answer is the plaintext; the
// rest is empty), GenerateDataKey and GenerateDataKeyPair (the first
// field is the plaintext, which must be asked for; the rest is their
// other fields as they encode them).

// VerifyAttestation verifies a document as this HSM trusts it and returns
// it with the enclave's RSA key.
func (n *Node) VerifyAttestation(doc []byte) (*nitro.Document, *rsa.PublicKey, error) {
	v := &nitro.Verifier{Roots: []*x509.Certificate{nitro.RootG1()}, Now: n.attestationTime, Cache: &n.chains}
	if st, _ := n.DomainState(); st != nil {
		v.RootsDER = st.Roots
	}
	d, err := v.Verify(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", hsmcmd.ErrRecipient, err)
	}
	pub, err := hsmcmd.RecipientKey(d)
	if err != nil {
		return nil, nil, err
	}
	return d, pub, nil
}

func (n *Node) attestationTime() time.Time {
	if n.attestAt != nil {
		return n.attestAt()
	}
	return time.Now()
}

func (n *Node) recipientCommand(m handlers) {
	inner := handlers{}
	for c, h := range m {
		if c.RecipientInner() {
			inner[c] = h
		}
	}
	m[hsmcmd.Recipient] = func(r *session.Request) ([]byte, error) {
		req, err := hsmcmd.ParseRecipientRequest(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		d, pub, err := n.VerifyAttestation(req.Document)
		if err != nil {
			return nil, refused(err)
		}
		out, err := inner[req.Inner](&session.Request{SessionID: r.SessionID, HostID: r.HostID, Seq: r.Seq, Type: uint16(req.Inner), Command: req.Command})
		if err != nil {
			return nil, err // already a refusal or an internal error
		}
		defer clear(out)
		plain, rest := out, []byte(nil)
		if req.Inner == hsmcmd.GenerateDataKey || req.Inner == hsmcmd.GenerateDataKeyPair {
			o := cryptobyte.String(out)
			var p cryptobyte.String
			if !o.ReadUint16LengthPrefixed(&p) || len(p) == 0 {
				return nil, refused(fmt.Errorf("%w: the inner command must return its plaintext", hsmcmd.ErrRecipient))
			}
			plain, rest = p, o
		}
		cms, err := nitro.SealForRecipient(n.tok.Reader(), pub, nitro.SubjectKeyID(d.PublicKey), plain)
		if err != nil {
			return nil, err
		}
		return hsmcmd.RecipientResponse{CiphertextForRecipient: cms, Rest: rest}.Marshal()
	}
}

package nitro

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// SimCA is a simulated Nitro Secure Module's certificate hierarchy, shaped
// like AWS's: root → regional → zonal → instance, each P-384, and a
// short-lived leaf per document (three hours, as the real ones). It signs
// attestation documents for tests, drills and `trent dev`; a Verifier
// trusts them only if its Roots include Root. One difference from the real
// NSM's bytes: the payload map's keys come in CBOR's core deterministic
// order rather than the NSM's field order (verification does not depend on
// it). Marshal, LoadSimCA and OpenSimCA keep the hierarchy in a PEM file,
// as `trent dev` does.
type SimCA struct {
	Root  *x509.Certificate
	chain []*x509.Certificate // regional, zonal, instance
	keys  []*ecdsa.PrivateKey // root, regional, zonal, instance
	rand  io.Reader
}

// LeafValidity is how long a simulated document's leaf certificate lives.
const LeafValidity = 3 * time.Hour

// NewSimCA makes a hierarchy valid from notBefore for ten years.
func NewSimCA(rng io.Reader, notBefore time.Time) (*SimCA, error) {
	if rng == nil {
		rng = rand.Reader
	}
	ca := &SimCA{rand: rng}
	names := []string{"trent-sim.nitro-enclaves", "eu-west-1.trent-sim.nitro-enclaves",
		"eu-west-1a.trent-sim.nitro-enclaves", "i-0trentsim.eu-west-1a.trent-sim.nitro-enclaves"}
	var parent *x509.Certificate
	for i, name := range names {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rng)
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)),
			Subject:   pkix.Name{Country: []string{"US"}, Organization: []string{"Trent"}, OrganizationalUnit: []string{"simulated NSM"}, CommonName: name},
			NotBefore: notBefore, NotAfter: notBefore.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
		signer, signerKey := tmpl, k
		if parent != nil {
			signer, signerKey = parent, ca.keys[i-1]
		}
		der, err := x509.CreateCertificate(rng, tmpl, signer, &k.PublicKey, signerKey)
		if err != nil {
			return nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		ca.keys = append(ca.keys, k)
		if parent == nil {
			ca.Root = cert
		} else {
			ca.chain = append(ca.chain, cert)
		}
		parent = cert
	}
	return ca, nil
}

// AttestRequest is what an enclave asks its NSM to attest.
type AttestRequest struct {
	ModuleID  string
	PCRs      map[int][]byte // 48-byte values (SHA-384), indexes 0 to 15 as the NSM has
	PublicKey []byte         // the enclave's key (DER SubjectPublicKeyInfo), or nil
	UserData  []byte
	Nonce     []byte
	Time      time.Time // the document's timestamp; its leaf is valid from then
}

// Attest makes a signed, untagged attestation document.
func (ca *SimCA) Attest(req AttestRequest) ([]byte, error) { return ca.attest(req, nil) }

// attest is Attest with the encoded payload changed by edit (if not nil)
// before it is signed: tests make well-signed malformed documents.
func (ca *SimCA) attest(req AttestRequest, edit func([]byte) []byte) ([]byte, error) {
	if len(req.PCRs) == 0 || len(req.PublicKey) > MaxFieldSize || len(req.UserData) > MaxFieldSize || len(req.Nonce) > MaxFieldSize {
		return nil, errors.New("nitro: attest: PCRs required, fields at most 1024 bytes")
	}
	k, err := ecdsa.GenerateKey(elliptic.P384(), ca.rand)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(ca.rand, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	moduleID := req.ModuleID
	if moduleID == "" {
		moduleID = "i-0trentsim-enc0000000000000000"
	}
	tmpl := &x509.Certificate{SerialNumber: serial,
		Subject:   pkix.Name{Country: []string{"US"}, Organization: []string{"Trent"}, OrganizationalUnit: []string{"simulated NSM"}, CommonName: moduleID},
		NotBefore: req.Time.Add(-time.Minute), NotAfter: req.Time.Add(LeafValidity), KeyUsage: x509.KeyUsageDigitalSignature}
	instance := ca.chain[len(ca.chain)-1]
	leaf, err := x509.CreateCertificate(ca.rand, tmpl, instance, &k.PublicKey, ca.keys[len(ca.keys)-1])
	if err != nil {
		return nil, err
	}
	p := payload{ModuleID: moduleID, Digest: "SHA384", Timestamp: uint64(req.Time.UnixMilli()), PCRs: map[uint][]byte{},
		Certificate: leaf, CABundle: [][]byte{ca.Root.Raw}, PublicKey: req.PublicKey, UserData: req.UserData, Nonce: req.Nonce}
	for i, v := range req.PCRs {
		if i < 0 || i >= MaxPCRs {
			return nil, errors.New("nitro: attest: PCR index out of range")
		}
		p.PCRs[uint(i)] = v
	}
	for _, c := range ca.chain {
		p.CABundle = append(p.CABundle, c.Raw)
	}
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return nil, err
	}
	body, err := em.Marshal(&p)
	if err != nil {
		return nil, err
	}
	if edit != nil {
		body = edit(body)
	}
	signer, err := cose.NewSigner(cose.AlgorithmES384, cryptoSigner{k})
	if err != nil {
		return nil, err
	}
	msg := cose.UntaggedSign1Message{Headers: cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES384}},
		Payload: body}
	if err := msg.Sign(ca.rand, nil, signer); err != nil {
		return nil, err
	}
	return msg.MarshalCBOR()
}

// cryptoSigner is an ecdsa key as a crypto.Signer for go-cose.
type cryptoSigner struct{ k *ecdsa.PrivateKey }

func (s cryptoSigner) Public() crypto.PublicKey { return &s.k.PublicKey }
func (s cryptoSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.k.Sign(r, digest, opts)
}

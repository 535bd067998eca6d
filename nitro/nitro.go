package nitro

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// MaxDocument is KMS's limit on an attestation document.
const MaxDocument = 262144

// NSM field limits (aws-nitro-enclaves-nsm-api, attestation_process.md).
const (
	MaxPCRs       = 32
	MaxCertSize   = 1024
	MaxFieldSize  = 1024 // public_key, user_data, nonce
	MaxBundleSize = 16   // certificates in cabundle (the NSM's are 4)
)

// Errors.
var (
	ErrMalformed = errors.New("nitro: malformed attestation document")
	ErrChain     = errors.New("nitro: certificate chain does not verify")
	ErrSignature = errors.New("nitro: attestation signature does not verify")
)

//go:embed aws-nitro-root.pem
var rootG1PEM []byte

// RootG1 returns the AWS Nitro Enclaves Root-G1 certificate (P-384, valid
// 2019-10-28 to 2049-10-28).
func RootG1() *x509.Certificate {
	b, _ := pem.Decode(rootG1PEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		panic("nitro: the bundled root does not parse: " + err.Error())
	}
	return c
}

// Document is an attestation document's payload.
type Document struct {
	ModuleID    string
	Digest      string
	Timestamp   time.Time
	PCRs        map[int][]byte
	Certificate *x509.Certificate
	CABundle    []*x509.Certificate
	PublicKey   []byte // nil when absent
	UserData    []byte
	Nonce       []byte
}

// payload is the CBOR map as the NSM writes it.
type payload struct {
	ModuleID    string          `cbor:"module_id"`
	Digest      string          `cbor:"digest"`
	Timestamp   uint64          `cbor:"timestamp"`
	PCRs        map[uint][]byte `cbor:"pcrs"`
	Certificate []byte          `cbor:"certificate"`
	CABundle    [][]byte        `cbor:"cabundle"`
	PublicKey   []byte          `cbor:"public_key"`
	UserData    []byte          `cbor:"user_data"`
	Nonce       []byte          `cbor:"nonce"`
}

var decMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   8,
		MaxArrayElements:  64,
		MaxMapPairs:       64,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// Parse decodes a document strictly and checks its fields' shapes; it does
// not verify it. It returns the payload and the COSE message.
func Parse(raw []byte) (*Document, *cose.Sign1Message, error) {
	if len(raw) == 0 || len(raw) > MaxDocument {
		return nil, nil, malformed("%d bytes, want 1 to %d", len(raw), MaxDocument)
	}
	var msg cose.Sign1Message
	if raw[0] == 0xd2 { // tag 18, tolerated
		if err := msg.UnmarshalCBOR(raw); err != nil {
			return nil, nil, malformed("COSE_Sign1: %v", err)
		}
	} else if err := (*cose.UntaggedSign1Message)(&msg).UnmarshalCBOR(raw); err != nil {
		return nil, nil, malformed("COSE_Sign1: %v", err)
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil || alg != cose.AlgorithmES384 || len(msg.Headers.Protected) != 1 {
		return nil, nil, malformed("protected header must be exactly {1: -35} (ES384)")
	}
	if len(msg.Signature) != 96 {
		return nil, nil, malformed("ES384 signature of %d bytes", len(msg.Signature))
	}
	var p payload
	if err := decMode.Unmarshal(msg.Payload, &p); err != nil {
		return nil, nil, malformed("payload: %v", err)
	}
	d, err := p.check()
	if err != nil {
		return nil, nil, err
	}
	return d, &msg, nil
}

func (p *payload) check() (*Document, error) {
	switch {
	case p.ModuleID == "":
		return nil, malformed("module_id missing")
	case p.Digest != "SHA384":
		return nil, malformed("digest %q, want SHA384", p.Digest)
	case p.Timestamp == 0:
		return nil, malformed("timestamp missing")
	case len(p.PCRs) == 0 || len(p.PCRs) > MaxPCRs:
		return nil, malformed("%d PCRs, want 1 to %d", len(p.PCRs), MaxPCRs)
	case len(p.Certificate) == 0 || len(p.Certificate) > MaxCertSize:
		return nil, malformed("certificate of %d bytes", len(p.Certificate))
	case len(p.CABundle) == 0 || len(p.CABundle) > MaxBundleSize:
		return nil, malformed("cabundle of %d certificates", len(p.CABundle))
	case len(p.PublicKey) > MaxFieldSize || len(p.UserData) > MaxFieldSize || len(p.Nonce) > MaxFieldSize:
		return nil, malformed("public_key, user_data or nonce over %d bytes", MaxFieldSize)
	}
	d := &Document{ModuleID: p.ModuleID, Digest: p.Digest, Timestamp: time.UnixMilli(int64(p.Timestamp)).UTC(),
		PCRs: map[int][]byte{}, PublicKey: p.PublicKey, UserData: p.UserData, Nonce: p.Nonce}
	for i, v := range p.PCRs {
		if i >= MaxPCRs || (len(v) != 32 && len(v) != 48 && len(v) != 64) {
			return nil, malformed("PCR %d of %d bytes", i, len(v))
		}
		d.PCRs[int(i)] = v
	}
	var err error
	if d.Certificate, err = x509.ParseCertificate(p.Certificate); err != nil {
		return nil, malformed("certificate: %v", err)
	}
	for i, c := range p.CABundle {
		if len(c) == 0 || len(c) > MaxCertSize {
			return nil, malformed("cabundle certificate %d of %d bytes", i, len(c))
		}
		cert, err := x509.ParseCertificate(c)
		if err != nil {
			return nil, malformed("cabundle certificate %d: %v", i, err)
		}
		d.CABundle = append(d.CABundle, cert)
	}
	return d, nil
}

// Verifier verifies documents against trusted roots.
type Verifier struct {
	Roots []*x509.Certificate // trusted roots (RootG1 and any the domain lists)
	// Now is the verification time (time.Now if nil); a conformance run
	// may fix it to a document's own time.
	Now func() time.Time
}

// Verify parses raw and verifies its chain and signature.
func (v *Verifier) Verify(raw []byte) (*Document, error) {
	d, msg, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	roots := x509.NewCertPool()
	for _, r := range v.Roots {
		roots.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range d.CABundle[1:] { // the bundle's own root is not trusted for being there
		inter.AddCert(c)
	}
	if _, err := d.Certificate.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrChain, err)
	}
	pub, ok := d.Certificate.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("%w: the leaf key is not ECDSA P-384", ErrSignature)
	}
	ver, err := cose.NewVerifier(cose.AlgorithmES384, pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if err := msg.Verify(nil, ver); err != nil {
		return nil, ErrSignature
	}
	return d, nil
}

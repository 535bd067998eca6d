package nitro

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
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
// 2019-10-28 to 2049-10-28). Callers must not change it.
func RootG1() *x509.Certificate { return rootG1() }

var rootG1 = sync.OnceValue(func() *x509.Certificate {
	b, _ := pem.Decode(rootG1PEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		panic("nitro: the bundled root does not parse: " + err.Error())
	}
	return c
})

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
		cert, err := parseBundleCert(c)
		if err != nil {
			return nil, malformed("cabundle certificate %d: %v", i, err)
		}
		d.CABundle = append(d.CABundle, cert)
	}
	return d, nil
}

// bundleCerts holds parsed cabundle certificates by the SHA-256 of their
// DER (at most maxBundleCerts; emptied when full): a fleet's documents
// repeat the same few, and parsing is a tenth of a document's cost
// beside its two signatures. Parsed certificates are never changed.
var bundleCerts struct {
	sync.Mutex
	m map[[32]byte]*x509.Certificate
}

const maxBundleCerts = 4096

func parseBundleCert(der []byte) (*x509.Certificate, error) {
	h := sha256.Sum256(der)
	bundleCerts.Lock()
	c := bundleCerts.m[h]
	bundleCerts.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	bundleCerts.Lock()
	if bundleCerts.m == nil || len(bundleCerts.m) >= maxBundleCerts {
		bundleCerts.m = map[[32]byte]*x509.Certificate{}
	}
	bundleCerts.m[h] = c
	bundleCerts.Unlock()
	return c, nil
}

// Verifier verifies documents against trusted roots. It is safe for
// concurrent use if its fields are not changed.
type Verifier struct {
	Roots []*x509.Certificate // trusted roots (RootG1 and any the domain lists)
	// RootsDER are more trusted roots, as DER (the domain state's list).
	RootsDER [][]byte
	// Now is the verification time (time.Now if nil); a conformance run
	// may fix it to a document's own time.
	Now func() time.Time
	// Cache, if set, remembers verified bundles so that a document from
	// a known enclave host costs one leaf and one document signature.
	Cache *ChainCache
}

// ChainCache remembers verified cabundles (root, regional, zonal,
// instance) by the SHA-256 of their certificates, with the time window in
// which every one of them is valid. It holds at most MaxCachedChains and
// is safe for concurrent use; the zero value is ready.
type ChainCache struct {
	mu sync.Mutex
	m  map[[32]byte]chainEntry
}

// MaxCachedChains bounds a ChainCache (a real fleet has one bundle per
// instance host).
const MaxCachedChains = 4096

type chainEntry struct {
	notBefore, notAfter time.Time
	last                *x509.Certificate // the certificate that signs leaves
}

// Len is the number of bundles held.
func (c *ChainCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func bundleFingerprint(bundle []*x509.Certificate) [32]byte {
	h := sha256.New()
	for _, c := range bundle {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// trusted reports whether root is byte for byte one of the trusted roots.
func (v *Verifier) trusted(root *x509.Certificate) bool {
	for _, r := range v.Roots {
		if bytes.Equal(r.Raw, root.Raw) {
			return true
		}
	}
	for _, r := range v.RootsDER {
		if bytes.Equal(r, root.Raw) {
			return true
		}
	}
	return false
}

// verifyBundle checks that the bundle is a chain in its own order: the
// first certificate a trusted root, each next one issued by the one
// before it (the NSM's order; an intermediate out of place fails), all
// valid at now. It returns the certificate that signs leaves.
func (v *Verifier) verifyBundle(bundle []*x509.Certificate, now time.Time) (*x509.Certificate, error) {
	if !v.trusted(bundle[0]) {
		return nil, fmt.Errorf("%w: cabundle[0] is not a trusted root", ErrChain)
	}
	last := bundle[len(bundle)-1]
	var key [32]byte
	if v.Cache != nil {
		key = bundleFingerprint(bundle)
		v.Cache.mu.Lock()
		e, ok := v.Cache.m[key]
		v.Cache.mu.Unlock()
		if ok && !now.Before(e.notBefore) && !now.After(e.notAfter) {
			return e.last, nil
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(bundle[0])
	inter := x509.NewCertPool()
	for i := 1; i < len(bundle)-1; i++ {
		inter.AddCert(bundle[i])
	}
	chains, err := last.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrChain, err)
	}
	inOrder := false
	for _, ch := range chains {
		if len(ch) == len(bundle) {
			inOrder = true
			for i := range ch {
				if !ch[i].Equal(bundle[len(bundle)-1-i]) {
					inOrder = false
				}
			}
		}
		if inOrder {
			break
		}
	}
	if !inOrder {
		return nil, fmt.Errorf("%w: cabundle is not in order root, intermediates…", ErrChain)
	}
	if !last.IsCA {
		return nil, fmt.Errorf("%w: the last cabundle certificate is not a CA", ErrChain)
	}
	if v.Cache != nil {
		e := chainEntry{notBefore: bundle[0].NotBefore, notAfter: bundle[0].NotAfter, last: last}
		for _, c := range bundle[1:] {
			if c.NotBefore.After(e.notBefore) {
				e.notBefore = c.NotBefore
			}
			if c.NotAfter.Before(e.notAfter) {
				e.notAfter = c.NotAfter
			}
		}
		v.Cache.mu.Lock()
		if v.Cache.m == nil || len(v.Cache.m) >= MaxCachedChains {
			v.Cache.m = map[[32]byte]chainEntry{}
		}
		v.Cache.m[key] = e
		v.Cache.mu.Unlock()
	}
	return last, nil
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
	issuer, err := v.verifyBundle(d.CABundle, now)
	if err != nil {
		return nil, err
	}
	leaf := d.Certificate
	switch {
	case now.Before(leaf.NotBefore) || now.After(leaf.NotAfter):
		return nil, fmt.Errorf("%w: the leaf certificate is not valid at %s (valid %s to %s)", ErrChain,
			now.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	case len(leaf.UnhandledCriticalExtensions) != 0:
		return nil, fmt.Errorf("%w: the leaf has an unknown critical extension", ErrChain)
	}
	if err := leaf.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("%w: the leaf is not issued by the last cabundle certificate: %v", ErrChain, err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
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

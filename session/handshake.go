package session

import (
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"
	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
)

// Handshake errors.
var (
	ErrBadSignature   = errors.New("session: signature does not verify")
	ErrClockSkew      = errors.New("session: hello time outside the allowed clock skew")
	ErrAuthentication = errors.New("session: message authentication failed")
	ErrInvalidPoint   = errors.New("session: invalid P-384 point")
	ErrBadReply       = errors.New("session: reply does not match the hello")
)

// Defaults.
const (
	DefaultValidity = time.Hour
	DefaultMaxSkew  = 5 * time.Minute
)

// Hello is the host's handshake message.
type Hello struct {
	Domain       string
	StateVersion uint64
	HostID       string
	Q1           []byte               // the host's ephemeral public key, PointSize bytes
	Hybrid       bool                 // header version VersionHybrid: EK is set
	EK           []byte               // hybrid: the host's ephemeral ML-KEM-1024 encapsulation key
	ek           *mlkem1024.PublicKey // EK as ParseHello decoded it, for the HSM's encapsulation
	HostNonce    []byte               // NonceSize bytes
	Time         uint64               // Unix seconds
	Sig          []byte               // Sig1, DER
}

func (h *Hello) addUnsigned(b *cryptobyte.Builder) {
	addHeaderV(b, h.Hybrid, TypeHello)
	addID(b, h.Domain)
	b.AddUint64(h.StateVersion)
	addID(b, h.HostID)
	addFixed(b, h.Q1, PointSize, "Q1")
	if h.Hybrid {
		addFixed(b, h.EK, KEMKeySize, "ML-KEM encapsulation key")
	}
	addFixed(b, h.HostNonce, NonceSize, "host nonce")
	b.AddUint64(h.Time)
}

func (h *Hello) unsigned() ([]byte, error) {
	var b cryptobyte.Builder
	h.addUnsigned(&b)
	return b.Bytes()
}

// Marshal encodes the Hello.
func (h *Hello) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	h.addUnsigned(&b)
	addSig(&b, h.Sig)
	return b.Bytes()
}

// ParseHello decodes a Hello, classical or hybrid, strictly. It checks
// the encoding, that Q1 is on P-384 and that a hybrid Hello's
// encapsulation key passes FIPS 203's check, not the signature.
func ParseHello(in []byte) (*Hello, error) {
	s := cryptobyte.String(in)
	h := &Hello{}
	var err error
	if h.Hybrid, err = readHeaderV(&s, TypeHello); err != nil {
		return nil, err
	}
	if err := readID(&s, &h.Domain, "domain"); err != nil {
		return nil, err
	}
	if !s.ReadUint64(&h.StateVersion) {
		return nil, malformed("state version")
	}
	if err := readID(&s, &h.HostID, "host ID"); err != nil {
		return nil, err
	}
	if h.Q1, err = readPoint(&s, "Q1"); err != nil {
		return nil, err
	}
	if h.Hybrid {
		if h.EK, h.ek, err = readKEMKey(&s, "ML-KEM encapsulation key"); err != nil {
			return nil, err
		}
	}
	if h.HostNonce, err = readFixed(&s, NonceSize, "host nonce"); err != nil {
		return nil, err
	}
	if !s.ReadUint64(&h.Time) {
		return nil, malformed("time")
	}
	if err := readSig(&s, &h.Sig); err != nil {
		return nil, err
	}
	return h, done(s)
}

// Reply is the HSM's handshake message.
type Reply struct {
	HSMID     string
	Q2        []byte // the HSM's ephemeral public key
	Hybrid    bool   // header version VersionHybrid: CT is set
	CT        []byte // hybrid: the ML-KEM-1024 ciphertext to the Hello's EK
	HSMNonce  []byte
	SessionID [SessionIDSize]byte
	NotBefore uint64 // Unix seconds
	NotAfter  uint64
	ESK       []byte // SK under NK, ESKSize bytes
	EKT       []byte // an encoded EKT
	Sig       []byte // Sig2, DER
}

// addTranscript adds the fields the transcript hash covers: everything
// before ESK.
func (r *Reply) addTranscript(b *cryptobyte.Builder) {
	addHeaderV(b, r.Hybrid, TypeReply)
	addID(b, r.HSMID)
	addFixed(b, r.Q2, PointSize, "Q2")
	if r.Hybrid {
		addFixed(b, r.CT, KEMCiphertextSize, "ML-KEM ciphertext")
	}
	addFixed(b, r.HSMNonce, NonceSize, "HSM nonce")
	b.AddBytes(r.SessionID[:])
	b.AddUint64(r.NotBefore)
	b.AddUint64(r.NotAfter)
}

func (r *Reply) addUnsigned(b *cryptobyte.Builder) {
	r.addTranscript(b)
	addFixed(b, r.ESK, ESKSize, "ESK")
	if len(r.EKT) == 0 || len(r.EKT) > MaxEKTLen {
		b.SetError(errors.New("session: EKT length out of range"))
		return
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.EKT) })
}

func (r *Reply) transcriptPart() ([]byte, error) {
	var b cryptobyte.Builder
	r.addTranscript(&b)
	return b.Bytes()
}

func (r *Reply) unsigned() ([]byte, error) {
	var b cryptobyte.Builder
	r.addUnsigned(&b)
	return b.Bytes()
}

// Marshal encodes the Reply.
func (r *Reply) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	r.addUnsigned(&b)
	addSig(&b, r.Sig)
	return b.Bytes()
}

// ParseReply decodes a Reply, classical or hybrid, strictly, including
// the EKT it carries.
func ParseReply(in []byte) (*Reply, error) {
	s := cryptobyte.String(in)
	r := &Reply{}
	var err error
	if r.Hybrid, err = readHeaderV(&s, TypeReply); err != nil {
		return nil, err
	}
	if err := readID(&s, &r.HSMID, "HSM ID"); err != nil {
		return nil, err
	}
	if r.Q2, err = readPoint(&s, "Q2"); err != nil {
		return nil, err
	}
	if r.Hybrid {
		if r.CT, err = readFixed(&s, KEMCiphertextSize, "ML-KEM ciphertext"); err != nil {
			return nil, err
		}
	}
	if r.HSMNonce, err = readFixed(&s, NonceSize, "HSM nonce"); err != nil {
		return nil, err
	}
	if !s.CopyBytes(r.SessionID[:]) || !s.ReadUint64(&r.NotBefore) || !s.ReadUint64(&r.NotAfter) {
		return nil, malformed("session ID or validity")
	}
	if r.ESK, err = readFixed(&s, ESKSize, "ESK"); err != nil {
		return nil, err
	}
	var ekt cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&ekt) || len(ekt) == 0 || len(ekt) > MaxEKTLen {
		return nil, malformed("EKT")
	}
	if _, err := ParseEKT(ekt); err != nil {
		return nil, err
	}
	r.EKT = append([]byte(nil), ekt...)
	if err := readSig(&s, &r.Sig); err != nil {
		return nil, err
	}
	return r, done(s)
}

func addFixed(b *cryptobyte.Builder, v []byte, n int, what string) {
	wire.AddFixed(b, v, n, "session: "+what)
}

// readPoint reads an uncompressed P-384 point and checks it is on the
// curve (which also excludes the identity, which has no such encoding).
func readPoint(s *cryptobyte.String, what string) ([]byte, error) {
	p, err := readFixed(s, PointSize, what)
	if err != nil {
		return nil, err
	}
	if err := checkPoint(p); err != nil {
		return nil, fmt.Errorf("%w: %s", err, what)
	}
	return p, nil
}

func checkPoint(p []byte) error {
	if len(p) != PointSize || p[0] != 4 {
		return ErrInvalidPoint
	}
	if _, err := ecdh.P384().NewPublicKey(p); err != nil {
		return ErrInvalidPoint
	}
	return nil
}

// sessionIDFor derives the session ID: the first 16 bytes of
// SHA-384(label ‖ 0x00 ‖ SHA-384(Hello) ‖ Q2 ‖ HSM nonce).
func sessionIDFor(helloHash, q2, hsmNonce []byte) (id [SessionIDSize]byte) {
	copy(id[:], labelled(labelSessionID, helloHash, q2, hsmNonce))
	return id
}

// nkFixedInfo is the FixedInfo of the negotiated-key KDF.
func nkFixedInfo(hostID, hsmID string, q1, q2, hostNonce, hsmNonce []byte) []byte {
	fi := append([]byte(labelNK), 0)
	fi = append(fi, lp8([]byte(hostID))...)
	fi = append(fi, lp8([]byte(hsmID))...)
	fi = append(fi, q1...)
	fi = append(fi, q2...)
	fi = append(fi, hostNonce...)
	return append(fi, hsmNonce...)
}

// zeroNonce is the AES-GCM nonce under single-use keys (NK, one-pass KEKs).
var zeroNonce = make([]byte, gcmNonceSize)

// Host is the service-host end of the handshake.
type Host struct {
	ID     string
	Signer crypto.Signer // the host's identity key: its own token, or a PEM key in dev mode
	Dir    Directory

	// Optional.
	Now          func() time.Time
	Rand         io.Reader                        // the host nonce; crypto/rand if nil
	NewEphemeral func() (*ecdh.PrivateKey, error) // d1; a fresh P-384 key if nil
	// Hybrid says whether Begin makes a hybrid Hello (a P-384 and an
	// ML-KEM-1024 ephemeral key); classical if nil.
	Hybrid  func() bool
	KEMRand io.Reader // the ML-KEM key's 64-byte seed d ‖ z; crypto/rand if nil
}

func (h *Host) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// Pending is a handshake the host has begun.
type Pending struct {
	host  *Host
	hello *Hello
	raw   []byte
	d1    *ecdh.PrivateKey
	dk    *mlkem1024.PrivateKey // hybrid: the ML-KEM decapsulation key
}

// Begin makes d1 and the signed Hello.
func (h *Host) Begin() (*Pending, []byte, error) {
	newEph := h.NewEphemeral
	if newEph == nil {
		newEph = func() (*ecdh.PrivateKey, error) { return ecdh.P384().GenerateKey(rand.Reader) }
	}
	d1, err := newEph()
	if err != nil {
		return nil, nil, fmt.Errorf("session: ephemeral key: %w", err)
	}
	r := h.Rand
	if r == nil {
		r = rand.Reader
	}
	nonce := make([]byte, NonceSize)
	if _, err := io.ReadFull(r, nonce); err != nil {
		return nil, nil, fmt.Errorf("session: host nonce: %w", err)
	}
	name, version := h.Dir.Domain()
	hello := &Hello{
		Domain: name, StateVersion: version, HostID: h.ID,
		Q1: d1.PublicKey().Bytes(), HostNonce: nonce, Time: uint64(h.now().Unix()),
	}
	var dk *mlkem1024.PrivateKey
	if h.Hybrid != nil && h.Hybrid() {
		kr := h.KEMRand
		if kr == nil {
			kr = rand.Reader
		}
		seed := make([]byte, KEMSeedSize)
		if _, err := io.ReadFull(kr, seed); err != nil {
			return nil, nil, fmt.Errorf("session: ML-KEM key: %w", err)
		}
		dk, hello.EK, err = KEMKeyFromSeed(seed)
		clear(seed)
		if err != nil {
			return nil, nil, err
		}
		hello.Hybrid = true
	}
	unsigned, err := hello.unsigned()
	if err != nil {
		return nil, nil, err
	}
	if hello.Sig, err = sign(h.Signer, labelHello, unsigned); err != nil {
		return nil, nil, err
	}
	raw, err := hello.Marshal()
	if err != nil {
		return nil, nil, err
	}
	return &Pending{host: h, hello: hello, raw: raw, d1: d1, dk: dk}, raw, nil
}

// Finish checks the HSM's Reply and returns the session. It verifies Sig2
// with the HSM's signing key from the host's domain view, the session ID,
// computes Z and NK, and opens ESK. A Pending can finish once.
func (p *Pending) Finish(reply []byte) (*Session, error) {
	if p.d1 == nil {
		return nil, errors.New("session: handshake already finished")
	}
	d1 := p.d1
	p.d1 = nil
	r, err := ParseReply(reply)
	if err != nil {
		return nil, err
	}
	// The Reply's mode is the Hello's: a classical Reply to a hybrid Hello
	// is a downgrade, refused before anything else of it is trusted.
	if r.Hybrid != p.hello.Hybrid {
		return nil, fmt.Errorf("%w: reply mode (hybrid %v) is not the hello's (hybrid %v)", ErrBadReply, r.Hybrid, p.hello.Hybrid)
	}
	sigKey, _, err := p.host.Dir.Member(r.HSMID)
	if err != nil {
		return nil, err
	}
	helloHash := hash384(p.raw)
	unsigned, err := r.unsigned()
	if err != nil {
		return nil, err
	}
	if !verify(sigKey, r.Sig, labelReply, helloHash, unsigned) {
		return nil, fmt.Errorf("%w: reply from %q", ErrBadSignature, r.HSMID)
	}
	if want := sessionIDFor(helloHash, r.Q2, r.HSMNonce); subtle.ConstantTimeCompare(want[:], r.SessionID[:]) != 1 {
		return nil, fmt.Errorf("%w: session ID", ErrBadReply)
	}
	if r.NotAfter <= r.NotBefore {
		return nil, fmt.Errorf("%w: empty validity period", ErrBadReply)
	}
	q2, err := ecdh.P384().NewPublicKey(r.Q2)
	if err != nil {
		return nil, ErrInvalidPoint
	}
	z, err := d1.ECDH(q2)
	if err != nil {
		return nil, fmt.Errorf("session: ecdh: %w", err)
	}
	var nk []byte
	if r.Hybrid {
		zk, err := kemDecaps(p.dk, r.CT)
		if err != nil {
			clear(z)
			return nil, err
		}
		zh := hybridSecret(z, zk)
		nk = oneStepKDF(zh, nkFixedInfoHybrid(p.host.ID, r.HSMID, p.hello.Q1, r.Q2, p.hello.EK, r.CT, p.hello.HostNonce, r.HSMNonce))
		clear(zk)
		clear(zh)
		p.dk = nil
	} else {
		nk = oneStepKDF(z, nkFixedInfo(p.host.ID, r.HSMID, p.hello.Q1, r.Q2, p.hello.HostNonce, r.HSMNonce))
	}
	clear(z)
	transcript, err := r.transcriptPart()
	if err != nil {
		return nil, err
	}
	th := labelled(labelTranscript, helloHash, transcript)
	sk, err := gcm(nk).Open(nil, zeroNonce, r.ESK, th)
	clear(nk)
	if err != nil {
		return nil, fmt.Errorf("%w: ESK", ErrAuthentication)
	}
	return newSession(r, p.host.ID, sk), nil
}

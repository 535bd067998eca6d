package session

import (
	"crypto"
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// EphemeralKey is an ephemeral ECDH P-384 key held where its owner keeps
// secrets: a session object in the HSM's token (hsm.AgreementKey).
type EphemeralKey interface {
	PublicKey() *ecdh.PublicKey
	// ECDH returns Z with the peer's uncompressed point; the caller clears it.
	ECDH(peer []byte) ([]byte, error)
	// Destroy removes the key.
	Destroy() error
}

// HSMConfig configures the HSM end of the protocol.
type HSMConfig struct {
	ID           string
	Signer       crypto.Signer                // dHSK, in the token
	NewEphemeral func() (EphemeralKey, error) // d2, in the token
	Rand         io.Reader                    // the token's RNG
	Dir          Directory                    // the HSM's current domain view
	Keys         KeyRing                      // the domain keys, in the token

	Validity  time.Duration    // EKT validity; DefaultValidity if zero
	MaxSkew   time.Duration    // allowed clock skew; DefaultMaxSkew if zero
	CacheSize int              // sessions cached; 4096 if zero
	Now       func() time.Time // time.Now if nil
}

// HSM is the HSM end of the protocol: it answers Hellos and opens
// Envelopes. It is safe for concurrent use.
type HSM struct {
	id       string
	signer   crypto.Signer
	newEph   func() (EphemeralKey, error)
	rand     io.Reader
	dir      Directory
	keys     KeyRing
	validity time.Duration
	maxSkew  time.Duration
	nowFn    func() time.Time
	cache    *cache

	classical, hybrid atomic.Uint64 // handshakes answered, by mode
}

// NewHSM checks cfg and returns the HSM end.
func NewHSM(cfg HSMConfig) (*HSM, error) {
	if !validID(cfg.ID) || cfg.Signer == nil || cfg.NewEphemeral == nil || cfg.Rand == nil || cfg.Dir == nil || cfg.Keys == nil {
		return nil, errors.New("session: incomplete HSM configuration")
	}
	h := &HSM{
		id: cfg.ID, signer: cfg.Signer, newEph: cfg.NewEphemeral, rand: cfg.Rand,
		dir: cfg.Dir, keys: cfg.Keys, validity: cfg.Validity, maxSkew: cfg.MaxSkew, nowFn: cfg.Now,
		cache: &cache{m: map[[SessionIDSize]byte]*entry{}, max: cfg.CacheSize},
	}
	if h.validity == 0 {
		h.validity = DefaultValidity
	}
	if h.validity < time.Second {
		return nil, errors.New("session: validity under one second")
	}
	if h.maxSkew == 0 {
		h.maxSkew = DefaultMaxSkew
	}
	if h.cache.max <= 0 {
		h.cache.max = 4096
	}
	if h.nowFn == nil {
		h.nowFn = time.Now
	}
	return h, nil
}

func (h *HSM) now() time.Time { return h.nowFn() }

// HandshakeCounts is the number of classical and hybrid handshakes the
// HSM has answered (not those it refused).
func (h *HSM) HandshakeCounts() (classical, hybrid uint64) {
	return h.classical.Load(), h.hybrid.Load()
}

// CachedSessions is the number of sessions in the HSM's cache.
func (h *HSM) CachedSessions() int { return h.cache.len() }

// Handshake answers a Hello, classical or hybrid, in its mode: it checks
// the domain, the session policy (a classical Hello to a domain that
// requires hybrid is ErrHybridRequired), the time, the host's role and
// Sig1; makes d2 in the token, Z (with a hybrid Hello, Z_ecdh ‖ the secret
// of an ML-KEM-1024 encapsulation to the Hello's key) and NK; draws SK; and
// returns the signed Reply with ESK and an EKT under the active domain key.
// The session is cached, so the host's first envelope needs no EKT opening.
func (h *HSM) Handshake(raw []byte) ([]byte, error) {
	hello, err := ParseHello(raw)
	if err != nil {
		return nil, err
	}
	name, version := h.dir.Domain()
	if hello.Domain != name ||
		hello.StateVersion != version {
		return nil, fmt.Errorf("%w: hello for %q version %d, HSM at %q version %d",
			ErrDomainMismatch, hello.Domain, hello.StateVersion, name, version)
	}
	if !hello.Hybrid && RequiresHybrid(h.dir) {
		return nil, fmt.Errorf("%w: classical hello from %q refused", ErrHybridRequired, hello.HostID)
	}
	now := h.now()
	if d := time.Duration(int64(hello.Time)-now.Unix()) * time.Second; d > h.maxSkew || -d > h.maxSkew {
		return nil, ErrClockSkew
	}
	hostKey, err := h.dir.HostKey(hello.HostID)
	if err != nil {
		return nil, err
	}
	unsigned, err := hello.unsigned()
	if err != nil {
		return nil, err
	}
	if !verify(hostKey, hello.Sig, labelHello, unsigned) {
		return nil, fmt.Errorf("%w: hello from %q", ErrBadSignature, hello.HostID)
	}
	keyID, dk, err := h.keys.Active()
	if err != nil {
		return nil, err
	}

	d2, err := h.newEph()
	if err != nil {
		return nil, fmt.Errorf("session: ephemeral key: %w", err)
	}
	z, err := d2.ECDH(hello.Q1)
	q2 := d2.PublicKey().Bytes()
	if derr := d2.Destroy(); err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("session: ecdh: %w", err)
	}
	defer func() { clear(z) }()

	// One read from the token RNG: HSM nonce ‖ SK ‖ EKT nonce, and for a
	// hybrid Hello the ML-KEM encapsulation randomness m.
	n := NonceSize + SKSize + gcmNonceSize
	if hello.Hybrid {
		n += kemEncapsSize
	}
	rnd := make([]byte, n)
	defer clear(rnd)
	if _, err := io.ReadFull(h.rand, rnd); err != nil {
		return nil, fmt.Errorf("session: random: %w", err)
	}
	hsmNonce, sk, ektNonce := rnd[:NonceSize], rnd[NonceSize:NonceSize+SKSize], rnd[NonceSize+SKSize:NonceSize+SKSize+gcmNonceSize]
	var ct []byte
	if hello.Hybrid {
		var zk []byte
		ct, zk = kemEncaps(hello.ek, rnd[NonceSize+SKSize+gcmNonceSize:])
		zh := hybridSecret(z, zk)
		clear(zk)
		clear(z)
		z = zh
	}

	helloHash := hash384(raw)
	notBefore := uint64(now.Unix())
	r := &Reply{
		HSMID: h.id, Q2: q2, Hybrid: hello.Hybrid, CT: ct, HSMNonce: append([]byte(nil), hsmNonce...),
		SessionID: sessionIDFor(helloHash, q2, hsmNonce),
		NotBefore: notBefore, NotAfter: notBefore + uint64(h.validity/time.Second),
	}
	fi := nkFixedInfo(hello.HostID, h.id, hello.Q1, q2, hello.HostNonce, hsmNonce)
	if hello.Hybrid {
		fi = nkFixedInfoHybrid(hello.HostID, h.id, hello.Q1, q2, hello.EK, ct, hello.HostNonce, hsmNonce)
	}
	nk := oneStepKDF(z, fi)
	defer clear(nk)
	transcript, err := r.transcriptPart()
	if err != nil {
		return nil, err
	}
	r.ESK = gcm(nk).Seal(nil, zeroNonce, sk, labelled(labelTranscript, helloHash, transcript))
	r.EKT, err = sealEKT(dk, keyID, ektNonce, &ektPlain{
		SK: sk, HostID: hello.HostID, SessionID: r.SessionID, NotBefore: r.NotBefore, NotAfter: r.NotAfter,
	})
	if err != nil {
		return nil, err
	}
	unsignedReply, err := r.unsigned()
	if err != nil {
		return nil, err
	}
	if r.Sig, err = sign(h.signer, labelReply, helloHash, unsignedReply); err != nil {
		return nil, err
	}
	out, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	if hello.Hybrid {
		h.hybrid.Add(1)
	} else {
		h.classical.Add(1)
	}
	skCopy := append([]byte(nil), sk...)
	h.cache.put(r.SessionID, &entry{
		sk: skCopy, aead: gcm(skCopy), hostID: hello.HostID,
		notBefore: r.NotBefore, notAfter: r.NotAfter, keyID: keyID, ekt: r.EKT, ektHash: hash384(r.EKT),
	})
	return out, nil
}

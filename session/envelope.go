package session

import (
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Envelope errors.
var (
	ErrExpired         = errors.New("session: EKT validity period has ended")
	ErrNotYetValid     = errors.New("session: EKT validity period has not begun")
	ErrWrongHost       = errors.New("session: EKT belongs to another host")
	ErrSessionMismatch = errors.New("session: envelope and EKT name different sessions")
	ErrReplay          = errors.New("session: sequence number already used or too old")
	ErrSessionClosed   = errors.New("session: session closed")
	ErrSeqExhausted    = errors.New("session: sequence numbers exhausted")
)

// Envelope carries one command from a host to any HSM of the domain.
type Envelope struct {
	EKT        []byte
	SessionID  [SessionIDSize]byte
	HostID     string
	Seq        uint64
	Type       uint16 // command type, for the HSM's dispatcher
	Ciphertext []byte // AES-256-GCM(SK, command) ‖ tag
}

// Marshal encodes the Envelope.
func (e *Envelope) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	addHeader(&b, TypeEnvelope)
	if len(e.EKT) == 0 || len(e.EKT) > MaxEKTLen {
		b.SetError(errors.New("session: EKT length out of range"))
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.EKT) })
	b.AddBytes(e.SessionID[:])
	addID(&b, e.HostID)
	b.AddUint64(e.Seq)
	b.AddUint16(e.Type)
	addCiphertext(&b, e.Ciphertext)
	return b.Bytes()
}

func addCiphertext(b *cryptobyte.Builder, ct []byte) {
	if len(ct) < tagSize || len(ct) > maxCiphertext {
		b.SetError(errors.New("session: ciphertext length out of range"))
		return
	}
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ct) })
}

func readCiphertext(s *cryptobyte.String) ([]byte, error) {
	var ct cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&ct) || len(ct) < tagSize || len(ct) > maxCiphertext {
		return nil, malformed("ciphertext")
	}
	return append([]byte(nil), ct...), nil
}

// ParseEnvelope decodes an Envelope strictly, including its EKT's encoding.
func ParseEnvelope(in []byte) (*Envelope, error) {
	s := cryptobyte.String(in)
	e := &Envelope{}
	if err := readHeader(&s, TypeEnvelope); err != nil {
		return nil, err
	}
	var ekt cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&ekt) || len(ekt) == 0 || len(ekt) > MaxEKTLen {
		return nil, malformed("EKT")
	}
	if _, err := ParseEKT(ekt); err != nil {
		return nil, err
	}
	e.EKT = append([]byte(nil), ekt...)
	if !s.CopyBytes(e.SessionID[:]) {
		return nil, malformed("session ID")
	}
	if err := readID(&s, &e.HostID, "host ID"); err != nil {
		return nil, err
	}
	if !s.ReadUint64(&e.Seq) || !s.ReadUint16(&e.Type) {
		return nil, malformed("sequence number or type")
	}
	var err error
	if e.Ciphertext, err = readCiphertext(&s); err != nil {
		return nil, err
	}
	return e, done(s)
}

// envelopeAAD binds every field of the envelope but the ciphertext:
// label ‖ 0x00 ‖ SHA-384(EKT) ‖ session ID ‖ len ‖ host ID ‖ seq ‖ type.
func envelopeAAD(ektHash []byte, sid [SessionIDSize]byte, hostID string, seq uint64, typ uint16) []byte {
	aad := append([]byte(labelEnvelope), 0)
	aad = append(aad, ektHash...)
	aad = append(aad, sid[:]...)
	aad = append(aad, lp8([]byte(hostID))...)
	aad = append(aad, u64(seq)...)
	return append(aad, u16(typ)...)
}

// Response carries an HSM's answer to one Envelope, bound to it.
type Response struct {
	SessionID  [SessionIDSize]byte
	Seq        uint64
	Ciphertext []byte
}

// Marshal encodes the Response.
func (r *Response) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	addHeader(&b, TypeResponse)
	b.AddBytes(r.SessionID[:])
	b.AddUint64(r.Seq)
	addCiphertext(&b, r.Ciphertext)
	return b.Bytes()
}

// ParseResponse decodes a Response strictly.
func ParseResponse(in []byte) (*Response, error) {
	s := cryptobyte.String(in)
	r := &Response{}
	if err := readHeader(&s, TypeResponse); err != nil {
		return nil, err
	}
	if !s.CopyBytes(r.SessionID[:]) || !s.ReadUint64(&r.Seq) {
		return nil, malformed("response session ID or sequence number")
	}
	var err error
	if r.Ciphertext, err = readCiphertext(&s); err != nil {
		return nil, err
	}
	return r, done(s)
}

// responseAAD is label ‖ 0x00 ‖ SHA-384(request envelope) ‖ session ID ‖ seq.
func responseAAD(requestHash []byte, sid [SessionIDSize]byte, seq uint64) []byte {
	aad := append([]byte(labelResponse), 0)
	aad = append(aad, requestHash...)
	aad = append(aad, sid[:]...)
	return append(aad, u64(seq)...)
}

// Session is the host's end of an established session. It is safe for
// concurrent use: each Seal takes the next sequence number.
type Session struct {
	ID        [SessionIDSize]byte
	HostID    string
	HSMID     string // the HSM that made it; any HSM of the domain serves it
	NotBefore time.Time
	NotAfter  time.Time
	Hybrid    bool // made by the hybrid handshake (ML-KEM-1024 + P-384)

	ekt     []byte
	ektHash []byte
	mu      sync.RWMutex
	sk      []byte
	aead    cipher.AEAD
	seq     atomic.Uint64
}

func newSession(r *Reply, hostID string, sk []byte) *Session {
	return &Session{
		ID: r.SessionID, HostID: hostID, HSMID: r.HSMID, Hybrid: r.Hybrid,
		NotBefore: time.Unix(int64(r.NotBefore), 0), NotAfter: time.Unix(int64(r.NotAfter), 0),
		ekt: r.EKT, ektHash: hash384(r.EKT), sk: sk, aead: gcm(sk),
	}
}

// EKT returns the session's encoded EKT.
func (s *Session) EKT() []byte { return append([]byte(nil), s.ekt...) }

// Seal wraps a command of type typ in an Envelope with the next sequence
// number (the first is 1) and returns its encoding and the number.
func (s *Session) Seal(typ uint16, command []byte) ([]byte, uint64, error) {
	if len(command) > MaxCommandLen {
		return nil, 0, fmt.Errorf("session: command of %d bytes exceeds %d", len(command), MaxCommandLen)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.aead == nil {
		return nil, 0, ErrSessionClosed
	}
	seq := s.seq.Add(1)
	if seq == 0 {
		return nil, 0, ErrSeqExhausted
	}
	e := &Envelope{EKT: s.ekt, SessionID: s.ID, HostID: s.HostID, Seq: seq, Type: typ}
	e.Ciphertext = s.aead.Seal(nil, seqNonce(0, seq), command, envelopeAAD(s.ektHash, s.ID, s.HostID, seq, typ))
	out, err := e.Marshal()
	return out, seq, err
}

// Open checks and decrypts the HSM's response to the request envelope.
func (s *Session) Open(request, response []byte) ([]byte, error) {
	r, err := ParseResponse(response)
	if err != nil {
		return nil, err
	}
	req, err := ParseEnvelope(request)
	if err != nil {
		return nil, err
	}
	if r.SessionID != s.ID || req.SessionID != s.ID || r.Seq != req.Seq {
		return nil, fmt.Errorf("%w: response is for another request", ErrAuthentication)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.aead == nil {
		return nil, ErrSessionClosed
	}
	pt, err := s.aead.Open(nil, seqNonce(1, r.Seq), r.Ciphertext, responseAAD(hash384(request), s.ID, r.Seq))
	if err != nil {
		return nil, fmt.Errorf("%w: response", ErrAuthentication)
	}
	return pt, nil
}

// Close clears the session key; later Seal and Open fail with
// ErrSessionClosed. (The AES key schedule inside crypto/aes cannot be
// cleared; it becomes garbage.)
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sk)
	s.sk, s.aead = nil, nil
}

// window is an anti-replay window over the last windowSize sequence
// numbers, as in IPsec (RFC 4303 §3.4.3): numbers above the highest seen
// are new; numbers within the window are new if not yet marked; older ones
// are refused.
type window struct {
	top  uint64
	bits [windowSize / 64]uint64
}

const windowSize = 1024

func (w *window) fresh(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq > w.top {
		return true
	}
	if w.top-seq >= windowSize {
		return false
	}
	i := seq % windowSize
	return w.bits[i/64]&(1<<(i%64)) == 0
}

// mark records seq, which fresh has accepted.
func (w *window) mark(seq uint64) {
	if seq > w.top {
		if seq-w.top >= windowSize {
			clear(w.bits[:])
		} else {
			for n := w.top + 1; n < seq; n++ {
				i := n % windowSize
				w.bits[i/64] &^= 1 << (i % 64)
			}
		}
		w.top = seq
	}
	i := seq % windowSize
	w.bits[i/64] |= 1 << (i % 64)
}

// entry is an HSM's cached session.
type entry struct {
	sk        []byte
	aead      cipher.AEAD
	hostID    string
	notBefore uint64
	notAfter  uint64
	keyID     [KeyIDSize]byte
	ekt       []byte
	ektHash   []byte

	mu  sync.Mutex
	win window
}

// cache holds sessions by ID, at most max, evicting the oldest first and
// clearing its key.
type cache struct {
	mu    sync.Mutex
	m     map[[SessionIDSize]byte]*entry
	order [][SessionIDSize]byte
	max   int
}

func (c *cache) get(id [SessionIDSize]byte) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

// put stores e unless the session is cached already, and returns the
// cached entry.
func (c *cache) put(id [SessionIDSize]byte, e *entry) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[id]; old != nil {
		clear(e.sk)
		return old
	}
	for len(c.m) >= c.max && len(c.order) > 0 {
		victim := c.order[0]
		c.order = c.order[1:]
		if v := c.m[victim]; v != nil {
			v.mu.Lock()
			clear(v.sk)
			v.aead = nil
			v.mu.Unlock()
			delete(c.m, victim)
		}
	}
	c.m[id] = e
	c.order = append(c.order, id)
	return e
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Request is a command an HSM has opened from an Envelope.
type Request struct {
	SessionID [SessionIDSize]byte
	HostID    string
	Seq       uint64
	Type      uint16
	Command   []byte

	aead    cipher.AEAD // captured at Open: eviction may clear the cache entry
	reqHash []byte
}

// Seal returns the encoded Response carrying resp, bound to the request.
func (r *Request) Seal(resp []byte) ([]byte, error) {
	if len(resp) > MaxCommandLen {
		return nil, fmt.Errorf("session: response of %d bytes exceeds %d", len(resp), MaxCommandLen)
	}
	out := &Response{SessionID: r.SessionID, Seq: r.Seq}
	out.Ciphertext = r.aead.Seal(nil, seqNonce(1, r.Seq), resp, responseAAD(r.reqHash, r.SessionID, r.Seq))
	return out.Marshal()
}

// Open checks and decrypts an Envelope: the EKT (from the cache, or opened
// with the retained domain key it names), its validity period, that it
// belongs to the sending host, the sequence window, and the command.
// Nothing changes unless every check passes.
func (h *HSM) Open(envelope []byte) (*Request, error) {
	env, err := ParseEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	// A session evicted while we look is a cache miss: the EKT is opened
	// again (its window then starts afresh; docs/protocol.md, Replay).
	for {
		req, evicted, err := h.open(env, envelope)
		if !evicted {
			return req, err
		}
	}
}

func (h *HSM) open(env *Envelope, envelope []byte) (req *Request, evicted bool, err error) {
	e := h.cache.get(env.SessionID)
	if e != nil && subtle.ConstantTimeCompare(e.ekt, env.EKT) != 1 {
		return nil, false, fmt.Errorf("%w: EKT differs from the session's", ErrAuthentication)
	}
	if e == nil {
		p, keyID, err := openEKT(h.keys, env.EKT)
		if err != nil {
			return nil, false, err
		}
		if p.SessionID != env.SessionID {
			clear(p.SK)
			return nil, false, ErrSessionMismatch
		}
		e = h.cache.put(env.SessionID, &entry{
			sk: p.SK, aead: gcm(p.SK), hostID: p.HostID,
			notBefore: p.NotBefore, notAfter: p.NotAfter, keyID: keyID, ekt: env.EKT, ektHash: hash384(env.EKT),
		})
	}
	if _, err := h.keys.Key(e.keyID); err != nil {
		return nil, false, err
	}
	now := h.now()
	if now.Unix() < int64(e.notBefore)-int64(h.maxSkew/time.Second) {
		return nil, false, ErrNotYetValid
	}
	if now.Unix() >= int64(e.notAfter) {
		return nil, false, ErrExpired
	}
	if env.HostID != e.hostID {
		return nil, false, ErrWrongHost
	}
	e.mu.Lock()
	fresh := e.win.fresh(env.Seq)
	aead := e.aead
	e.mu.Unlock()
	if aead == nil {
		return nil, true, nil
	}
	if !fresh {
		return nil, false, ErrReplay
	}
	cmd, err := aead.Open(nil, seqNonce(0, env.Seq), env.Ciphertext,
		envelopeAAD(e.ektHash, env.SessionID, env.HostID, env.Seq, env.Type))
	if err != nil {
		return nil, false, fmt.Errorf("%w: envelope", ErrAuthentication)
	}
	// Check and mark atomically, after authentication: of two copies of
	// one envelope opened at once, one wins.
	e.mu.Lock()
	if e.aead == nil {
		e.mu.Unlock()
		return nil, true, nil
	}
	if !e.win.fresh(env.Seq) {
		e.mu.Unlock()
		return nil, false, ErrReplay
	}
	e.win.mark(env.Seq)
	e.mu.Unlock()
	return &Request{
		SessionID: env.SessionID, HostID: env.HostID, Seq: env.Seq, Type: env.Type, Command: cmd,
		aead: aead, reqHash: hash384(envelope),
	}, false, nil
}

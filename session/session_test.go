package session_test

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

// world is a domain on real SoftHSM tokens: two member HSMs holding the
// same domain key (as a domain token would give them), a service host whose
// identity key is in a token of its own, a second service host with a
// software key (dev mode), and an operator without the service-host role.
type world struct {
	t                  testing.TB
	dir                *session.StaticDirectory
	hsm1, hsm2         *session.HSM
	ring1, ring2       *session.MemoryKeyRing
	dkID               [session.KeyIDSize]byte
	host, host2        *session.Host
	opKey              *ecdsa.PrivateKey
	hsm1ID, hsm2ID     string
	hsm1Tok            *hsm.Token
	hsm1Keys, hsm2Keys *hsm.Identity
	clock              *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newWorld(t testing.TB) *world {
	store := softhsmtest.NewStore(t)
	w := &world{t: t, clock: &clock{t: time.Now()}}
	tok1 := softhsmtest.OpenToken(t, store, "hsm-1")
	tok2 := softhsmtest.OpenToken(t, store, "hsm-2")
	hostTok := softhsmtest.OpenToken(t, store, "host-1")
	w.hsm1Tok = tok1
	var err error
	w.hsm1Keys, _, err = tok1.EnsureIdentity()
	require.NoError(t, err)
	w.hsm2Keys, _, err = tok2.EnsureIdentity()
	require.NoError(t, err)
	hostID, _, err := hostTok.EnsureIdentity()
	require.NoError(t, err)
	host2Key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	w.opKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	w.hsm1ID, w.hsm2ID = w.hsm1Keys.ID(), w.hsm2Keys.ID()

	w.dir, err = session.NewStaticDirectory("test-domain", 3,
		[]session.Operator{
			{ID: "host-1", Key: hostID.Signing.PublicKey(), Roles: []string{session.RoleServiceHost}},
			{ID: "host-2", Key: &host2Key.PublicKey, Roles: []string{session.RoleServiceHost}},
			{ID: "op-1", Key: &w.opKey.PublicKey, Roles: []string{"kms-operator"}},
		},
		[]session.Member{
			{ID: w.hsm1ID, Signing: w.hsm1Keys.Signing.PublicKey(), Agreement: w.hsm1Keys.Agreement.PublicKey()},
			{ID: w.hsm2ID, Signing: w.hsm2Keys.Signing.PublicKey(), Agreement: w.hsm2Keys.Agreement.PublicKey()},
		})
	require.NoError(t, err)

	// The same domain key in both tokens, as importing a domain token does.
	dk := make([]byte, 32)
	rand.Read(dk)
	rand.Read(w.dkID[:])
	w.ring1, w.ring2 = session.NewMemoryKeyRing(), session.NewMemoryKeyRing()
	for _, p := range []struct {
		tok  *hsm.Token
		ring *session.MemoryKeyRing
	}{{tok1, w.ring1}, {tok2, w.ring2}} {
		k, err := p.tok.ImportSecretKey(hsm.AES256, dk)
		require.NoError(t, err)
		p.ring.Add(w.dkID, k, true)
	}
	clear(dk)

	w.hsm1 = newHSMEnd(t, tok1, w.hsm1Keys, w.dir, w.ring1, w.clock.Now)
	w.hsm2 = newHSMEnd(t, tok2, w.hsm2Keys, w.dir, w.ring2, w.clock.Now)
	w.host = &session.Host{ID: "host-1", Signer: hostID.Signing, Dir: w.dir, Now: w.clock.Now}
	w.host2 = &session.Host{ID: "host-2", Signer: host2Key, Dir: w.dir, Now: w.clock.Now}
	return w
}

func newHSMEnd(t testing.TB, tok *hsm.Token, id *hsm.Identity, dir session.Directory, ring session.KeyRing, now func() time.Time) *session.HSM {
	h, err := session.NewHSM(session.HSMConfig{
		ID:     id.ID(),
		Signer: id.Signing,
		NewEphemeral: func() (session.EphemeralKey, error) {
			return tok.GenerateEphemeralAgreementKey()
		},
		Rand: tok.Reader(),
		Dir:  dir, Keys: ring, Now: now,
	})
	require.NoError(t, err)
	return h
}

func (w *world) handshake(host *session.Host, h *session.HSM) *session.Session {
	w.t.Helper()
	p, hello, err := host.Begin()
	require.NoError(w.t, err)
	reply, err := h.Handshake(hello)
	require.NoError(w.t, err)
	s, err := p.Finish(reply)
	require.NoError(w.t, err)
	return s
}

func roundTrip(t *testing.T, s *session.Session, h *session.HSM, cmd []byte) {
	t.Helper()
	req, _, err := s.Seal(7, cmd)
	require.NoError(t, err)
	r, err := h.Open(req)
	require.NoError(t, err)
	assert.Equal(t, cmd, r.Command)
	assert.Equal(t, uint16(7), r.Type)
	assert.Equal(t, s.HostID, r.HostID)
	resp, err := r.Seal(append([]byte("re: "), cmd...))
	require.NoError(t, err)
	got, err := s.Open(req, resp)
	require.NoError(t, err)
	assert.Equal(t, append([]byte("re: "), cmd...), got)
}

func TestHandshakeOnTokens(t *testing.T) {
	w := newWorld(t)
	s := w.handshake(w.host, w.hsm1)
	assert.Equal(t, w.hsm1ID, s.HSMID)
	assert.WithinDuration(t, w.clock.Now().Add(session.DefaultValidity), s.NotAfter, 2*time.Second)
	roundTrip(t, s, w.hsm1, []byte("hello"))
	roundTrip(t, s, w.hsm1, nil)
	roundTrip(t, s, w.hsm1, bytes.Repeat([]byte{1}, 1<<16))

	// A session made with HSM 1 works on HSM 2 of the same domain: it has
	// never seen the session and recovers SK from the EKT.
	assert.Zero(t, w.hsm2.CachedSessions())
	roundTrip(t, s, w.hsm2, []byte("on hsm-2"))
	assert.Equal(t, 1, w.hsm2.CachedSessions())
	roundTrip(t, s, w.hsm1, []byte("back on hsm-1"))

	// A host with a software identity key (dev mode) too.
	s2 := w.handshake(w.host2, w.hsm2)
	roundTrip(t, s2, w.hsm1, []byte("host-2"))
}

func TestConcurrentEnvelopes(t *testing.T) {
	w := newWorld(t)
	s := w.handshake(w.host, w.hsm1)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 20 {
				h := w.hsm1
				if (i+j)%2 == 0 {
					h = w.hsm2
				}
				req, _, err := s.Seal(1, []byte{byte(i), byte(j)})
				if !assert.NoError(t, err) {
					return
				}
				r, err := h.Open(req)
				if !assert.NoError(t, err) {
					return
				}
				resp, err := r.Seal(r.Command)
				if !assert.NoError(t, err) {
					return
				}
				got, err := s.Open(req, resp)
				assert.NoError(t, err)
				assert.Equal(t, []byte{byte(i), byte(j)}, got)
			}
		})
	}
	wg.Wait()
}

// Each refused handshake leaves the HSM as it was: no session cached.
func TestHandshakeRefusals(t *testing.T) {
	w := newWorld(t)
	// A directory in which hsm-2 is not a member, for the host's side.
	narrow, err := session.NewStaticDirectory("test-domain", 3,
		[]session.Operator{{ID: "host-1", Key: w.host.Signer.Public().(*ecdsa.PublicKey), Roles: []string{session.RoleServiceHost}}},
		[]session.Member{{ID: w.hsm1ID, Signing: w.hsm1Keys.Signing.PublicKey(), Agreement: w.hsm1Keys.Agreement.PublicKey()}})
	require.NoError(t, err)
	otherVersion, err := session.NewStaticDirectory("test-domain", 4,
		[]session.Operator{{ID: "host-1", Key: w.host.Signer.Public().(*ecdsa.PublicKey), Roles: []string{session.RoleServiceHost}}}, nil)
	require.NoError(t, err)

	cases := []struct {
		name string
		host *session.Host
		h    *session.HSM
		want error
	}{
		{"unknown host", &session.Host{ID: "ghost", Signer: w.opKey, Dir: w.dir}, w.hsm1, session.ErrUnknownHost},
		{"operator without the service-host role", &session.Host{ID: "op-1", Signer: w.opKey, Dir: w.dir}, w.hsm1, session.ErrNotServiceHost},
		{"Sig1 by the wrong key", &session.Host{ID: "host-1", Signer: w.opKey, Dir: w.dir}, w.hsm1, session.ErrBadSignature},
		{"other state version", &session.Host{ID: "host-1", Signer: w.host.Signer, Dir: otherVersion}, w.hsm1, session.ErrDomainMismatch},
		{"clock skew", &session.Host{ID: "host-1", Signer: w.host.Signer, Dir: w.dir, Now: func() time.Time { return w.clock.Now().Add(-10 * time.Minute) }}, w.hsm1, session.ErrClockSkew},
		{"Sig2 by a non-member", &session.Host{ID: "host-1", Signer: w.host.Signer, Dir: narrow}, w.hsm2, session.ErrNotMember},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.h.CachedSessions()
			p, hello, err := c.host.Begin()
			require.NoError(t, err)
			reply, err := c.h.Handshake(hello)
			if err == nil {
				_, err = p.Finish(reply)
				assert.Equal(t, before+1, c.h.CachedSessions())
			} else {
				assert.Equal(t, before, c.h.CachedSessions(), "a refused hello changes nothing")
			}
			require.ErrorIs(t, err, c.want)
		})
	}
}

// mutate decodes, changes and re-encodes a Reply, re-signing it with the
// HSM's key when resign is set (a buggy or malicious HSM), so that the
// checks beyond the signature are exercised.
func mutateReply(t *testing.T, w *world, hello, raw []byte, resign bool, f func(r *session.Reply)) []byte {
	r, err := session.ParseReply(raw)
	require.NoError(t, err)
	f(r)
	if resign {
		r.Sig = nil
		r.Sig = resignReply(t, w, hello, r)
	}
	out, err := r.Marshal()
	require.NoError(t, err)
	return out
}

func TestReplyTampering(t *testing.T) {
	w := newWorld(t)
	begin := func() (*session.Pending, []byte, []byte) {
		p, hello, err := w.host.Begin()
		require.NoError(t, err)
		reply, err := w.hsm1.Handshake(hello)
		require.NoError(t, err)
		return p, hello, reply
	}
	_, _, otherReply := begin()
	other, err := session.ParseReply(otherReply)
	require.NoError(t, err)

	cases := []struct {
		name   string
		resign bool
		f      func(r *session.Reply)
		want   error
	}{
		{"Q2 from another handshake", false, func(r *session.Reply) { r.Q2 = other.Q2 }, session.ErrBadSignature},
		{"ESK from another handshake", false, func(r *session.Reply) { r.ESK = other.ESK }, session.ErrBadSignature},
		{"EKT from another handshake", false, func(r *session.Reply) { r.EKT = other.EKT }, session.ErrBadSignature},
		{"tampered ESK", false, func(r *session.Reply) { r.ESK[0] ^= 1 }, session.ErrBadSignature},
		{"tampered Sig2", false, func(r *session.Reply) { r.Sig[len(r.Sig)-1] ^= 1 }, session.ErrBadSignature},
		// Re-signed by the HSM: the KDF and the transcript still catch it.
		{"re-signed Q2 from another handshake", true, func(r *session.Reply) { r.Q2 = other.Q2 }, session.ErrBadReply},
		{"re-signed ESK from another handshake", true, func(r *session.Reply) { r.ESK = other.ESK }, session.ErrAuthentication},
		{"re-signed tampered ESK", true, func(r *session.Reply) { r.ESK[5] ^= 1 }, session.ErrAuthentication},
		{"re-signed validity change", true, func(r *session.Reply) { r.NotAfter += 3600 }, session.ErrAuthentication},
		{"re-signed session ID", true, func(r *session.Reply) { r.SessionID[0] ^= 1 }, session.ErrBadReply},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, hello, reply := begin()
			_, err := p.Finish(mutateReply(t, w, hello, reply, c.resign, c.f))
			require.ErrorIs(t, err, c.want)
		})
	}

	// A reply to another hello.
	p, _, _ := begin()
	_, err = p.Finish(otherReply)
	require.ErrorIs(t, err, session.ErrBadSignature)
}

func TestEnvelopeRefusals(t *testing.T) {
	w := newWorld(t)
	s := w.handshake(w.host, w.hsm1)
	other := w.handshake(w.host, w.hsm1)
	s2 := w.handshake(w.host2, w.hsm1)

	seal := func(s *session.Session) []byte {
		req, _, err := s.Seal(1, []byte("cmd"))
		require.NoError(t, err)
		return req
	}
	edit := func(raw []byte, f func(e *session.Envelope)) []byte {
		e, err := session.ParseEnvelope(raw)
		require.NoError(t, err)
		f(e)
		out, err := e.Marshal()
		require.NoError(t, err)
		return out
	}
	cases := []struct {
		name string
		h    *session.HSM
		env  func() []byte
		want error
	}{
		{"tampered ciphertext", w.hsm1, func() []byte {
			return edit(seal(s), func(e *session.Envelope) { e.Ciphertext[0] ^= 1 })
		}, session.ErrAuthentication},
		{"tampered sequence number", w.hsm1, func() []byte {
			return edit(seal(s), func(e *session.Envelope) { e.Seq += 1000 })
		}, session.ErrAuthentication},
		{"tampered type", w.hsm1, func() []byte {
			return edit(seal(s), func(e *session.Envelope) { e.Type = 99 })
		}, session.ErrAuthentication},
		{"EKT from another session (cached)", w.hsm1, func() []byte {
			return edit(seal(s), func(e *session.Envelope) { e.EKT = other.EKT() })
		}, session.ErrAuthentication},
		{"EKT from another session (uncached)", w.hsm2, func() []byte {
			return edit(seal(s), func(e *session.Envelope) { e.EKT = other.EKT() })
		}, session.ErrSessionMismatch},
		{"tampered EKT", w.hsm2, func() []byte {
			return edit(seal(s), func(e *session.Envelope) {
				k, _ := session.ParseEKT(e.EKT)
				k.Ciphertext[3] ^= 1
				e.EKT, _ = k.Marshal()
			})
		}, session.ErrAuthentication},
		{"host A's EKT used by host B", w.hsm2, func() []byte {
			return edit(seal(s2), func(e *session.Envelope) { e.EKT, e.SessionID = s.EKT(), s.ID })
		}, session.ErrWrongHost},
		{"host ID changed", w.hsm1, func() []byte {
			return edit(seal(s), func(e *session.Envelope) { e.HostID = "host-2" })
		}, session.ErrWrongHost},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.h.CachedSessions()
			_, err := c.h.Open(c.env())
			require.ErrorIs(t, err, c.want)
			assert.LessOrEqual(t, c.h.CachedSessions(), before+1)
		})
	}
	// The sessions still work after all that.
	roundTrip(t, s, w.hsm1, []byte("still fine"))
	roundTrip(t, s, w.hsm2, []byte("still fine"))

	// A tampered response.
	req := seal(s)
	r, err := w.hsm1.Open(req)
	require.NoError(t, err)
	resp, err := r.Seal([]byte("answer"))
	require.NoError(t, err)
	bad := bytes.Clone(resp)
	bad[len(bad)-1] ^= 1
	_, err = s.Open(req, bad)
	require.ErrorIs(t, err, session.ErrAuthentication)
	// A response bound to another request of the same session.
	req2 := seal(s)
	_, err = s.Open(req2, resp)
	require.ErrorIs(t, err, session.ErrAuthentication)
}

func TestEKTValidityAndRetention(t *testing.T) {
	w := newWorld(t)
	s := w.handshake(w.host, w.hsm1)
	req, _, err := s.Seal(1, nil)
	require.NoError(t, err)

	w.clock.Add(session.DefaultValidity + time.Second)
	_, err = w.hsm1.Open(req)
	require.ErrorIs(t, err, session.ErrExpired)
	_, err = w.hsm2.Open(req)
	require.ErrorIs(t, err, session.ErrExpired)
	w.clock.Add(-session.DefaultValidity - time.Second)

	// An HSM whose clock is behind by more than the allowed skew.
	w.clock.Add(-session.DefaultMaxSkew - time.Minute)
	_, err = w.hsm2.Open(req)
	require.ErrorIs(t, err, session.ErrNotYetValid)
	w.clock.Add(session.DefaultMaxSkew + time.Minute)

	// The domain key is no longer retained: refused, even with SK cached.
	w.ring2.Drop(w.dkID)
	_, err = w.hsm2.Open(req)
	require.ErrorIs(t, err, session.ErrKeyNotRetained)
	w.ring1.Drop(w.dkID)
	_, err = w.hsm1.Open(req)
	require.ErrorIs(t, err, session.ErrKeyNotRetained)
}

func TestReplay(t *testing.T) {
	w := newWorld(t)
	s := w.handshake(w.host, w.hsm1)
	req, _, err := s.Seal(1, []byte("once"))
	require.NoError(t, err)
	_, err = w.hsm1.Open(req)
	require.NoError(t, err)
	_, err = w.hsm1.Open(req)
	require.ErrorIs(t, err, session.ErrReplay, "resent to the same HSM")

	// Out of order within the window is fine; each number once.
	var reqs [][]byte
	for range 5 {
		r, _, err := s.Seal(1, nil)
		require.NoError(t, err)
		reqs = append(reqs, r)
	}
	for _, i := range []int{4, 1, 3, 0, 2} {
		_, err := w.hsm1.Open(reqs[i])
		require.NoError(t, err)
	}
	for _, r := range reqs {
		_, err := w.hsm1.Open(r)
		require.ErrorIs(t, err, session.ErrReplay)
	}

	// Older than the window: refused even if never seen.
	old, _, err := s.Seal(1, nil)
	require.NoError(t, err)
	var last []byte
	for range 1100 {
		last, _, err = s.Seal(1, nil)
		require.NoError(t, err)
	}
	_, err = w.hsm1.Open(last)
	require.NoError(t, err)
	_, err = w.hsm1.Open(old)
	require.ErrorIs(t, err, session.ErrReplay)

	// Concurrent copies of one envelope: exactly one is accepted.
	dup, _, err := s.Seal(1, nil)
	require.NoError(t, err)
	var ok, replay int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := w.hsm1.Open(dup)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else if errors.Is(err, session.ErrReplay) {
				replay++
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, ok)
	assert.Equal(t, 7, replay)

	// Resent to another HSM: accepted there once (each HSM keeps its own
	// window; docs/protocol.md explains why this is safe).
	_, err = w.hsm2.Open(req)
	require.NoError(t, err)
	_, err = w.hsm2.Open(req)
	require.ErrorIs(t, err, session.ErrReplay)
}

func TestCacheEvictionRecoversFromEKT(t *testing.T) {
	w := newWorld(t)
	small, err := session.NewHSM(session.HSMConfig{
		ID: w.hsm1ID, Signer: w.hsm1Keys.Signing,
		NewEphemeral: func() (session.EphemeralKey, error) { return w.hsm1Tok.GenerateEphemeralAgreementKey() },
		Rand:         w.hsm1Tok.Reader(), Dir: w.dir, Keys: w.ring1, CacheSize: 2, Now: w.clock.Now,
	})
	require.NoError(t, err)
	var ss []*session.Session
	for range 3 {
		ss = append(ss, w.handshake(w.host, small))
	}
	assert.Equal(t, 2, small.CachedSessions())
	for _, s := range ss {
		roundTrip(t, s, small, []byte("x"))
	}
	assert.Equal(t, 2, small.CachedSessions())

	// Sessions evicted and reopened concurrently, including between a
	// request's Open and its Seal.
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			s := ss[i%len(ss)]
			for range 15 {
				req, _, err := s.Seal(1, []byte("c"))
				if !assert.NoError(t, err) {
					return
				}
				r, err := small.Open(req)
				if !assert.NoError(t, err) {
					return
				}
				resp, err := r.Seal([]byte("r"))
				if !assert.NoError(t, err) {
					return
				}
				got, err := s.Open(req, resp)
				assert.NoError(t, err)
				assert.Equal(t, []byte("r"), got)
			}
		})
	}
	wg.Wait()
}

func TestMalformedMessages(t *testing.T) {
	w := newWorld(t)
	_, hello, err := w.host.Begin()
	require.NoError(t, err)

	for name, in := range map[string][]byte{
		"empty":         nil,
		"truncated":     hello[:len(hello)-1],
		"header only":   hello[:6],
		"trailing byte": append(bytes.Clone(hello), 0),
		"oversized":     append(bytes.Clone(hello), make([]byte, 1<<16)...),
		"wrong magic":   append([]byte("XRNT"), hello[4:]...),
		"wrong type":    append([]byte("TRNT\x01\x02"), hello[6:]...),
	} {
		_, err := w.hsm1.Handshake(in)
		assert.ErrorIs(t, err, session.ErrMalformed, name)
	}
	v3 := bytes.Clone(hello)
	v3[4] = 3 // version 2 is the hybrid Hello; 3 is no version
	_, err = w.hsm1.Handshake(v3)
	require.ErrorIs(t, err, session.ErrVersion)

	// Q1 not on P-384, and the identity.
	h, err := session.ParseHello(hello)
	require.NoError(t, err)
	for name, q := range map[string][]byte{
		"off curve": func() []byte { q := bytes.Clone(h.Q1); q[96] ^= 1; return q }(),
		"identity":  append([]byte{4}, make([]byte, 96)...),
		"P-256 in a P-384 field": func() []byte {
			k, _ := ecdh.P256().GenerateKey(rand.Reader)
			return append(k.PublicKey().Bytes(), make([]byte, 32)...)
		}(),
	} {
		bad := *h
		bad.Q1 = q
		raw, err := bad.Marshal()
		require.NoError(t, err)
		_, err = w.hsm1.Handshake(raw)
		assert.ErrorIs(t, err, session.ErrInvalidPoint, name)
	}

	s := w.handshake(w.host, w.hsm1)
	_, _, err = s.Seal(1, make([]byte, session.MaxCommandLen+1))
	require.Error(t, err, "oversized command")
	s.Close()
	_, _, err = s.Seal(1, nil)
	require.ErrorIs(t, err, session.ErrSessionClosed)
}

func TestOnePassOnTokens(t *testing.T) {
	w := newWorld(t)
	eph, err := w.hsm1Tok.GenerateEphemeralAgreementKey()
	require.NoError(t, err)
	defer eph.Destroy()
	payload := []byte("a domain-key encryption key....!")
	msg, err := session.SealOnePass(w.hsm1ID, w.hsm1Keys.Signing, eph, []byte("ctx"), payload, []session.Recipient{
		{ID: w.hsm1ID, Agreement: w.hsm1Keys.Agreement.PublicKey()},
		{ID: w.hsm2ID, Agreement: w.hsm2Keys.Agreement.PublicKey()},
	})
	require.NoError(t, err)
	for _, r := range []struct {
		id  string
		key session.AgreementKey
	}{{w.hsm1ID, w.hsm1Keys.Agreement}, {w.hsm2ID, w.hsm2Keys.Agreement}} {
		got, ctx, err := session.OpenOnePass(msg, w.dir, r.id, r.key)
		require.NoError(t, err)
		assert.Equal(t, payload, got)
		assert.Equal(t, []byte("ctx"), ctx)
	}
	// hsm-2's key cannot open hsm-1's entry.
	_, _, err = session.OpenOnePass(msg, w.dir, w.hsm1ID, w.hsm2Keys.Agreement)
	require.ErrorIs(t, err, session.ErrAuthentication)
	_, _, err = session.OpenOnePass(msg, w.dir, "hsm-9", w.hsm2Keys.Agreement)
	require.ErrorIs(t, err, session.ErrNotRecipient)
	bad := bytes.Clone(msg)
	bad[len(bad)-1] ^= 1
	_, _, err = session.OpenOnePass(bad, w.dir, w.hsm2ID, w.hsm2Keys.Agreement)
	require.Error(t, err)

	// Sent by someone who is not a member.
	opEph, _ := ecdh.P384().GenerateKey(rand.Reader)
	forged, err := session.SealOnePass("op-1", w.opKey, goEphemeral{opEph}, nil, payload, []session.Recipient{
		{ID: w.hsm2ID, Agreement: w.hsm2Keys.Agreement.PublicKey()},
	})
	require.NoError(t, err)
	_, _, err = session.OpenOnePass(forged, w.dir, w.hsm2ID, w.hsm2Keys.Agreement)
	require.ErrorIs(t, err, session.ErrNotMember)
}

type goEphemeral struct{ k *ecdh.PrivateKey }

func (e goEphemeral) PublicKey() *ecdh.PublicKey { return e.k.PublicKey() }
func (e goEphemeral) ECDH(peer []byte) ([]byte, error) {
	p, err := ecdh.P384().NewPublicKey(peer)
	if err != nil {
		return nil, err
	}
	return e.k.ECDH(p)
}
func (e goEphemeral) Destroy() error { return nil }

var _ crypto.Signer = (*hsm.SigningKey)(nil)

func resignReply(t *testing.T, w *world, hello []byte, r *session.Reply) []byte {
	sig, err := session.ResignReply(r, hello, w.hsm1Keys.Signing)
	require.NoError(t, err)
	return sig
}

func TestHelloMixedAndEnvelopeMalformed(t *testing.T) {
	w := newWorld(t)
	// Q1 from another handshake: Sig1 no longer covers the Hello.
	_, helloA, err := w.host.Begin()
	require.NoError(t, err)
	_, helloB, err := w.host.Begin()
	require.NoError(t, err)
	a, err := session.ParseHello(helloA)
	require.NoError(t, err)
	b, err := session.ParseHello(helloB)
	require.NoError(t, err)
	a.Q1 = b.Q1
	mixed, err := a.Marshal()
	require.NoError(t, err)
	before := w.hsm1.CachedSessions()
	_, err = w.hsm1.Handshake(mixed)
	require.ErrorIs(t, err, session.ErrBadSignature)
	assert.Equal(t, before, w.hsm1.CachedSessions())

	// Envelopes that do not decode.
	s := w.handshake(w.host, w.hsm1)
	env, _, err := s.Seal(1, []byte("cmd"))
	require.NoError(t, err)
	v2 := bytes.Clone(env)
	v2[4] = 2
	_, err = w.hsm1.Open(v2)
	require.ErrorIs(t, err, session.ErrVersion)
	for name, in := range map[string][]byte{
		"truncated":     env[:len(env)-1],
		"trailing byte": append(bytes.Clone(env), 0),
		"empty":         nil,
		"a hello":       helloA,
	} {
		_, err := w.hsm1.Open(in)
		assert.ErrorIs(t, err, session.ErrMalformed, name)
	}
	// The untouched envelope still opens: the refusals changed nothing.
	_, err = w.hsm1.Open(env)
	require.NoError(t, err)

	// A Reply whose Q2 is not on the curve does not decode.
	p, hello, err := w.host.Begin()
	require.NoError(t, err)
	reply, err := w.hsm1.Handshake(hello)
	require.NoError(t, err)
	bad := bytes.Clone(reply)
	q2 := 6 + 1 + len(w.hsm1ID) // header, v8 HSM ID
	bad[q2+96] ^= 1
	_, err = p.Finish(bad)
	require.ErrorIs(t, err, session.ErrInvalidPoint)
}

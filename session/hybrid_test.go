package session_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/session"
)

// hybridDir is a domain view whose policy requires hybrid sessions.
type hybridDir struct{ session.Directory }

func (hybridDir) HybridRequired() bool { return true }

func hybridHost(h *session.Host) *session.Host {
	c := *h
	c.Hybrid = func() bool { return true }
	return &c
}

func TestHybridHandshake(t *testing.T) {
	w := newWorld(t)
	s := w.handshake(hybridHost(w.host), w.hsm1)
	assert.True(t, s.Hybrid)
	// Any HSM of the domain serves the session, as a classical one.
	roundTrip(t, s, w.hsm1, []byte("first"))
	roundTrip(t, s, w.hsm2, []byte("second"))
	// The software-key host too.
	s2 := w.handshake(hybridHost(w.host2), w.hsm2)
	assert.True(t, s2.Hybrid)
	c := w.handshake(w.host, w.hsm1)
	assert.False(t, c.Hybrid, "classical Hello, classical session")
}

func TestHybridRequiredRefusesClassicalHello(t *testing.T) {
	w := newWorld(t)
	h := newHSMEnd(t, w.hsm1Tok, w.hsm1Keys, hybridDir{w.dir}, w.ring1, w.clock.Now)
	_, hello, err := w.host.Begin()
	require.NoError(t, err)
	_, err = h.Handshake(hello)
	require.ErrorIs(t, err, session.ErrHybridRequired)
	a := session.AlertFor(err)
	assert.Equal(t, uint16(26), a.Code)
	assert.ErrorIs(t, a.Err(), session.ErrHybridRequired)
	assert.True(t, w.handshake(hybridHost(w.host), h).Hybrid)
}

// A classical Reply to a hybrid Hello (an attacker answering the host's
// Hello with the Reply of a classical one it made the HSM give) is refused
// by the host, and so is a hybrid Reply to a classical Hello.
func TestHybridDowngradeRefused(t *testing.T) {
	w := newWorld(t)
	_, classicalHello, err := w.host.Begin()
	require.NoError(t, err)
	classicalReply, err := w.hsm1.Handshake(classicalHello)
	require.NoError(t, err)
	p, hybridHello, err := hybridHost(w.host).Begin()
	require.NoError(t, err)
	_, err = p.Finish(classicalReply)
	require.ErrorIs(t, err, session.ErrBadReply)

	hybridReply, err := w.hsm1.Handshake(hybridHello)
	require.NoError(t, err)
	p2, _, err := w.host.Begin()
	require.NoError(t, err)
	_, err = p2.Finish(hybridReply)
	require.ErrorIs(t, err, session.ErrBadReply)

	// Rewriting the Hello's version (and dropping its key) breaks Sig1.
	stripped := append([]byte("TRNT\x01\x01"), hybridHello[6:]...)
	hl, err := session.ParseHello(hybridHello)
	require.NoError(t, err)
	i := 6 + 1 + len(hl.Domain) + 8 + 1 + len(hl.HostID) + session.PointSize
	stripped = append(stripped[:i:i], stripped[i+session.KEMKeySize:]...)
	_, err = w.hsm1.Handshake(stripped)
	require.ErrorIs(t, err, session.ErrBadSignature)
}

func TestHybridReplyTampered(t *testing.T) {
	w := newWorld(t)
	p, hello, err := hybridHost(w.host).Begin()
	require.NoError(t, err)
	reply, err := w.hsm1.Handshake(hello)
	require.NoError(t, err)
	r, err := session.ParseReply(reply)
	require.NoError(t, err)
	require.True(t, r.Hybrid)
	bad := append([]byte(nil), reply...)
	i := 6 + 1 + len(r.HSMID) + session.PointSize + 100 // inside the ciphertext
	bad[i] ^= 1
	_, err = p.Finish(bad)
	require.ErrorIs(t, err, session.ErrBadSignature, "sig2 covers the ciphertext")
}

// An encapsulation key with a coefficient of q or more fails FIPS 203's
// modulus check: Alert 27, before any signature is checked.
func TestHybridInvalidKEMKey(t *testing.T) {
	w := newWorld(t)
	_, hello, err := hybridHost(w.host).Begin()
	require.NoError(t, err)
	hl, err := session.ParseHello(hello)
	require.NoError(t, err)
	i := 6 + 1 + len(hl.Domain) + 8 + 1 + len(hl.HostID) + session.PointSize
	bad := append([]byte(nil), hello...)
	bad[i], bad[i+1] = 0xff, 0xff // the first 12-bit coefficient becomes 4095 ≥ q = 3329
	_, err = session.ParseHello(bad)
	require.ErrorIs(t, err, session.ErrInvalidKEM)
	_, err = w.hsm1.Handshake(bad)
	require.ErrorIs(t, err, session.ErrInvalidKEM)
	assert.Equal(t, uint16(27), session.AlertFor(err).Code)
	// A truncated hybrid Hello is malformed.
	_, err = session.ParseHello(hello[:i+100])
	assert.True(t, errors.Is(err, session.ErrMalformed), "%v", err)
}

func TestHybridOnePassOnTokens(t *testing.T) {
	w := newWorld(t)
	seed1, seed2 := make([]byte, session.KEMSeedSize), make([]byte, session.KEMSeedSize)
	rand.Read(seed1)
	rand.Read(seed2)
	dk1, ek1, err := session.KEMKeyFromSeed(seed1)
	require.NoError(t, err)
	dk2, ek2, err := session.KEMKeyFromSeed(seed2)
	require.NoError(t, err)
	eph, err := w.hsm1Tok.GenerateEphemeralAgreementKey()
	require.NoError(t, err)
	defer eph.Destroy()
	payload := []byte("a domain-key encryption key....!")
	rs := []session.Recipient{
		{ID: w.hsm1ID, Agreement: w.hsm1Keys.Agreement.PublicKey(), KEM: ek1},
		{ID: w.hsm2ID, Agreement: w.hsm2Keys.Agreement.PublicKey(), KEM: ek2},
	}
	msg, err := session.SealOnePassHybrid(w.hsm1ID, w.hsm1Keys.Signing, eph, w.hsm1Tok.Reader(), []byte("ctx"), payload, rs)
	require.NoError(t, err)
	m, err := session.ParseOnePass(msg)
	require.NoError(t, err)
	require.True(t, m.Hybrid)
	for _, r := range []struct {
		id  string
		key session.AgreementKey
		dk  *mlkem1024.PrivateKey
	}{{w.hsm1ID, w.hsm1Keys.Agreement, dk1}, {w.hsm2ID, w.hsm2Keys.Agreement, dk2}} {
		got, ctx, hybrid, err := session.OpenOnePassHybrid(msg, w.dir, r.id, r.key, r.dk)
		require.NoError(t, err)
		assert.True(t, hybrid)
		assert.Equal(t, payload, got)
		assert.Equal(t, []byte("ctx"), ctx)
	}
	// Either half alone does not open an entry.
	_, _, _, err = session.OpenOnePassHybrid(msg, w.dir, w.hsm1ID, w.hsm1Keys.Agreement, dk2)
	require.ErrorIs(t, err, session.ErrAuthentication, "right ECDH key, wrong ML-KEM key")
	_, _, _, err = session.OpenOnePassHybrid(msg, w.dir, w.hsm1ID, w.hsm2Keys.Agreement, dk1)
	require.ErrorIs(t, err, session.ErrAuthentication, "wrong ECDH key, right ML-KEM key")
	_, _, err = session.OpenOnePass(msg, w.dir, w.hsm1ID, w.hsm1Keys.Agreement)
	require.ErrorIs(t, err, session.ErrInvalidKEM, "no ML-KEM key")
	// The signature covers the ML-KEM ciphertexts.
	i := bytes.Index(msg, m.Recipients[0].KEMCiphertext)
	bad := bytes.Clone(msg)
	bad[i+10] ^= 1
	_, _, _, err = session.OpenOnePassHybrid(bad, w.dir, w.hsm1ID, w.hsm1Keys.Agreement, dk1)
	require.ErrorIs(t, err, session.ErrBadSignature)
	// A recipient without a KEM key cannot be sealed to.
	rs[1].KEM = nil
	_, err = session.SealOnePassHybrid(w.hsm1ID, w.hsm1Keys.Signing, eph, w.hsm1Tok.Reader(), nil, payload, rs)
	require.ErrorIs(t, err, session.ErrInvalidKEM)
}

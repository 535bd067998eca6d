package vectors

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"testing"
	"time"

	"github.com/trentkms/trent/internal/testvec"
	"github.com/trentkms/trent/session"
)

// Checks of the session vectors with package session: the parsers, the
// HSM's and the host's ends of the protocol.

// sessionErr is the sentinel package session must return for a reason.
var sessionErr = map[string]error{
	"truncated": session.ErrMalformed, "trailing-bytes": session.ErrMalformed, "bad-magic": session.ErrMalformed,
	"bad-type": session.ErrMalformed, "bad-identifier": session.ErrMalformed, "length-over-maximum": session.ErrMalformed,
	"length-under-minimum": session.ErrMalformed, "bad-embedded-object": session.ErrMalformed, "bad-plaintext": session.ErrMalformed,
	"bad-count": session.ErrMalformed, "not-sorted": session.ErrMalformed, "duplicate": session.ErrMalformed,
	"bad-character": session.ErrMalformed,
	"bad-version":   session.ErrVersion, "invalid-point": session.ErrInvalidPoint,
	"bad-signature": session.ErrBadSignature, "domain-mismatch": session.ErrDomainMismatch,
	"clock-skew": session.ErrClockSkew, "unknown-host": session.ErrUnknownHost, "not-service-host": session.ErrNotServiceHost,
	"not-member": session.ErrNotMember, "bad-session-id": session.ErrBadReply, "bad-validity": session.ErrBadReply,
	"bad-tag": session.ErrAuthentication, "wrong-aad": session.ErrAuthentication, "wrong-context": session.ErrAuthentication,
	"wrong-nonce": session.ErrAuthentication, "wrong-request": session.ErrAuthentication,
	"unknown-key": session.ErrKeyNotRetained, "expired": session.ErrExpired, "not-yet-valid": session.ErrNotYetValid,
	"wrong-host": session.ErrWrongHost, "session-mismatch": session.ErrSessionMismatch, "replay": session.ErrReplay,
	"not-recipient": session.ErrNotRecipient,
}

// expectErr checks err against a vector: nil for a valid one, the
// reason's sentinel for an invalid one.
func expectErr(t *testing.T, v *vec, err error, table map[string]error) {
	t.Helper()
	if v.Result == valid {
		if err != nil {
			t.Fatalf("%s: valid vector refused: %v", v.ID, err)
		}
		return
	}
	want, ok := table[v.Reason]
	if !ok {
		t.Fatalf("%s: no expected error for reason %q", v.ID, v.Reason)
	}
	if err == nil {
		t.Fatalf("%s: invalid vector (%s) accepted", v.ID, v.Reason)
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: refused with %v, want %v", v.ID, err, want)
	}
}

func eq(t *testing.T, id, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %s is %x, want %x", id, what, got, want)
	}
}

func pubFromPoint(t *testing.T, p []byte) *ecdsa.PublicKey {
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyFromScalar(t *testing.T, d []byte) *ecdsa.PrivateKey {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), d)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecdhFromScalar(t *testing.T, d []byte) *ecdh.PrivateKey {
	k, err := ecdh.P384().NewPrivateKey(d)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type memDK struct{ key []byte }

func (k memDK) Seal(nonce, pt, aad []byte) ([]byte, error) { return seal(k.key, nonce, pt, aad), nil }
func (k memDK) Open(nonce, ct, aad []byte) ([]byte, error) {
	return gcm(k.key).Open(nil, nonce, ct, aad)
}

func ring(active []byte, activeKey []byte, retained ...[]byte) *session.MemoryKeyRing {
	r := session.NewMemoryKeyRing()
	for i := 0; i+1 < len(retained); i += 2 {
		r.Add([16]byte(retained[i]), memDK{retained[i+1]}, false)
	}
	if active != nil {
		r.Add([16]byte(active), memDK{activeKey}, true)
	}
	return r
}

// checkHSM is the HSM of the session checks: hsm-1 of the world.
func checkHSM(t *testing.T, w *world, dir session.Directory, keys session.KeyRing, now uint64, validity time.Duration, rnd []byte) *session.HSM {
	h, err := session.NewHSM(session.HSMConfig{
		ID: vHSM, Signer: testvec.Signer{K: w.hsm}, Rand: bytes.NewReader(rnd),
		NewEphemeral: func() (session.EphemeralKey, error) { return testvec.Ephemeral{K: w.d2}, nil },
		Dir:          dir, Keys: keys, Now: func() time.Time { return time.Unix(int64(now), 0) }, Validity: validity,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func members(w *world) []session.Member {
	return []session.Member{
		{ID: vHSM, Signing: &w.hsm.PublicKey, Agreement: w.hsmAgree.PublicKey()},
		{ID: vHSM2, Signing: &w.hsm2.PublicKey, Agreement: w.hsm2Agree.PublicKey()},
	}
}

func checkHello(t *testing.T, v *vec) {
	w := newWorld()
	raw := v.hex("hello")
	parsed, perr := session.ParseHello(raw)
	if v.Result == valid {
		if perr != nil {
			t.Fatalf("%s: %v", v.ID, perr)
		}
		again, err := parsed.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		eq(t, v.ID, "re-encoding", again, raw)
		if parsed.Domain != v.str("domain") || parsed.HostID != v.str("host_id") || parsed.StateVersion != v.num("state_version") || parsed.Time != v.num("time") {
			t.Fatalf("%s: decoded fields differ", v.ID)
		}
		eq(t, v.ID, "Q1", parsed.Q1, v.hex("q1"))
		eq(t, v.ID, "host nonce", parsed.HostNonce, v.hex("host_nonce"))
		eq(t, v.ID, "sig1", parsed.Sig, v.hex("sig1"))
		eq(t, v.ID, "unsigned part", raw[:len(raw)-len(parsed.Sig)-1], v.hex("hello_unsigned"))
		eq(t, v.ID, "digest", labelled(labHello, v.hex("hello_unsigned")), v.hex("sig1_digest"))
		// The host end makes the same bytes from the same inputs.
		hk := keyFromScalar(t, v.hex("host_signing_scalar"))
		d1 := ecdhFromScalar(t, v.hex("d1_scalar"))
		dir, err := session.NewStaticDirectory(parsed.Domain, parsed.StateVersion, nil, members(w))
		if err != nil {
			t.Fatal(err)
		}
		host := &session.Host{ID: parsed.HostID, Signer: testvec.Signer{K: hk}, Dir: dir,
			Now: func() time.Time { return time.Unix(int64(parsed.Time), 0) }, Rand: bytes.NewReader(parsed.HostNonce),
			NewEphemeral: func() (*ecdh.PrivateKey, error) { return d1, nil }}
		_, made, err := host.Begin()
		if err != nil {
			t.Fatal(err)
		}
		eq(t, v.ID, "the host's Hello", made, raw)
	}
	var ops []session.Operator
	if role := v.str("view_host_role"); role != roleNone {
		ops = append(ops, session.Operator{ID: v.str("view_host_id"), Key: pubFromPoint(t, v.hex("view_host_public_key")), Roles: []string{role}})
	}
	dir, err := session.NewStaticDirectory(v.str("view_domain"), v.num("view_state_version"), ops, members(w))
	if err != nil {
		t.Fatal(err)
	}
	h := checkHSM(t, w, dir, ring(w.dkID, w.dk), v.num("view_time"), 0, w.hsmRandom)
	_, err = h.Handshake(raw)
	expectErr(t, v, err, sessionErr)
	if v.Result == invalid && perr == nil && errors.Is(sessionErr[v.Reason], session.ErrMalformed) {
		t.Fatalf("%s: ParseHello accepts a malformed Hello", v.ID)
	}
}

// hostFor rebuilds the host end that made a vector's Hello.
func hostFor(t *testing.T, v *vec, dir session.Directory) (*session.Pending, *session.Hello) {
	raw := v.hex("hello")
	hl, err := session.ParseHello(raw)
	if err != nil {
		t.Fatal(err)
	}
	hk := keyFromScalar(t, v.hex("host_signing_scalar"))
	d1 := ecdhFromScalar(t, v.hex("d1_scalar"))
	host := &session.Host{ID: hl.HostID, Signer: testvec.Signer{K: hk}, Dir: dir,
		Now: func() time.Time { return time.Unix(int64(hl.Time), 0) }, Rand: bytes.NewReader(hl.HostNonce),
		NewEphemeral: func() (*ecdh.PrivateKey, error) { return d1, nil }}
	p, made, err := host.Begin()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "the host's Hello", made, raw)
	return p, hl
}

func checkReply(t *testing.T, v *vec) {
	w := newWorld()
	hl, err := session.ParseHello(v.hex("hello"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := session.NewStaticDirectory(hl.Domain, hl.StateVersion, nil, []session.Member{
		{ID: v.str("view_hsm_id"), Signing: pubFromPoint(t, v.hex("view_hsm_public_key")), Agreement: w.hsmAgree.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	pending, _ := hostFor(t, v, dir)
	raw := v.hex("reply")
	sess, err := pending.Finish(raw)
	expectErr(t, v, err, sessionErr)
	if v.Result == invalid {
		return
	}
	r, err := session.ParseReply(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := r.Marshal()
	eq(t, v.ID, "re-encoding", again, raw)
	eq(t, v.ID, "session ID", sess.ID[:], v.hex("session_id"))
	eq(t, v.ID, "EKT", sess.EKT(), v.hex("ekt"))
	eq(t, v.ID, "ESK", r.ESK, v.hex("esk"))
	eq(t, v.ID, "Q2", r.Q2, v.hex("q2"))
	eq(t, v.ID, "HSM nonce", r.HSMNonce, v.hex("hsm_nonce"))
	if r.HSMID != v.str("hsm_id") || r.NotBefore != v.num("not_before") || r.NotAfter != v.num("not_after") ||
		uint64(sess.NotBefore.Unix()) != v.num("not_before") || uint64(sess.NotAfter.Unix()) != v.num("not_after") {
		t.Fatalf("%s: decoded fields differ", v.ID)
	}
	// The session's SK is the vector's: an envelope the host seals opens
	// under it.
	env, seq, err := sess.Seal(1, []byte("sk check"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := session.ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := gcm(v.hex("sk")).Open(nil, seqNonce(0, seq), e.Ciphertext, envelopeAAD(e.EKT, e.SessionID[:], e.HostID, seq, 1))
	if err != nil || string(pt) != "sk check" {
		t.Fatalf("%s: the host's session key is not sk", v.ID)
	}
	// Intermediate values, from the spec (Z, NK, TH).
	d2 := ecdhFromScalar(t, v.hex("d2_scalar"))
	eq(t, v.ID, "Z", ecdhZ(d2, hl.Q1), v.hex("z"))
	eq(t, v.ID, "NK", kdf(v.hex("z"), cat(lab(labNK), v8([]byte(hl.HostID)), v8([]byte(r.HSMID)), hl.Q1, r.Q2, hl.HostNonce, r.HSMNonce)), v.hex("nk"))
	tr := raw[:len(raw)-len(r.Sig)-1-2-len(r.EKT)-len(r.ESK)]
	eq(t, v.ID, "TH", labelled(labTranscript, h384(v.hex("hello")), tr), v.hex("transcript_hash"))
	// The HSM end makes the same Reply from the same inputs.
	hsmKey := keyFromScalar(t, v.hex("hsm_signing_scalar"))
	hdir, err := session.NewStaticDirectory(hl.Domain, hl.StateVersion,
		[]session.Operator{{ID: hl.HostID, Key: &keyFromScalar(t, v.hex("host_signing_scalar")).PublicKey, Roles: []string{rolePlain}}},
		[]session.Member{{ID: r.HSMID, Signing: &hsmKey.PublicKey, Agreement: w.hsmAgree.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := session.NewHSM(session.HSMConfig{
		ID: r.HSMID, Signer: testvec.Signer{K: hsmKey}, Rand: bytes.NewReader(v.hex("hsm_random")),
		NewEphemeral: func() (session.EphemeralKey, error) { return testvec.Ephemeral{K: d2}, nil },
		Dir:          hdir, Keys: ring(v.hex("dk_id"), v.hex("dk")),
		Now:      func() time.Time { return time.Unix(int64(v.num("time")), 0) },
		Validity: time.Duration(v.num("validity_seconds")) * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	made, err := h.Handshake(v.hex("hello"))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "the HSM's Reply", made, raw)
}

func checkEKT(t *testing.T, v *vec) {
	raw := v.hex("ekt")
	keys := ring(v.hex("dk3_id"), v.hex("dk3"), v.hex("dk_id"), v.hex("dk"), v.hex("dk2_id"), v.hex("dk2"))
	e, perr := session.ParseEKT(raw)
	if v.Result == valid {
		if perr != nil {
			t.Fatal(perr)
		}
		again, _ := e.Marshal()
		eq(t, v.ID, "re-encoding", again, raw)
		eq(t, v.ID, "AAD", ektAAD(e.KeyID[:]), v.hex("aad"))
		pt, err := gcm(v.hex("dk")).Open(nil, e.Nonce[:], e.Ciphertext, v.hex("aad"))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, v.ID, "plaintext", pt, v.hex("ekt_plaintext"))
		eq(t, v.ID, "plaintext fields", pt, ektPlain(v.hex("sk"), v.str("host_id"), v.hex("session_id"), v.num("not_before"), v.num("not_after")))
		re, err := session.ReencryptEKT(keys, raw, v.hex("reencrypt_nonce"))
		if err != nil {
			t.Fatal(err)
		}
		eq(t, v.ID, "re-encrypted EKT", re, v.hex("reencrypted_ekt"))
	}
	// An HSM opens the EKT for an Envelope sealed under its SK.
	sid := v.hex("session_id")
	host := v.str("host_id")
	var sk []byte
	if v.has("sk") {
		sk = v.hex("sk")
	} else {
		sk = zeros(32)
	}
	if perr != nil {
		// The encoding is refused before anything else.
		expectErr(t, v, perr, sessionErr)
		return
	}
	env := sealEnvelope(sk, raw, sid, host, 1, 1, []byte("ekt check"))
	var nb uint64 = vTime
	if v.has("not_before") {
		nb = v.num("not_before")
	}
	w := newWorld()
	dir, _ := session.NewStaticDirectory(vDomain, vVersion, nil, members(w))
	h := checkHSM(t, w, dir, keys, nb, 0, w.hsmRandom)
	req, err := h.Open(env.enc())
	if v.Reason == "bad-tag" || v.Reason == "wrong-aad" || v.Reason == "unknown-key" || v.Result == valid {
		_, rerr := session.ReencryptEKT(keys, raw, v.hex("reencrypt_nonce"))
		expectErr(t, v, rerr, sessionErr)
	}
	expectErr(t, v, err, sessionErr)
	if v.Result == valid && string(req.Command) != "ekt check" {
		t.Fatalf("%s: wrong command", v.ID)
	}
}

func checkEnvelope(t *testing.T, v *vec) {
	w := newWorld()
	raw := v.hex("envelope")
	dir, _ := session.NewStaticDirectory(vDomain, vVersion, nil, members(w))
	h := checkHSM(t, w, dir, ring(v.hex("dk_id"), v.hex("dk")), v.num("hsm_time"), 0, w.hsmRandom)
	req, err := h.Open(raw)
	expectErr(t, v, err, sessionErr)
	if v.Result == invalid {
		if h.CachedSessions() > 1 {
			t.Fatalf("%s: a refused envelope cached more than its session", v.ID)
		}
		return
	}
	e, err := session.ParseEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := e.Marshal()
	eq(t, v.ID, "re-encoding", again, raw)
	eq(t, v.ID, "command", req.Command, v.hex("command"))
	eq(t, v.ID, "EKT", e.EKT, v.hex("ekt"))
	eq(t, v.ID, "session ID", req.SessionID[:], v.hex("session_id"))
	if req.Seq != v.num("seq") || uint64(req.Type) != v.num("command_type") || req.HostID != v.str("host_id") {
		t.Fatalf("%s: decoded fields differ", v.ID)
	}
	eq(t, v.ID, "AAD", envelopeAAD(e.EKT, e.SessionID[:], e.HostID, e.Seq, e.Type), v.hex("aad"))
	eq(t, v.ID, "nonce", seqNonce(0, e.Seq), v.hex("nonce"))
	if _, err := h.Open(raw); !errors.Is(err, session.ErrReplay) {
		t.Fatalf("%s: the same envelope twice: %v, want replay", v.ID, err)
	}
}

// handshakeSession is the host's session of reply-001, made by Trent's
// host and HSM ends from the world's inputs.
func handshakeSession(t *testing.T) *session.Session {
	w := newWorld()
	dir, err := session.NewStaticDirectory(vDomain, vVersion,
		[]session.Operator{{ID: vHost, Key: &w.host.PublicKey, Roles: []string{rolePlain}}}, members(w))
	if err != nil {
		t.Fatal(err)
	}
	host := &session.Host{ID: vHost, Signer: testvec.Signer{K: w.host}, Dir: dir,
		Now: func() time.Time { return time.Unix(vTime, 0) }, Rand: bytes.NewReader(w.hostNonce),
		NewEphemeral: func() (*ecdh.PrivateKey, error) { return w.d1, nil }}
	p, hello, err := host.Begin()
	if err != nil {
		t.Fatal(err)
	}
	reply, err := checkHSM(t, w, dir, ring(w.dkID, w.dk), vTime, 0, w.hsmRandom).Handshake(hello)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Finish(reply)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkResponse(t *testing.T, v *vec) {
	s := handshakeSession(t)
	raw := v.hex("response")
	// The vector's SK is the session's.
	probe, seq, _ := s.Seal(1, []byte("x"))
	pe, _ := session.ParseEnvelope(probe)
	if _, err := gcm(v.hex("sk")).Open(nil, seqNonce(0, seq), pe.Ciphertext, envelopeAAD(pe.EKT, pe.SessionID[:], pe.HostID, seq, 1)); err != nil {
		t.Fatalf("%s: sk is not the session's", v.ID)
	}
	pt, err := s.Open(v.hex("request"), raw)
	expectErr(t, v, err, sessionErr)
	if v.Result == invalid {
		return
	}
	eq(t, v.ID, "response", pt, v.hex("response_plaintext"))
	r, err := session.ParseResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := r.Marshal()
	eq(t, v.ID, "re-encoding", again, raw)
	eq(t, v.ID, "AAD", responseAAD(v.hex("request"), r.SessionID[:], r.Seq), v.hex("aad"))
	eq(t, v.ID, "nonce", seqNonce(1, r.Seq), v.hex("nonce"))
	if r.Seq != v.num("seq") {
		t.Fatalf("%s: seq", v.ID)
	}
}

func checkOnePass(t *testing.T, v *vec) {
	w := newWorld()
	raw := v.hex("message")
	dir, _ := session.NewStaticDirectory(vDomain, vVersion, nil, members(w))
	k := ecdhFromScalar(t, v.hex("recipient_agreement_scalar"))
	payload, ctx, err := session.OpenOnePass(raw, dir, v.str("recipient_id"), testvec.Ephemeral{K: k})
	expectErr(t, v, err, sessionErr)
	if v.Result == invalid {
		return
	}
	eq(t, v.ID, "payload", payload, v.hex("payload"))
	eq(t, v.ID, "context", ctx, v.hex("context"))
	m, err := session.ParseOnePass(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := m.Marshal()
	eq(t, v.ID, "re-encoding", again, raw)
	eq(t, v.ID, "QE", m.QE, v.hex("qe"))
	eq(t, v.ID, "Z", ecdhZ(k, m.QE), v.hex("z"))
	rid := v.str("recipient_id")
	eq(t, v.ID, "KEK", onePassKEK(v.hex("z"), m.SenderID, rid, m.QE), v.hex("kek"))
	eq(t, v.ID, "AAD", onePassAAD(m.SenderID, rid, m.QE, m.Context), v.hex("aad"))
	// Trent's sender makes the same message from the same inputs.
	var rs []session.Recipient
	for _, e := range m.Recipients {
		_, ag, err := dir.Member(e.ID)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, session.Recipient{ID: e.ID, Agreement: ag})
	}
	made, err := session.SealOnePass(m.SenderID, testvec.Signer{K: keyFromScalar(t, v.hex("sender_signing_scalar"))},
		testvec.Ephemeral{K: ecdhFromScalar(t, v.hex("de_scalar"))}, v.hex("context"), v.hex("payload"), rs)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "Trent's message", made, raw)
}

var alertConditions = map[string]error{
	"malformed": session.ErrMalformed, "authentication failed": session.ErrAuthentication,
	"refused": session.ErrRefused, "replay": session.ErrReplay, "internal HSM error": session.ErrInternal,
}

func checkAlert(t *testing.T, v *vec) {
	raw := v.hex("alert")
	a, err := session.ParseAlert(raw)
	expectErr(t, v, err, sessionErr)
	if v.Result == invalid {
		return
	}
	again, _ := a.Marshal()
	eq(t, v.ID, "re-encoding", again, raw)
	if uint64(a.Code) != v.num("code") || a.Message != v.str("message") {
		t.Fatalf("%s: decoded fields differ", v.ID)
	}
	want, ok := alertConditions[v.str("condition")]
	if !ok {
		t.Fatalf("%s: condition %q", v.ID, v.str("condition"))
	}
	if !errors.Is(a.Err(), want) {
		t.Fatalf("%s: Err() is %v, want %v", v.ID, a.Err(), want)
	}
}

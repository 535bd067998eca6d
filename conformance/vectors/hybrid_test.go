package vectors

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"errors"
	"testing"
	"time"

	"github.com/trentkms/trent/internal/testvec"
	"github.com/trentkms/trent/session"
)

// The hybrid handshake (docs/protocol.md, Hybrid handshake), generated from
// the spec's primitives with the standard library's ML-KEM-1024
// (crypto/mlkem, and crypto/mlkem/mlkemtest for Encaps_internal), and
// checked against package session, whose ML-KEM is circl's.

const labNKHybrid = "trent/v1 session hybrid nk"

func hdrV(v, typ byte) []byte { return []byte{'T', 'R', 'N', 'T', v, typ} }

// hybridHello is a hybrid Hello's fields.
type hybridHello struct {
	hello
	ek []byte
}

func (h *hybridHello) unsigned() []byte {
	return cat(hdrV(2, 1), v8([]byte(h.domain)), u64(h.version), v8([]byte(h.host)), h.q1, h.ek, h.nonce, u64(h.time))
}
func (h *hybridHello) enc() []byte                  { return cat(h.unsigned(), v8(h.sig)) }
func (h *hybridHello) signWith(k *ecdsa.PrivateKey) { h.sig = sign(k, labHello, h.unsigned()) }

// hybridReply is a hybrid Reply's fields.
type hybridReply struct {
	reply
	ct []byte
}

func (r *hybridReply) transcript() []byte {
	return cat(hdrV(2, 2), v8([]byte(r.hsmID)), r.q2, r.ct, r.nonce, r.sid, u64(r.nb), u64(r.na))
}
func (r *hybridReply) unsigned() []byte { return cat(r.transcript(), r.esk, v16(r.ekt)) }
func (r *hybridReply) enc() []byte      { return cat(r.unsigned(), v8(r.sig)) }
func (r *hybridReply) signWith(k *ecdsa.PrivateKey, helloRaw []byte) {
	r.sig = sign(k, labReply, h384(helloRaw), r.unsigned())
}

// hybridRun is every value of one hybrid handshake.
type hybridRun struct {
	h                          *hybridHello
	r                          *hybridReply
	rnd, zE, zK, z, nk, th, sk []byte
	kemSeed                    []byte
}

func kemKey(seed []byte) *mlkem.DecapsulationKey1024 {
	dk, err := mlkem.NewDecapsulationKey1024(seed)
	if err != nil {
		panic(err)
	}
	return dk
}

func (w *world) hybridHandshake(kemSeed, rnd []byte) *hybridRun {
	x := &hybridRun{rnd: rnd, kemSeed: kemSeed}
	dk := kemKey(kemSeed)
	x.h = &hybridHello{hello: hello{domain: vDomain, host: vHost, version: vVersion, time: vTime, q1: w.d1.PublicKey().Bytes(), nonce: w.hostNonce},
		ek: dk.EncapsulationKey().Bytes()}
	x.h.signWith(w.host)
	raw := x.h.enc()
	hsmNonce, sk, ektNonce, m := rnd[:32], rnd[32:64], rnd[64:76], rnd[76:108]
	zK, ct, err := mlkemtest.Encapsulate1024(dk.EncapsulationKey(), m)
	if err != nil {
		panic(err)
	}
	q2 := w.d2.PublicKey().Bytes()
	x.zE, x.zK, x.sk = ecdhZ(w.d2, x.h.q1), zK, sk
	x.z = cat(x.zE, x.zK)
	sid := labelled(labSessionID, h384(raw), q2, hsmNonce)[:16]
	x.nk = kdf(x.z, cat(lab(labNKHybrid), v8([]byte(vHost)), v8([]byte(vHSM)), x.h.q1, q2, h384(x.h.ek), h384(ct), x.h.nonce, hsmNonce))
	x.r = &hybridReply{reply: reply{hsmID: vHSM, q2: q2, nonce: hsmNonce, sid: sid, nb: vTime, na: vTime + vValidity}, ct: ct}
	x.th = labelled(labTranscript, h384(raw), x.r.transcript())
	x.r.esk = seal(x.nk, zeros(12), sk, x.th)
	x.r.ekt = sealEKT(w.dk, w.dkID, ektNonce, ektPlain(sk, vHost, sid, vTime, vTime+vValidity)).enc()
	x.r.signWith(w.hsm, raw)
	return x
}

func genHybrid(w *world) *vfile {
	f := &vfile{name: "hybrid.json", object: "Hybrid handshake (ML-KEM-1024 + P-384)", spec: "docs/protocol.md#hybrid-handshake", prefix: "hybrid",
		notes: []string{
			"Each test is one exchange: the host (host_signing_scalar, d1_scalar, kem_seed = d || z of its ML-KEM-1024 key) sends hello; the HSM (hsm_signing_scalar, d2_scalar, hsm_random = hsm_nonce || SK || ekt_nonce || m, the domain key dk_id/dk, its clock time, validity_seconds) answers reply. The domain is example-domain version 7 with host-1 a service host and hsm-1 and hsm-2 members, as in hello.json and reply.json; view_hybrid_required is the domain's session policy.",
			"checked_by says which end refuses an invalid test: \"hsm\" (the HSM refuses hello) or \"host\" (the host, having sent hello, refuses reply).",
			"ML-KEM-1024 is FIPS 203: ek = KeyGen_internal(d, z) from kem_seed, (ct, z_mlkem) = Encaps_internal(ek, m) with m the last 32 bytes of hsm_random. z = z_ecdh || z_mlkem; nk = KDF(z, \"trent/v1 session hybrid nk\" || 00 || v8(host_id) || v8(hsm_id) || Q1 || Q2 || H(ek) || H(ct) || host_nonce || hsm_nonce).",
			keyNote,
		},
		fields: []fieldDoc{
			{"hello", tHex, "the encoded Hello (input)"}, {"reply", tHex, "the encoded Reply (input for checked_by host; the HSM's answer for a valid test)"},
			{"checked_by", tStr, "invalid tests: hsm or host"},
			{"view_hybrid_required", tInt, "1 if the domain requires hybrid key establishment, else 0"},
			{"host_signing_scalar", tHex, "the host's signing scalar"}, {"d1_scalar", tHex, "the host's ephemeral scalar d1"},
			{"kem_seed", tHex, "the host's ML-KEM-1024 seed d || z (64 bytes)"},
			{"hsm_signing_scalar", tHex, "hsm-1's signing scalar"}, {"d2_scalar", tHex, "the HSM's ephemeral scalar d2"},
			{"hsm_random", tHex, "the HSM's 108 random bytes: hsm_nonce || SK || ekt_nonce || m"},
			{"dk_id", tHex, "the active domain key's ID"}, {"dk", tHex, "the active domain key"},
			{"time", tInt, "the HSM's clock and the Hello's time"}, {"validity_seconds", tInt, "the EKT validity"},
			{"ek", tHex, "derived: the host's encapsulation key (1568 bytes)"}, {"ct", tHex, "derived: the ML-KEM ciphertext (1568 bytes)"},
			{"z_ecdh", tHex, "derived: ECDH(d1, Q2)"}, {"z_mlkem", tHex, "derived: the ML-KEM shared secret"},
			{"z", tHex, "derived: z_ecdh || z_mlkem"}, {"nk", tHex, "derived: NK"},
			{"transcript_hash", tHex, "derived: TH"}, {"sk", tHex, "derived: SK, what ESK opens to"},
		},
	}
	inputs := func(t *vtest, x *hybridRun, policy uint64) *vtest {
		return t.n("view_hybrid_required", policy).h("host_signing_scalar", scalar("host-1 identity")).h("d1_scalar", scalar("d1")).
			h("kem_seed", x.kemSeed).h("hsm_signing_scalar", scalar("hsm-1 signing")).h("d2_scalar", scalar("d2")).
			h("hsm_random", x.rnd).h("dk_id", w.dkID).h("dk", w.dk).n("time", vTime).n("validity_seconds", vValidity)
	}
	rnd := rng("hsm hybrid", 108)
	good := func(comment string, x *hybridRun, policy uint64) {
		t := f.add(comment, "").h("hello", x.h.enc()).h("reply", x.r.enc())
		inputs(t, x, policy).h("ek", x.h.ek).h("ct", x.r.ct).h("z_ecdh", x.zE).h("z_mlkem", x.zK).h("z", x.z).
			h("nk", x.nk).h("transcript_hash", x.th).h("sk", x.sk)
	}
	base := w.hybridHandshake(rng("host kem seed", 64), rnd)
	good("the hybrid handshake of session/testdata/hybrid.txt, in a domain that allows both modes", base, 0)
	good("the same exchange in a domain that requires hybrid key establishment", base, 1)
	other := w.hybridHandshake(rng("host kem seed 2", 64), rng("hsm hybrid 2", 108))
	good("another ML-KEM key and other HSM random bytes", other, 1)

	badHSM := func(comment, reason string, hello []byte, policy uint64) {
		inputs(f.add(comment, reason).s("checked_by", "hsm").h("hello", hello), base, policy)
	}
	badHost := func(comment, reason string, reply []byte) {
		inputs(f.add(comment, reason).s("checked_by", "host").h("hello", base.h.enc()).h("reply", reply), base, 0)
	}
	{
		h := w.baseHello()
		badHSM("a classical Hello (version 1) to a domain that requires hybrid (Alert 26)", "hybrid-required", h.enc(), 1)
	}
	{
		h := *base.h
		h.ek = clone(h.ek)
		h.ek[0], h.ek[1] = 0xff, 0xff // the first coefficient 4095 ≥ q
		h.signWith(w.host)
		badHSM("ek whose first 12-bit coefficient is 4095 (FIPS 203 modulus check; Alert 27)", "invalid-kem-key", h.enc(), 0)
	}
	{
		raw := base.h.enc()
		badHSM("the hybrid Hello cut in the middle of ek", "truncated", raw[:6+15+8+7+97+784], 0)
		badHSM("the hybrid Hello with version 3", "bad-version", setByte(raw, 4, 3), 0)
		stripped := cat(hdr(1), raw[6:6+15+8+7+97], raw[6+15+8+7+97+1568:])
		badHSM("the hybrid Hello turned classical (version 01, ek removed, sig1 kept): a downgrade of the Hello", "bad-signature", stripped, 0)
	}
	{
		classical := w.runHandshake(w.baseHello(), vHSM, w.hsm, vTime, vValidity)
		badHost("a classical Reply (version 1) to the hybrid Hello: a downgrade of the Reply", "mode-mismatch", classical.r.enc())
	}
	{
		r := *base.r
		r.ct = flip(r.ct, 100)
		badHost("the Reply's ML-KEM ciphertext with a byte changed, sig2 kept", "bad-signature", r.enc())
		r.signWith(w.hsm, base.h.enc())
		badHost("the Reply's ML-KEM ciphertext with a byte changed and sig2 made over it: z_mlkem differs (implicit rejection), ESK does not open", "wrong-key", r.enc())
	}
	return f
}

var hybridErr = map[string]error{
	"hybrid-required": session.ErrHybridRequired, "invalid-kem-key": session.ErrInvalidKEM, "mode-mismatch": session.ErrBadReply,
	"truncated": session.ErrMalformed, "bad-version": session.ErrVersion, "bad-signature": session.ErrBadSignature,
	"wrong-key": session.ErrAuthentication,
}

// policyDir is a domain view with a session policy.
type policyDir struct {
	session.Directory
	hybrid bool
}

func (d policyDir) HybridRequired() bool { return d.hybrid }

func checkHybrid(t *testing.T, v *vec) {
	w := newWorld()
	hk := keyFromScalar(t, v.hex("host_signing_scalar"))
	dir, err := session.NewStaticDirectory(vDomain, vVersion,
		[]session.Operator{{ID: vHost, Key: &hk.PublicKey, Roles: []string{rolePlain}}}, members(w))
	if err != nil {
		t.Fatal(err)
	}
	pdir := policyDir{dir, v.num("view_hybrid_required") == 1}
	hello := v.hex("hello")
	if v.Result == invalid && v.str("checked_by") == "hsm" {
		h := checkHSM(t, w, pdir, ring(v.hex("dk_id"), v.hex("dk")), v.num("time"), 0, v.hex("hsm_random"))
		_, err := h.Handshake(hello)
		expectErr(t, v, err, hybridErr)
		return
	}
	// The host end: it makes the same Hello from the same inputs.
	d1 := ecdhFromScalar(t, v.hex("d1_scalar"))
	hl, err := session.ParseHello(hello)
	if err != nil {
		t.Fatal(err)
	}
	host := &session.Host{ID: vHost, Signer: testvec.Signer{K: hk}, Dir: dir,
		Now: func() time.Time { return time.Unix(int64(v.num("time")), 0) }, Rand: bytes.NewReader(hl.HostNonce),
		NewEphemeral: func() (*ecdh.PrivateKey, error) { return d1, nil },
		Hybrid:       func() bool { return true }, KEMRand: bytes.NewReader(v.hex("kem_seed"))}
	p, made, err := host.Begin()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "the host's Hello", made, hello)
	if v.Result == valid {
		h := checkHSM(t, w, pdir, ring(v.hex("dk_id"), v.hex("dk")), v.num("time"), 0, v.hex("hsm_random"))
		reply, err := h.Handshake(hello)
		if err != nil {
			t.Fatalf("%s: the HSM refuses: %v", v.ID, err)
		}
		eq(t, v.ID, "the HSM's Reply", reply, v.hex("reply"))
		r, err := session.ParseReply(reply)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, v.ID, "ct", r.CT, v.hex("ct"))
		eq(t, v.ID, "ek", hl.EK, v.hex("ek"))
		eq(t, v.ID, "z", cat(v.hex("z_ecdh"), v.hex("z_mlkem")), v.hex("z"))
	}
	s, err := p.Finish(v.hex("reply"))
	expectErr(t, v, err, hybridErr)
	if v.Result == valid {
		if !s.Hybrid {
			t.Fatalf("%s: not a hybrid session", v.ID)
		}
		if errors.Is(err, session.ErrAuthentication) {
			t.Fatal(err)
		}
	}
}

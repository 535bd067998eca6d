package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/trentkms/trent/internal/testvec"
)

// Known-answer vectors. The generator below runs the protocol code with
// fixed keys, fixed randomness, a fixed clock and deterministic (RFC 6979)
// ECDSA, so every byte is reproducible; TestVectors regenerates the files
// in testdata/ and compares them byte for byte. go test -run TestVectors
// -update rewrites them. docs/protocol.md describes each field.

var update = flag.Bool("update", false, "rewrite testdata/ vectors")

type vector = testvec.Vector

// parseVector reads a vector file into name → raw bytes.
func parseVector(t testing.TB, data []byte) map[string][]byte {
	m, err := testvec.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var scalar = testvec.Scalar

func vecSigningKey(t testing.TB, name string) *ecdsa.PrivateKey {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), scalar(name))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func vecECDHKey(t testing.TB, name string) *ecdh.PrivateKey {
	k, err := ecdh.P384().NewPrivateKey(scalar(name))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type detSigner = testvec.Signer

// softEphemeral is an ephemeral ECDH key in Go memory: vectors only (in an
// HSM d2 and dE are token session objects).
type softEphemeral = testvec.Ephemeral

// softDK is a domain key in Go memory: vectors only (in an HSM, DKs are
// token session objects).
type softDK struct{ a cipher.AEAD }

func newSoftDK(raw []byte) softDK {
	b, _ := aes.NewCipher(raw)
	a, _ := cipher.NewGCM(b)
	return softDK{a}
}
func (k softDK) Seal(nonce, pt, aad []byte) ([]byte, error) {
	return k.a.Seal(nil, nonce, pt, aad), nil
}
func (k softDK) Open(nonce, ct, aad []byte) ([]byte, error) { return k.a.Open(nil, nonce, ct, aad) }

var (
	detReader = testvec.Reader
	readN     = testvec.ReadN
)

var vecTime = time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z

const (
	vecDomain  = "example-domain"
	vecHostID  = "host-1"
	vecHSMID   = "hsm-1"
	vecHSM2ID  = "hsm-2"
	vecVersion = 7
)

// vecWorld is the fixed domain of the vectors.
type vecWorld struct {
	hostKey, hsmKey, hsm2Key *ecdsa.PrivateKey
	hsmAgree, hsm2Agree      *ecdh.PrivateKey
	dkID                     [KeyIDSize]byte
	dkRaw                    []byte
	dir                      *StaticDirectory
	keys                     *MemoryKeyRing
}

func newVecWorld(t testing.TB) *vecWorld {
	w := &vecWorld{
		hostKey: vecSigningKey(t, "host-1 identity"), hsmKey: vecSigningKey(t, "hsm-1 signing"),
		hsm2Key: vecSigningKey(t, "hsm-2 signing"), hsmAgree: vecECDHKey(t, "hsm-1 agreement"),
		hsm2Agree: vecECDHKey(t, "hsm-2 agreement"),
	}
	copy(w.dkID[:], readN(detReader("dk id"), KeyIDSize))
	w.dkRaw = readN(detReader("dk"), 32)
	var err error
	w.dir, err = NewStaticDirectory(vecDomain, vecVersion,
		[]Operator{{ID: vecHostID, Key: &w.hostKey.PublicKey, Roles: []string{RoleServiceHost}}},
		[]Member{
			{ID: vecHSMID, Signing: &w.hsmKey.PublicKey, Agreement: w.hsmAgree.PublicKey()},
			{ID: vecHSM2ID, Signing: &w.hsm2Key.PublicKey, Agreement: w.hsm2Agree.PublicKey()},
		})
	if err != nil {
		t.Fatal(err)
	}
	w.keys = NewMemoryKeyRing()
	w.keys.Add(w.dkID, newSoftDK(w.dkRaw), true)
	return w
}

func genHandshakeVectors(t testing.TB) map[string]*vector {
	w := newVecWorld(t)
	d1 := vecECDHKey(t, "d1")
	d2 := vecECDHKey(t, "d2")
	host := &Host{
		ID: vecHostID, Signer: detSigner{K: w.hostKey}, Dir: w.dir,
		Now: func() time.Time { return vecTime }, Rand: detReader("host nonce"),
		NewEphemeral: func() (*ecdh.PrivateKey, error) { return d1, nil },
	}
	h, err := NewHSM(HSMConfig{
		ID: vecHSMID, Signer: detSigner{K: w.hsmKey}, Rand: detReader("hsm"),
		NewEphemeral: func() (EphemeralKey, error) { return softEphemeral{K: d2}, nil },
		Dir:          w.dir, Keys: w.keys, Now: func() time.Time { return vecTime },
	})
	if err != nil {
		t.Fatal(err)
	}
	hello, reply, sess := vecHandshake(t, host, h)
	hs := &vector{Comment: []string{
		"C(2,2) handshake between host-1 and hsm-1 of example-domain version 7 (docs/protocol.md, Handshake).",
		"Private scalars are SHA-384(\"trent vector key \" || name); randomness is SHAKE256(\"trent vector rng \" || name).",
		"Signatures are deterministic ECDSA (RFC 6979) so that the bytes are reproducible; an HSM's are random.",
	}}
	hs.Hex("host_signing_scalar", scalar("host-1 identity"))
	hs.Hex("hsm_signing_scalar", scalar("hsm-1 signing"))
	hs.Hex("d1_scalar", scalar("d1"))
	hs.Hex("d2_scalar", scalar("d2"))
	hs.Hex("host_nonce", readN(detReader("host nonce"), NonceSize))
	hsmRnd := readN(detReader("hsm"), NonceSize+SKSize+gcmNonceSize)
	hs.Hex("hsm_random", hsmRnd)
	hs.Hex("dk_id", w.dkID[:])
	hs.Hex("dk", w.dkRaw)
	hs.U64("time", uint64(vecTime.Unix()))
	hs.U64("validity_seconds", uint64(DefaultValidity/time.Second))
	hs.Hex("hello", hello)

	// Intermediate values, for implementers.
	z, _ := d1.ECDH(d2.PublicKey())
	r, _ := ParseReply(reply)
	hs.Hex("z", z)
	nk := oneStepKDF(z, nkFixedInfo(vecHostID, vecHSMID, d1.PublicKey().Bytes(), d2.PublicKey().Bytes(), readN(detReader("host nonce"), NonceSize), hsmRnd[:NonceSize]))
	hs.Hex("nk", nk)
	hs.Hex("session_id", r.SessionID[:])
	transcript, _ := r.transcriptPart()
	hs.Hex("transcript_hash", labelled(labelTranscript, hash384(hello), transcript))
	hs.Hex("sk", sess.sk)
	hs.Hex("esk", r.ESK)
	hs.Hex("ekt", r.EKT)
	hs.Hex("reply", reply)

	// An envelope and its response under the session.
	req, _, err := sess.Seal(0x0001, []byte("ping"))
	if err != nil {
		t.Fatal(err)
	}
	opened, err := h.Open(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := opened.Seal([]byte("pong"))
	if err != nil {
		t.Fatal(err)
	}
	env := &vector{Comment: []string{
		"The first envelope of the session of handshake.txt (seq 1, command type 1, command \"ping\")",
		"and hsm-1's response (\"pong\") (docs/protocol.md, Envelope and Response).",
	}}
	env.Hex("sk", sess.sk)
	env.Hex("ekt", r.EKT)
	env.Hex("session_id", r.SessionID[:])
	env.Str("host_id", vecHostID)
	env.U64("seq", 1)
	env.U64("type", 1)
	env.Hex("command", []byte("ping"))
	env.Hex("envelope", req)
	env.Hex("response_plaintext", []byte("pong"))
	env.Hex("response", resp)

	// One-pass C(1,2) from hsm-1 to hsm-1 and hsm-2.
	dE := vecECDHKey(t, "dE")
	payload := readN(detReader("dkek"), 32)
	ctx := []byte("example-domain version 8 DKEK")
	op, err := SealOnePass(vecHSMID, detSigner{K: w.hsmKey}, softEphemeral{K: dE}, ctx, payload, []Recipient{
		{ID: vecHSM2ID, Agreement: w.hsm2Agree.PublicKey()},
		{ID: vecHSMID, Agreement: w.hsmAgree.PublicKey()},
	})
	if err != nil {
		t.Fatal(err)
	}
	one := &vector{Comment: []string{
		"One-pass C(1,2) from hsm-1 (static signing key as in handshake.txt) to hsm-1 and hsm-2",
		"(docs/protocol.md, One-pass C(1,2)); recipients' agreement scalars are given so the wraps can be opened.",
	}}
	one.Hex("sender_signing_scalar", scalar("hsm-1 signing"))
	one.Hex("de_scalar", scalar("dE"))
	one.Hex("hsm1_agreement_scalar", scalar("hsm-1 agreement"))
	one.Hex("hsm2_agreement_scalar", scalar("hsm-2 agreement"))
	one.Hex("context", ctx)
	one.Hex("payload", payload)
	for _, rc := range []struct {
		id string
		k  *ecdh.PrivateKey
	}{{vecHSMID, w.hsmAgree}, {vecHSM2ID, w.hsm2Agree}} {
		zi, _ := dE.ECDH(rc.k.PublicKey())
		one.Hex("kek_"+rc.id, onePassKEK(zi, vecHSMID, rc.id, dE.PublicKey().Bytes()))
	}
	one.Hex("message", op)
	return map[string]*vector{"handshake.txt": hs, "envelope.txt": env, "onepass.txt": one, "hybrid.txt": genHybridVector(t, w), "onepass-hybrid.txt": genHybridOnePassVector(t, w)}
}

// genHybridVector is the hybrid handshake of the same parties: d1, d2, the
// host nonce and the clock as in handshake.txt, the host's ML-KEM-1024 key
// from a fixed seed d ‖ z, and the HSM's random draw with the
// encapsulation randomness m at its end.
func genHybridVector(t testing.TB, w *vecWorld) *vector {
	d1 := vecECDHKey(t, "d1")
	d2 := vecECDHKey(t, "d2")
	host := &Host{
		ID: vecHostID, Signer: detSigner{K: w.hostKey}, Dir: w.dir,
		Now: func() time.Time { return vecTime }, Rand: detReader("host nonce"),
		NewEphemeral: func() (*ecdh.PrivateKey, error) { return d1, nil },
		Hybrid:       func() bool { return true }, KEMRand: detReader("host kem seed"),
	}
	h, err := NewHSM(HSMConfig{
		ID: vecHSMID, Signer: detSigner{K: w.hsmKey}, Rand: detReader("hsm hybrid"),
		NewEphemeral: func() (EphemeralKey, error) { return softEphemeral{K: d2}, nil },
		Dir:          w.dir, Keys: w.keys, Now: func() time.Time { return vecTime },
	})
	if err != nil {
		t.Fatal(err)
	}
	hello, reply, sess := vecHandshake(t, host, h)
	if !sess.Hybrid {
		t.Fatal("hybrid vector: session not hybrid")
	}
	v := &vector{Comment: []string{
		"Hybrid (ML-KEM-1024 + P-384) C(2,2) handshake between host-1 and hsm-1 of example-domain version 7",
		"(docs/protocol.md, Hybrid handshake). Scalars, nonce, clock, domain key as in handshake.txt;",
		"the host's ML-KEM-1024 key is KeyGen_internal(d, z) of kem_seed = d || z (FIPS 203), and the",
		"HSM's 108 random bytes end with the encapsulation randomness m of Encaps_internal(ek, m).",
	}}
	v.Hex("host_signing_scalar", scalar("host-1 identity"))
	v.Hex("hsm_signing_scalar", scalar("hsm-1 signing"))
	v.Hex("d1_scalar", scalar("d1"))
	v.Hex("d2_scalar", scalar("d2"))
	v.Hex("host_nonce", readN(detReader("host nonce"), NonceSize))
	seed := readN(detReader("host kem seed"), KEMSeedSize)
	v.Hex("kem_seed", seed)
	rnd := readN(detReader("hsm hybrid"), NonceSize+SKSize+gcmNonceSize+kemEncapsSize)
	v.Hex("hsm_random", rnd)
	v.Hex("dk_id", w.dkID[:])
	v.Hex("dk", w.dkRaw)
	v.U64("time", uint64(vecTime.Unix()))
	v.U64("validity_seconds", uint64(DefaultValidity/time.Second))
	v.Hex("hello", hello)

	r, _ := ParseReply(reply)
	hl, _ := ParseHello(hello)
	v.Hex("ek", hl.EK)
	v.Hex("ct", r.CT)
	zE, _ := d1.ECDH(d2.PublicKey())
	dk, _, _ := KEMKeyFromSeed(seed)
	zK, _ := kemDecaps(dk, r.CT)
	v.Hex("z_ecdh", zE)
	v.Hex("z_mlkem", zK)
	z := hybridSecret(zE, zK)
	v.Hex("z", z)
	v.Hex("nk", oneStepKDF(z, nkFixedInfoHybrid(vecHostID, vecHSMID, d1.PublicKey().Bytes(), d2.PublicKey().Bytes(), hl.EK, r.CT, hl.HostNonce, r.HSMNonce)))
	v.Hex("session_id", r.SessionID[:])
	transcript, _ := r.transcriptPart()
	v.Hex("transcript_hash", labelled(labelTranscript, hash384(hello), transcript))
	v.Hex("sk", sess.sk)
	v.Hex("esk", r.ESK)
	v.Hex("ekt", r.EKT)
	v.Hex("reply", reply)
	return v
}

func TestVectors(t *testing.T) {
	for name, v := range genHandshakeVectors(t) {
		testvec.Check(t, filepath.Join("testdata", name), v, *update)
	}
}

// genHybridOnePassVector is the one-pass message of onepass.txt in the
// hybrid form: the recipients' ML-KEM-1024 keys from fixed seeds, the
// sender's encapsulation randomness m_i read in recipient order.
func genHybridOnePassVector(t testing.TB, w *vecWorld) *vector {
	dE := vecECDHKey(t, "dE")
	payload := readN(detReader("dkek"), 32)
	ctx := []byte("example-domain version 8 DKEK")
	seed1 := readN(detReader("hsm-1 kem seed"), KEMSeedSize)
	seed2 := readN(detReader("hsm-2 kem seed"), KEMSeedSize)
	_, ek1, _ := KEMKeyFromSeed(seed1)
	_, ek2, _ := KEMKeyFromSeed(seed2)
	op, err := SealOnePassHybrid(vecHSMID, detSigner{K: w.hsmKey}, softEphemeral{K: dE}, detReader("onepass kem"), ctx, payload, []Recipient{
		{ID: vecHSM2ID, Agreement: w.hsm2Agree.PublicKey(), KEM: ek2},
		{ID: vecHSMID, Agreement: w.hsmAgree.PublicKey(), KEM: ek1},
	})
	if err != nil {
		t.Fatal(err)
	}
	v := &vector{Comment: []string{
		"Hybrid one-pass C(1,2) from hsm-1 to hsm-1 and hsm-2 (docs/protocol.md, Hybrid one-pass):",
		"the message of onepass.txt with each recipient's ML-KEM-1024 key (KeyGen_internal of its kem seed d || z)",
		"and the sender's encapsulation randomness (kem_random: m for hsm-1, then m for hsm-2, in recipient order).",
	}}
	v.Hex("sender_signing_scalar", scalar("hsm-1 signing"))
	v.Hex("de_scalar", scalar("dE"))
	v.Hex("hsm1_agreement_scalar", scalar("hsm-1 agreement"))
	v.Hex("hsm2_agreement_scalar", scalar("hsm-2 agreement"))
	v.Hex("hsm1_kem_seed", seed1)
	v.Hex("hsm2_kem_seed", seed2)
	v.Hex("kem_random", readN(detReader("onepass kem"), 2*kemEncapsSize))
	v.Hex("context", ctx)
	v.Hex("payload", payload)
	m, _ := ParseOnePass(op)
	for i, rc := range []struct {
		id   string
		k    *ecdh.PrivateKey
		seed []byte
		ek   []byte
	}{{vecHSMID, w.hsmAgree, seed1, ek1}, {vecHSM2ID, w.hsm2Agree, seed2, ek2}} {
		zi, _ := dE.ECDH(rc.k.PublicKey())
		dk, _, _ := KEMKeyFromSeed(rc.seed)
		zk, _ := kemDecaps(dk, m.Recipients[i].KEMCiphertext)
		v.Hex("kek_"+rc.id, onePassKEKHybrid(hybridSecret(zi, zk), vecHSMID, rc.id, dE.PublicKey().Bytes(), rc.ek, m.Recipients[i].KEMCiphertext))
	}
	v.Hex("message", op)
	return v
}

// vecHandshake runs host's handshake with h and returns the Hello, the
// Reply and the host's session.
func vecHandshake(t testing.TB, host *Host, h *HSM) (hello, reply []byte, sess *Session) {
	t.Helper()
	pending, hello, err := host.Begin()
	if err != nil {
		t.Fatal(err)
	}
	reply, err = h.Handshake(hello)
	if err != nil {
		t.Fatal(err)
	}
	sess, err = pending.Finish(reply)
	if err != nil {
		t.Fatal(err)
	}
	return hello, reply, sess
}

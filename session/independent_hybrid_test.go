package session_test

// The hybrid vector read from docs/protocol.md alone, with the Go standard
// library: ML-KEM-1024 here is crypto/mlkem (and its derandomized
// encapsulation in crypto/mlkem/mlkemtest), a second implementation beside
// the circl one package session uses.

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHybridVectorAgainstTheDocument(t *testing.T) {
	v := loadVector(t, "hybrid.txt")
	hello := v["hello"]

	// Hello, version 2.
	r := &reader{t: t, b: hello}
	require.Equal(t, []byte("TRNT\x02\x01"), r.take(6))
	require.Equal(t, "example-domain", string(r.v8()))
	require.Equal(t, uint64(7), r.u64())
	hostID := r.v8()
	q1 := r.take(97)
	ek := r.take(1568)
	hostNonce := r.take(32)
	require.Equal(t, v["time"], binary.BigEndian.AppendUint64(nil, r.u64()))
	helloUnsigned := hello[:r.off]
	sig1 := r.v8()
	r.end()
	d1 := ecdhKey(t, v["d1_scalar"])
	require.Equal(t, d1.PublicKey().Bytes(), q1)
	require.Equal(t, v["host_nonce"], hostNonce)
	dk, err := mlkem.NewDecapsulationKey1024(v["kem_seed"])
	require.NoError(t, err)
	require.Equal(t, dk.EncapsulationKey().Bytes(), ek, "ek = KeyGen_internal(d, z)")
	require.True(t, ecdsa.VerifyASN1(ecdsaPub(t, v["host_signing_scalar"]), h384(lab("trent/v1 session hello"), helloUnsigned), sig1), "sig1")

	// Reply, version 2.
	reply := v["reply"]
	rnd := v["hsm_random"]
	require.Len(t, rnd, 108)
	r = &reader{t: t, b: reply}
	require.Equal(t, []byte("TRNT\x02\x02"), r.take(6))
	hsmID := r.v8()
	q2 := r.take(97)
	ct := r.take(1568)
	hsmNonce := r.take(32)
	sessionID := r.take(16)
	notBefore, notAfter := r.u64(), r.u64()
	eskOff := r.off
	esk := r.take(48)
	ekt := r.v16()
	replyUnsigned := reply[:r.off]
	sig2 := r.v8()
	r.end()
	require.Equal(t, ecdhKey(t, v["d2_scalar"]).PublicKey().Bytes(), q2)
	require.Equal(t, rnd[:32], hsmNonce)
	require.Equal(t, notBefore+binary.BigEndian.Uint64(v["validity_seconds"]), notAfter)
	require.Equal(t, v["ekt"], ekt)

	// The HSM's ciphertext is Encaps_internal(ek, m), m the last 32 random bytes.
	ekKey, err := mlkem.NewEncapsulationKey1024(ek)
	require.NoError(t, err)
	zKEnc, ctWant, err := mlkemtest.Encapsulate1024(ekKey, rnd[76:108])
	require.NoError(t, err)
	require.Equal(t, ctWant, ct)
	zK, err := dk.Decapsulate(ct)
	require.NoError(t, err)
	require.Equal(t, zKEnc, zK)
	require.Equal(t, v["z_mlkem"], zK)

	helloHash := h384(hello)
	require.True(t, ecdsa.VerifyASN1(ecdsaPub(t, v["hsm_signing_scalar"]), h384(lab("trent/v1 session reply"), helloHash, replyUnsigned), sig2), "sig2")
	require.Equal(t, h384(lab("trent/v1 session id"), helloHash, q2, hsmNonce)[:16], sessionID)

	q2Key, err := ecdh.P384().NewPublicKey(q2)
	require.NoError(t, err)
	zE, err := d1.ECDH(q2Key)
	require.NoError(t, err)
	require.Equal(t, v["z_ecdh"], zE)
	z := append(append([]byte{}, zE...), zK...) // ECDH secret first, as RFC 10024's SecP384r1MLKEM1024
	require.Equal(t, v["z"], z)
	fixedInfo := bytes.Join([][]byte{lab("trent/v1 session hybrid nk"), v8(hostID), v8(hsmID), q1, q2, h384(ek), h384(ct), hostNonce, hsmNonce}, nil)
	nk := kdf(z, fixedInfo)
	require.Equal(t, v["nk"], nk)
	th := h384(lab("trent/v1 session transcript"), helloHash, reply[:eskOff])
	require.Equal(t, v["transcript_hash"], th)
	sk, err := aesGCM(t, nk).Open(nil, make([]byte, 12), esk, th)
	require.NoError(t, err, "ESK")
	require.Equal(t, rnd[32:64], sk)
	require.Equal(t, v["sk"], sk)

	// The EKT is version 1, as in the classical handshake; its nonce is
	// random bytes 64 to 76.
	require.Equal(t, rnd[64:76], ekt[6+16:6+16+12])
}

func TestHybridOnePassVectorAgainstTheDocument(t *testing.T) {
	v := loadVector(t, "onepass-hybrid.txt")
	msg := v["message"]
	r := &reader{t: t, b: msg}
	require.Equal(t, []byte("TRNT\x02\x06"), r.take(6))
	sender := r.v8()
	qe := r.take(97)
	ctx := r.v16()
	require.Equal(t, v["context"], ctx)
	n := int(r.take(1)[0])
	require.Equal(t, 2, n)
	dE := ecdhKey(t, v["de_scalar"])
	require.Equal(t, dE.PublicKey().Bytes(), qe)
	m := v["kem_random"]
	for i, rc := range []struct{ scalar, seed string }{{"hsm1_agreement_scalar", "hsm1_kem_seed"}, {"hsm2_agreement_scalar", "hsm2_kem_seed"}} {
		id := r.v8()
		kemCT := r.take(1568)
		ct := r.v24()
		dk, err := mlkem.NewDecapsulationKey1024(v[rc.seed])
		require.NoError(t, err)
		ek := dk.EncapsulationKey()
		zkEnc, ctWant, err := mlkemtest.Encapsulate1024(ek, m[32*i:32*i+32])
		require.NoError(t, err)
		require.Equal(t, ctWant, kemCT, "Encaps_internal(ek_i, m_i)")
		zk, err := dk.Decapsulate(kemCT)
		require.NoError(t, err)
		require.Equal(t, zkEnc, zk)
		z := ecdhZ(t, ecdhKey(t, v[rc.scalar]), qe)
		kek := kdf(append(z, zk...), bytes.Join([][]byte{lab("trent/v1 onepass hybrid kek"), v8(sender), v8(id), qe, h384(ek.Bytes()), h384(kemCT)}, nil))
		require.Equal(t, v["kek_"+string(id)], kek)
		aad := bytes.Join([][]byte{lab("trent/v1 onepass wrap"), v8(sender), v8(id), qe, h384(ctx)}, nil)
		pt, err := aesGCM(t, kek).Open(nil, make([]byte, 12), ct, aad)
		require.NoError(t, err)
		require.Equal(t, v["payload"], pt)
	}
	unsigned := msg[:r.off]
	sig := r.v8()
	r.end()
	require.True(t, ecdsa.VerifyASN1(ecdsaPub(t, v["sender_signing_scalar"]), h384(lab("trent/v1 onepass sig"), unsigned), sig))
}

func ecdhZ(t *testing.T, k *ecdh.PrivateKey, peer []byte) []byte {
	p, err := ecdh.P384().NewPublicKey(peer)
	require.NoError(t, err)
	z, err := k.ECDH(p)
	require.NoError(t, err)
	return z
}

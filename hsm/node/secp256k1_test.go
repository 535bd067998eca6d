package node_test

import (
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/tokenstore"
)

// secp256k1 for the test's own check of the token's signatures: affine
// arithmetic with math/big, slow and not constant-time, a second
// implementation written from SEC 2 (curve y² = x³ + 7) and SEC 1 §4.1.4.
var (
	k1P, _  = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F", 16)
	k1N, _  = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	k1Gx, _ = new(big.Int).SetString("79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798", 16)
	k1Gy, _ = new(big.Int).SetString("483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8", 16)
)

type pt struct{ x, y *big.Int } // nil x: the point at infinity

func k1Add(a, b pt) pt {
	if a.x == nil {
		return b
	}
	if b.x == nil {
		return a
	}
	var l *big.Int
	if a.x.Cmp(b.x) == 0 {
		if new(big.Int).Add(a.y, b.y).Mod(new(big.Int).Add(a.y, b.y), k1P).Sign() == 0 {
			return pt{}
		}
		num := new(big.Int).Mul(big.NewInt(3), new(big.Int).Mul(a.x, a.x))
		den := new(big.Int).ModInverse(new(big.Int).Mul(big.NewInt(2), a.y), k1P)
		l = num.Mul(num, den)
	} else {
		num := new(big.Int).Sub(b.y, a.y)
		den := new(big.Int).ModInverse(new(big.Int).Mod(new(big.Int).Sub(b.x, a.x), k1P), k1P)
		l = num.Mul(num, den)
	}
	l.Mod(l, k1P)
	x := new(big.Int).Sub(new(big.Int).Mul(l, l), new(big.Int).Add(a.x, b.x))
	x.Mod(x, k1P)
	y := new(big.Int).Sub(new(big.Int).Mul(l, new(big.Int).Sub(a.x, x)), a.y)
	y.Mod(y, k1P)
	return pt{x, y}
}

func k1Mul(k *big.Int, p pt) pt {
	r := pt{}
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = k1Add(r, r)
		if k.Bit(i) == 1 {
			r = k1Add(r, p)
		}
	}
	return r
}

func k1Verify(point []byte, digest []byte, sig []byte) bool {
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		return false
	}
	q := pt{new(big.Int).SetBytes(point[1:33]), new(big.Int).SetBytes(point[33:])}
	e := new(big.Int).SetBytes(digest)
	w := new(big.Int).ModInverse(rs.S, k1N)
	u1 := new(big.Int).Mod(new(big.Int).Mul(e, w), k1N)
	u2 := new(big.Int).Mod(new(big.Int).Mul(rs.R, w), k1N)
	x := k1Add(k1Mul(u1, pt{k1Gx, k1Gy}), k1Mul(u2, q))
	return x.x != nil && new(big.Int).Mod(x.x, k1N).Cmp(rs.R) == 0
}

func TestSecp256k1Keys(t *testing.T) { eachModule(t, testSecp256k1Keys) }

func testSecp256k1Keys(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1, h2 := c.nodes[0], c.nodes[1]
	require.NoError(t, h2.Import(c.genesis(h1, h2), c.now))
	tok, pubDER, err := h1.CreateKeyPair(hsmcmd.SpecSECP256K1, "k1")
	require.NoError(t, err)
	point, err := hsmcmd.ParseSecp256k1PublicKey(pubDER)
	require.NoError(t, err)
	// The point is on the curve: y² = x³ + 7.
	x, y := new(big.Int).SetBytes(point[1:33]), new(big.Int).SetBytes(point[33:])
	lhs := new(big.Int).Mod(new(big.Int).Mul(y, y), k1P)
	rhs := new(big.Int).Mod(new(big.Int).Add(new(big.Int).Exp(x, big.NewInt(3), k1P), big.NewInt(7)), k1P)
	require.Zero(t, lhs.Cmp(rhs))

	msg := []byte("bitcoin-style")
	d := sha256.Sum256(msg)
	sig, err := h2.Sign(tok, hsmcmd.AlgECDSASHA256, false, msg)
	require.NoError(t, err)
	require.True(t, k1Verify(point, d[:], sig), "the test's own secp256k1 check")
	require.False(t, k1Verify(point, make([]byte, 32), sig))
	sig2, err := h2.Sign(tok, hsmcmd.AlgECDSASHA256, true, d[:])
	require.NoError(t, err)
	require.True(t, k1Verify(point, d[:], sig2))

	ok, err := h1.VerifySecp256k1(pubDER, false, msg, sig)
	require.NoError(t, err)
	require.True(t, ok, "the token (or, on NSS, the HSM process) verifies its signature")
	ok, err = h1.VerifySecp256k1(pubDER, false, []byte("other"), sig)
	require.NoError(t, err)
	require.False(t, ok)
	ok, err = h1.VerifySecp256k1(pubDER, false, msg, []byte{0x30, 0x00})
	require.NoError(t, err)
	require.False(t, ok, "a malformed signature is not valid")

	_, err = h2.Sign(tok, hsmcmd.AlgECDSASHA384, false, msg)
	require.ErrorIs(t, err, node.ErrKeyUse)
	_, err = h2.DeriveSharedSecret(tok, pubDER)
	require.ErrorIs(t, err, node.ErrKeyUse)
}

// A key token whose scalar is a byte short (SoftHSM gives one scalar in
// 256 so, and nodes before the fix sealed it as given) opens as the
// 32-byte scalar and signs for the point of that scalar.
func TestSecp256k1ShortScalar(t *testing.T) { eachModule(t, testSecp256k1ShortScalar) }

func testSecp256k1ShortScalar(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1 := c.nodes[0]
	c.genesis(h1)
	d := make([]byte, 31)
	for i := range d {
		d[i] = byte(i + 1)
	}
	tok, err := h1.SealKeyToken(hsmcmd.SpecSECP256K1, "k1-short", d)
	require.NoError(t, err)
	q := k1Mul(new(big.Int).SetBytes(d), pt{k1Gx, k1Gy})
	point := append([]byte{4}, q.x.FillBytes(make([]byte, 32))...)
	point = append(point, q.y.FillBytes(make([]byte, 32))...)
	msg := []byte("short scalar")
	digest := sha256.Sum256(msg)
	sig, err := h1.Sign(tok, hsmcmd.AlgECDSASHA256, false, msg)
	require.NoError(t, err)
	require.True(t, k1Verify(point, digest[:], sig))

	_, err = h1.Sign(mustSeal(t, h1, make([]byte, 33)), hsmcmd.AlgECDSASHA256, false, msg)
	require.ErrorIs(t, err, node.ErrHBK, "a scalar longer than the curve's")
}

func mustSeal(t *testing.T, n *node.Node, d []byte) []byte {
	tok, err := n.SealKeyToken(hsmcmd.SpecSECP256K1, "k1-bad", d)
	require.NoError(t, err)
	return tok
}

// A secp256k1 data key pair: its PKCS#8 private key holds the scalar of
// its public point (checked with the test's own arithmetic).
func TestSecp256k1DataKeyPair(t *testing.T) { eachModule(t, testSecp256k1DataKeyPair) }

func testSecp256k1DataKeyPair(t *testing.T, kind tokenstore.Kind) {
	c := newCeremonyOn(t, kind)
	h1 := c.nodes[0]
	c.genesis(h1)
	tok, err := h1.CreateHBK("sym")
	require.NoError(t, err)
	ctx := ec(t, nil)
	priv, pubDER, blob, err := h1.GenerateDataKeyPair(tok, ctx, hsmcmd.SpecSECP256K1, true)
	require.NoError(t, err)
	d, point, err := hsmcmd.ParseSecp256k1PKCS8(priv)
	require.NoError(t, err)
	pub, err := hsmcmd.ParseSecp256k1PublicKey(pubDER)
	require.NoError(t, err)
	require.Equal(t, pub, point)
	q := k1Mul(new(big.Int).SetBytes(d), pt{k1Gx, k1Gy})
	require.Zero(t, q.x.Cmp(new(big.Int).SetBytes(point[1:33])))
	require.Zero(t, q.y.Cmp(new(big.Int).SetBytes(point[33:])))
	back, err := h1.Decrypt(tok, ctx, blob)
	require.NoError(t, err)
	require.Equal(t, priv, back)
	_, _, err = hsmcmd.ParseSecp256k1PKCS8(append(priv, 0))
	require.Error(t, err)
}

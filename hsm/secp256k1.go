package hsm

import (
	"io"
	"math/big"
)

// secp256k1 in the HSM process, for modules that do not know the curve
// (NSS's softoken answers CKR_DOMAIN_PARAMS_INVALID): key generation,
// ECDSA signing and verification with math/big, written from SEC 2 §2.4.1
// (y² = x³ + 7 over p) and SEC 1 §4.1. The randomness (scalars, nonces)
// comes from the token's RNG, as everywhere in the HSM. This arithmetic is
// not constant-time: the ladder below runs the same operations for every
// bit, but math/big's timing depends on its operands. docs/hsm-boundary.md
// records that modules without secp256k1 take this path; the results are
// the same (the tests check each side against the other and against an
// independent implementation).

var (
	k1P  = hexInt("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F")
	k1N  = hexInt("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
	k1Gx = hexInt("79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798")
	k1Gy = hexInt("483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8")
)

const k1Size = 32

func hexInt(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("hsm: bad constant")
	}
	return n
}

// k1Point is a point in Jacobian coordinates (X/Z², Y/Z³); Z = 0 is the
// point at infinity.
type k1Point struct{ x, y, z *big.Int }

func k1Infinity() k1Point { return k1Point{big.NewInt(1), big.NewInt(1), new(big.Int)} }

func k1Affine(x, y *big.Int) k1Point {
	return k1Point{new(big.Int).Set(x), new(big.Int).Set(y), big.NewInt(1)}
}

func k1Mod(a *big.Int) *big.Int { return a.Mod(a, k1P) }

func k1Mul(a, b *big.Int) *big.Int { return k1Mod(new(big.Int).Mul(a, b)) }

// double is 2·a (a = 0 curve: dbl-2009-l).
func (a k1Point) double() k1Point {
	if a.z.Sign() == 0 || a.y.Sign() == 0 {
		return k1Infinity()
	}
	xx := k1Mul(a.x, a.x)
	yy := k1Mul(a.y, a.y)
	yyyy := k1Mul(yy, yy)
	t := new(big.Int).Add(a.x, yy)
	s := k1Mul(t, t)
	s.Sub(s, xx).Sub(s, yyyy).Lsh(s, 1)
	k1Mod(s)
	m := k1Mod(new(big.Int).Mul(xx, big.NewInt(3)))
	x := k1Mul(m, m)
	x.Sub(x, new(big.Int).Lsh(s, 1))
	k1Mod(x)
	y := new(big.Int).Sub(s, x)
	y = k1Mul(m, y)
	y.Sub(y, new(big.Int).Lsh(yyyy, 3))
	k1Mod(y)
	z := k1Mul(new(big.Int).Lsh(a.y, 1), a.z)
	return k1Point{x, y, z}
}

// add is a + b (add-2007-bl without the a = b shortcut).
func (a k1Point) add(b k1Point) k1Point {
	if a.z.Sign() == 0 {
		return b
	}
	if b.z.Sign() == 0 {
		return a
	}
	z1z1 := k1Mul(a.z, a.z)
	z2z2 := k1Mul(b.z, b.z)
	u1 := k1Mul(a.x, z2z2)
	u2 := k1Mul(b.x, z1z1)
	s1 := k1Mul(k1Mul(a.y, b.z), z2z2)
	s2 := k1Mul(k1Mul(b.y, a.z), z1z1)
	if u1.Cmp(u2) == 0 {
		if s1.Cmp(s2) == 0 {
			return a.double()
		}
		return k1Infinity()
	}
	h := k1Mod(new(big.Int).Sub(u2, u1))
	i := k1Mul(new(big.Int).Lsh(h, 1), new(big.Int).Lsh(h, 1))
	j := k1Mul(h, i)
	r := k1Mod(new(big.Int).Lsh(new(big.Int).Sub(s2, s1), 1))
	v := k1Mul(u1, i)
	x := k1Mul(r, r)
	x.Sub(x, j).Sub(x, new(big.Int).Lsh(v, 1))
	k1Mod(x)
	y := k1Mul(r, new(big.Int).Sub(v, x))
	y.Sub(y, new(big.Int).Lsh(k1Mul(s1, j), 1))
	k1Mod(y)
	z := new(big.Int).Add(a.z, b.z)
	z = k1Mul(z, z)
	z.Sub(z, z1z1).Sub(z, z2z2)
	z = k1Mul(k1Mod(z), h)
	return k1Point{x, y, z}
}

// scalarMult is k·a by a Montgomery ladder over all 256 bits.
func (a k1Point) scalarMult(k *big.Int) k1Point {
	r0, r1 := k1Infinity(), a
	for i := 8*k1Size - 1; i >= 0; i-- {
		if k.Bit(i) == 0 {
			r1 = r0.add(r1)
			r0 = r0.double()
		} else {
			r0 = r0.add(r1)
			r1 = r1.double()
		}
	}
	return r0
}

// affine returns (x, y), or ok false for the point at infinity.
func (a k1Point) affine() (x, y *big.Int, ok bool) {
	if a.z.Sign() == 0 {
		return nil, nil, false
	}
	zi := new(big.Int).ModInverse(a.z, k1P)
	zi2 := k1Mul(zi, zi)
	return k1Mul(a.x, zi2), k1Mul(a.y, k1Mul(zi2, zi)), true
}

// k1OnCurve parses an uncompressed point and checks y² = x³ + 7.
func k1OnCurve(point []byte) (x, y *big.Int, ok bool) {
	if len(point) != 1+2*k1Size || point[0] != 0x04 {
		return nil, nil, false
	}
	x = new(big.Int).SetBytes(point[1 : 1+k1Size])
	y = new(big.Int).SetBytes(point[1+k1Size:])
	if x.Cmp(k1P) >= 0 || y.Cmp(k1P) >= 0 {
		return nil, nil, false
	}
	rhs := k1Mul(k1Mul(x, x), x)
	rhs = k1Mod(rhs.Add(rhs, big.NewInt(7)))
	return x, y, k1Mul(y, y).Cmp(rhs) == 0
}

// k1Scalar draws a scalar uniformly from [1, n-1] (rejection sampling).
func k1Scalar(rng io.Reader) (*big.Int, error) {
	b := make([]byte, k1Size)
	defer clear(b)
	for {
		if _, err := io.ReadFull(rng, b); err != nil {
			return nil, err
		}
		k := new(big.Int).SetBytes(b)
		if k.Sign() > 0 && k.Cmp(k1N) < 0 {
			return k, nil
		}
	}
}

func k1Marshal(x, y *big.Int) []byte {
	out := make([]byte, 1+2*k1Size)
	out[0] = 0x04
	x.FillBytes(out[1 : 1+k1Size])
	y.FillBytes(out[1+k1Size:])
	return out
}

// k1Generate returns a private scalar (32 bytes) and its uncompressed
// public point.
func k1Generate(rng io.Reader) (d, point []byte, err error) {
	k, err := k1Scalar(rng)
	if err != nil {
		return nil, nil, err
	}
	x, y, _ := k1Affine(k1Gx, k1Gy).scalarMult(k).affine()
	d = make([]byte, k1Size)
	k.FillBytes(d)
	k.SetInt64(0)
	return d, k1Marshal(x, y), nil
}

// k1Hash is the digest as an integer (SEC 1 §4.1.3 step 5: its leftmost
// 256 bits).
func k1Hash(digest []byte) *big.Int {
	if len(digest) > k1Size {
		digest = digest[:k1Size]
	}
	return new(big.Int).SetBytes(digest)
}

// k1Sign signs digest with the scalar d and returns r ‖ s (32 bytes each),
// as CKM_ECDSA does.
func k1Sign(rng io.Reader, d, digest []byte) ([]byte, error) {
	priv := new(big.Int).SetBytes(d)
	defer priv.SetInt64(0)
	if priv.Sign() == 0 || priv.Cmp(k1N) >= 0 {
		return nil, ErrInvalidInput
	}
	e := k1Hash(digest)
	g := k1Affine(k1Gx, k1Gy)
	for {
		k, err := k1Scalar(rng)
		if err != nil {
			return nil, err
		}
		x, _, _ := g.scalarMult(k).affine()
		r := new(big.Int).Mod(x, k1N)
		if r.Sign() == 0 {
			continue
		}
		s := new(big.Int).Mul(r, priv)
		s.Add(s, e)
		s.Mul(s, new(big.Int).ModInverse(k, k1N))
		s.Mod(s, k1N)
		k.SetInt64(0)
		if s.Sign() == 0 {
			continue
		}
		out := make([]byte, 2*k1Size)
		r.FillBytes(out[:k1Size])
		s.FillBytes(out[k1Size:])
		return out, nil
	}
}

// k1Verify reports whether r ‖ s is a signature of digest by point.
func k1Verify(point, digest, rs []byte) (bool, error) {
	qx, qy, ok := k1OnCurve(point)
	if !ok {
		return false, ErrInvalidPublicKey
	}
	if len(rs) != 2*k1Size {
		return false, nil
	}
	r := new(big.Int).SetBytes(rs[:k1Size])
	s := new(big.Int).SetBytes(rs[k1Size:])
	if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(k1N) >= 0 || s.Cmp(k1N) >= 0 {
		return false, nil
	}
	w := new(big.Int).ModInverse(s, k1N)
	u1 := new(big.Int).Mul(k1Hash(digest), w)
	u1.Mod(u1, k1N)
	u2 := new(big.Int).Mul(r, w)
	u2.Mod(u2, k1N)
	p := k1Affine(k1Gx, k1Gy).scalarMult(u1).add(k1Affine(qx, qy).scalarMult(u2))
	x, _, ok := p.affine()
	if !ok {
		return false, nil
	}
	return x.Mod(x, k1N).Cmp(r) == 0, nil
}

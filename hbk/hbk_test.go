package hbk_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/hbk"
	"github.com/trentkms/trent/internal/testvec"
)

var update = flag.Bool("update", false, "rewrite testdata/ vectors")

// softDK and softHBK hold keys in Go memory: tests and vectors only (in an
// HSM both are token session objects).
type softDK struct{ a cipher.AEAD }

func newSoftDK(raw []byte) softDK {
	b, _ := aes.NewCipher(raw)
	a, _ := cipher.NewGCM(b)
	return softDK{a}
}
func (k softDK) Seal(n, pt, aad []byte) ([]byte, error) { return k.a.Seal(nil, n, pt, aad), nil }
func (k softDK) Open(n, ct, aad []byte) ([]byte, error) { return k.a.Open(nil, n, ct, aad) }

type softHBK []byte

func (k softHBK) MAC(data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, k)
	m.Write(data)
	return m.Sum(nil), nil
}

type fixture struct {
	dkRaw, hbkRaw []byte
	dkID, hbkID   [16]byte
	tokIV, iv     [12]byte
	nonce         [32]byte
}

func newFixture(name string) fixture {
	r := testvec.Reader(name)
	var f fixture
	f.dkRaw, f.hbkRaw = testvec.ReadN(r, 32), testvec.ReadN(r, 32)
	copy(f.dkID[:], testvec.ReadN(r, 16))
	copy(f.hbkID[:], testvec.ReadN(r, 16))
	copy(f.tokIV[:], testvec.ReadN(r, 12))
	copy(f.nonce[:], testvec.ReadN(r, 32))
	copy(f.iv[:], testvec.ReadN(r, 12))
	return f
}

const keyID = "1234abcd-12ab-34cd-56ef-1234567890ab"

func TestTokenRoundTrip(t *testing.T) {
	f := newFixture("token")
	tok, err := hbk.SealToken(newSoftDK(f.dkRaw), f.dkID, keyID, f.hbkID, f.tokIV, f.hbkRaw)
	require.NoError(t, err)
	enc, err := tok.Marshal()
	require.NoError(t, err)
	back, err := hbk.ParseToken(enc)
	require.NoError(t, err)
	require.Equal(t, tok, back)
	got, err := back.Open(newSoftDK(f.dkRaw))
	require.NoError(t, err)
	require.Equal(t, f.hbkRaw, got)

	// Another key ID, HBK ID or domain key ID does not open.
	for _, mut := range []func(*hbk.Token){
		func(t *hbk.Token) { t.KeyID = "other" },
		func(t *hbk.Token) { t.HBKID[0] ^= 1 },
		func(t *hbk.Token) { t.DomainKeyID[0] ^= 1 },
		func(t *hbk.Token) { t.Ciphertext[3] ^= 1 },
	} {
		c, _ := hbk.ParseToken(enc)
		mut(c)
		_, err := c.Open(newSoftDK(f.dkRaw))
		require.ErrorIs(t, err, hbk.ErrOpen)
	}
	_, err = back.Open(newSoftDK(make([]byte, 32)))
	require.ErrorIs(t, err, hbk.ErrOpen)

	for i := range enc {
		_, err := hbk.ParseToken(enc[:i])
		require.Error(t, err, "prefix %d", i)
	}
	_, err = hbk.ParseToken(append(enc, 0))
	require.ErrorIs(t, err, hbk.ErrMalformed)
	v2 := bytes.Clone(enc)
	v2[4] = 2
	_, err = hbk.ParseToken(v2)
	require.ErrorIs(t, err, hbk.ErrVersion)
}

func seal(t *testing.T, f fixture, ec map[string]string, pt []byte) ([]byte, []byte) {
	t.Helper()
	e, err := hbk.EncodeContext(ec)
	require.NoError(t, err)
	bl, err := hbk.Seal(softHBK(f.hbkRaw), keyID, f.hbkID, f.nonce, f.iv, e, pt)
	require.NoError(t, err)
	enc, err := bl.Marshal()
	require.NoError(t, err)
	return enc, e
}

func TestBlob(t *testing.T) {
	f := newFixture("blob")
	pt := []byte("attack at dawn")
	enc, ec := seal(t, f, map[string]string{"Department": "10", "purpose": "test"}, pt)
	bl, err := hbk.ParseBlob(enc)
	require.NoError(t, err)
	got, err := bl.Open(softHBK(f.hbkRaw), ec)
	require.NoError(t, err)
	require.Equal(t, pt, got)

	// Another context, another HBK, a changed header or ciphertext byte.
	other, err := hbk.EncodeContext(map[string]string{"Department": "11", "purpose": "test"})
	require.NoError(t, err)
	_, err = bl.Open(softHBK(f.hbkRaw), other)
	require.ErrorIs(t, err, hbk.ErrOpen)
	empty, _ := hbk.EncodeContext(nil)
	_, err = bl.Open(softHBK(f.hbkRaw), empty)
	require.ErrorIs(t, err, hbk.ErrOpen)
	_, err = bl.Open(softHBK(make([]byte, 32)), ec)
	require.ErrorIs(t, err, hbk.ErrOpen)
	for i := 6; i < len(enc); i++ {
		m := bytes.Clone(enc)
		m[i] ^= 0x01
		b2, err := hbk.ParseBlob(m)
		if err != nil {
			continue // a length or the key ID's charset
		}
		_, err = b2.Open(softHBK(f.hbkRaw), ec)
		require.ErrorIs(t, err, hbk.ErrOpen, "byte %d", i)
	}
	for i := range enc {
		_, err := hbk.ParseBlob(enc[:i])
		require.Error(t, err, "prefix %d", i)
	}
	_, err = hbk.ParseBlob(append(enc, 0))
	require.ErrorIs(t, err, hbk.ErrMalformed)

	_, err = hbk.Seal(softHBK(f.hbkRaw), keyID, f.hbkID, f.nonce, f.iv, ec, nil)
	require.Error(t, err)
	_, err = hbk.Seal(softHBK(f.hbkRaw), keyID, f.hbkID, f.nonce, f.iv, ec, make([]byte, hbk.MaxPlaintext+1))
	require.Error(t, err)
	big, _ := seal(t, f, nil, make([]byte, hbk.MaxPlaintext))
	require.LessOrEqual(t, len(big), hbk.MaxBlob)
}

// Contexts whose naive concatenations collide encode differently, and a
// blob sealed under one does not open under the other.
func TestContextCollisions(t *testing.T) {
	pairs := [][2]map[string]string{
		{{"a": "bc"}, {"ab": "c"}},
		{{"a": "b", "c": "d"}, {"a": "bc=d"}},
		{{"a": "b,c:d"}, {"a": "b", "c": "d"}},
		{{"": ""}, nil},
		{{"k": ""}, nil},
	}
	f := newFixture("collide")
	for _, p := range pairs {
		e0, err0 := hbk.EncodeContext(p[0])
		e1, err1 := hbk.EncodeContext(p[1])
		if err0 != nil || err1 != nil {
			require.ErrorIs(t, errors.Join(err0, err1), hbk.ErrContext) // the empty key
			continue
		}
		require.NotEqual(t, e0, e1)
		enc, _ := seal(t, f, p[0], []byte("x"))
		bl, err := hbk.ParseBlob(enc)
		require.NoError(t, err)
		_, err = bl.Open(softHBK(f.hbkRaw), e1)
		require.ErrorIs(t, err, hbk.ErrOpen)
		back, err := hbk.ParseContext(e0)
		require.NoError(t, err)
		require.Equal(t, len(p[0]), len(back))
	}
	// Order of insertion does not matter; the encoding is sorted.
	e0, _ := hbk.EncodeContext(map[string]string{"b": "1", "a": "2"})
	require.Equal(t, []byte{0, 2, 0, 1, 'a', 0, 1, '2', 0, 1, 'b', 0, 1, '1'}, e0)
	// Unsorted, repeated or trailing input does not parse.
	for _, bad := range [][]byte{
		{0, 2, 0, 1, 'b', 0, 0, 0, 1, 'a', 0, 0},
		{0, 2, 0, 1, 'a', 0, 0, 0, 1, 'a', 0, 0},
		{0, 0, 0},
		{0, 1, 0, 0, 0, 0},
		{0, 1, 0, 1, 0xff, 0, 0},
	} {
		_, err := hbk.ParseContext(bad)
		require.ErrorIs(t, err, hbk.ErrContext, "%x", bad)
	}
	_, err := hbk.EncodeContext(map[string]string{"k": string([]byte{0xff})})
	require.ErrorIs(t, err, hbk.ErrContext)
	_, err = hbk.EncodeContext(map[string]string{"k": string(make([]byte, hbk.MaxContext))})
	require.ErrorIs(t, err, hbk.ErrContext)
}

// TestVectors regenerates testdata/hierarchy.txt and compares it byte for
// byte (go test -run TestVectors -update rewrites it).
func TestVectors(t *testing.T) {
	f := newFixture("hierarchy")
	tok, err := hbk.SealToken(newSoftDK(f.dkRaw), f.dkID, keyID, f.hbkID, f.tokIV, f.hbkRaw)
	require.NoError(t, err)
	tokEnc, err := tok.Marshal()
	require.NoError(t, err)
	ecMap := map[string]string{"Department": "10", "purpose": "vector"}
	pt := []byte("Trent hierarchy vector plaintext")
	blob, ec := seal(t, f, ecMap, pt)
	v := &testvec.Vector{Comment: []string{
		"An HBK token and a ciphertext blob under it (docs/protocol.md, Customer key hierarchy).",
		"k is the one-time key derived from the HBK for the blob.",
	}}
	v.Hex("dk", f.dkRaw)
	v.Hex("dk_id", f.dkID[:])
	v.Str("key_id", keyID)
	v.Hex("hbk_id", f.hbkID[:])
	v.Hex("hbk", f.hbkRaw)
	v.Hex("token_iv", f.tokIV[:])
	v.Hex("token", tokEnc)
	v.Hex("nonce", f.nonce[:])
	v.Hex("iv", f.iv[:])
	v.Str("context_department", ecMap["Department"])
	v.Str("context_purpose", ecMap["purpose"])
	v.Hex("context_encoding", ec)
	k, _ := softHBK(f.hbkRaw).MAC(hbk.KDFInput(keyID, f.hbkID, f.nonce))
	v.Hex("k", k)
	v.Hex("plaintext", pt)
	v.Hex("blob", blob)
	testvec.Check(t, "testdata/hierarchy.txt", v, *update)
}

func FuzzParseToken(f *testing.F) {
	fx := newFixture("fuzz")
	tok, _ := hbk.SealToken(newSoftDK(fx.dkRaw), fx.dkID, keyID, fx.hbkID, fx.tokIV, fx.hbkRaw)
	enc, _ := tok.Marshal()
	f.Add(enc)
	f.Add([]byte("TRNT\x010"))
	f.Fuzz(func(t *testing.T, in []byte) {
		tok, err := hbk.ParseToken(in)
		if err != nil {
			return
		}
		out, err := tok.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("parse→marshal changed the token: %v", err)
		}
	})
}

func FuzzParseBlob(f *testing.F) {
	fx := newFixture("fuzz")
	e, _ := hbk.EncodeContext(map[string]string{"a": "b"})
	bl, _ := hbk.Seal(softHBK(fx.hbkRaw), keyID, fx.hbkID, fx.nonce, fx.iv, e, []byte("pt"))
	enc, _ := bl.Marshal()
	f.Add(enc)
	f.Add([]byte("TRNT\x011"))
	f.Fuzz(func(t *testing.T, in []byte) {
		bl, err := hbk.ParseBlob(in)
		if err != nil {
			return
		}
		out, err := bl.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("parse→marshal changed the blob: %v", err)
		}
	})
}

func FuzzParseContext(f *testing.F) {
	e, _ := hbk.EncodeContext(map[string]string{"a": "b", "c": ""})
	f.Add(e)
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		ec, err := hbk.ParseContext(in)
		if err != nil {
			return
		}
		out, err := hbk.EncodeContext(ec)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("parse→encode changed the context: %v", err)
		}
	})
}

func FuzzParseKeyToken(f *testing.F) {
	fx := newFixture("fuzz")
	kt, _ := hbk.SealKeyToken(newSoftDK(fx.dkRaw), fx.dkID, keyID, fx.hbkID, 4, fx.tokIV, []byte("key material"))
	enc, _ := kt.Marshal()
	f.Add(enc)
	f.Add([]byte("TRNT\x012"))
	f.Fuzz(func(t *testing.T, in []byte) {
		kt, err := hbk.ParseKeyToken(in)
		if err != nil {
			return
		}
		out, err := kt.Marshal()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("parse→marshal changed the key token: %v", err)
		}
		if _, _, err := hbk.TokenKeyID(in); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyToken(t *testing.T) {
	fx := newFixture("key token")
	kt, err := hbk.SealKeyToken(newSoftDK(fx.dkRaw), fx.dkID, keyID, fx.hbkID, 4, fx.tokIV, []byte("pkcs8 bytes"))
	require.NoError(t, err)
	enc, err := kt.Marshal()
	require.NoError(t, err)
	require.Equal(t, hbk.TypeKeyToken, hbk.TokenType(enc))
	back, err := hbk.ParseKeyToken(enc)
	require.NoError(t, err)
	m, err := back.Open(newSoftDK(fx.dkRaw))
	require.NoError(t, err)
	require.Equal(t, "pkcs8 bytes", string(m))
	back.Spec = 5
	_, err = back.Open(newSoftDK(fx.dkRaw))
	require.ErrorIs(t, err, hbk.ErrOpen, "the spec is bound")
	kid, dk, err := hbk.TokenKeyID(enc)
	require.NoError(t, err)
	require.Equal(t, keyID, kid)
	require.Equal(t, fx.dkID, dk)
	for i := range enc {
		_, err := hbk.ParseKeyToken(enc[:i])
		require.Error(t, err)
	}
	_, _, err = hbk.TokenKeyID([]byte("nonsense"))
	require.ErrorIs(t, err, hbk.ErrMalformed)
}

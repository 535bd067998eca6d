package vectors

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/trentkms/trent/hbk"
)

// The customer key hierarchy (docs/protocol.md, Customer key hierarchy):
// HBK tokens, encryption contexts, ciphertext blobs and key tokens.

const (
	labHBKToken = "trent/v1 hbk token"
	labHBKKDF   = "trent/v1 hbk kdf"
	labBlob     = "trent/v1 ciphertext"
	labKeyToken = "trent/v1 key token"
	vKeyID      = "1234abcd-12ab-34cd-56ef-1234567890ab"
)

var hbkErr = map[string]error{
	"truncated": hbk.ErrMalformed, "trailing-bytes": hbk.ErrMalformed, "bad-magic": hbk.ErrMalformed,
	"bad-type": hbk.ErrMalformed, "bad-identifier": hbk.ErrMalformed, "length-over-maximum": hbk.ErrMalformed,
	"length-under-minimum": hbk.ErrMalformed, "bad-version": hbk.ErrVersion,
	"bad-tag": hbk.ErrOpen, "wrong-aad": hbk.ErrOpen, "wrong-key": hbk.ErrOpen, "wrong-context": hbk.ErrOpen,
}

// hier is the fixed hierarchy: the names of hbk/testdata/hierarchy.txt.
type hier struct {
	dkID, dk, hbkID, hbk, tokIV, nonce, iv []byte
}

// newHier reads SHAKE256("trent vector rng hierarchy") as hbk/hbk_test.go
// does: dk, HBK, DK ID, HBK ID, token IV, N, IV.
func newHier() *hier {
	r := rng("hierarchy", 32+32+16+16+12+32+12)
	take := func(n int) []byte { b := r[:n]; r = r[n:]; return b }
	x := &hier{}
	x.dk, x.hbk, x.dkID, x.hbkID = take(32), take(32), take(16), take(16)
	x.tokIV, x.nonce, x.iv = take(12), take(32), take(12)
	return x
}

func hbkTokenFields(dkID []byte, keyID string, hbkID []byte) []byte {
	return cat(hdr(0x30), dkID, v8([]byte(keyID)), hbkID)
}

func hbkToken(dk, dkID []byte, keyID string, hbkID, iv, key []byte) []byte {
	fields := hbkTokenFields(dkID, keyID, hbkID)
	return cat(fields, iv, seal(dk, iv, key, cat(lab(labHBKToken), fields)))
}

func genHBKToken() *vfile {
	x := newHier()
	f := &vfile{name: "hbk-token.json", object: "HBK token", spec: "docs/protocol.md#hbk-token-type-0x30", prefix: "hbk-token",
		notes: []string{"A token opens with the domain key dk; it has no length prefix on its 48-byte ciphertext, so nothing may follow it."},
		fields: []fieldDoc{
			{"dk", tHex, "the domain key"}, {"dk_id", tHex, "decoded: its ID"}, {"key_id", tStr, "decoded: the KMS key ID"},
			{"hbk_id", tHex, "decoded: the HBK ID"}, {"iv", tHex, "decoded: the IV"}, {"hbk", tHex, "the HBK (32 bytes)"},
			{"aad", tHex, "\"trent/v1 hbk token\" || 00 || every byte before the IV"},
			{"token", tHex, "the encoded token (input)"},
		},
	}
	good := func(comment, keyID string) {
		f.add(comment, "").h("dk", x.dk).h("dk_id", x.dkID).s("key_id", keyID).h("hbk_id", x.hbkID).h("iv", x.tokIV).h("hbk", x.hbk).
			h("aad", cat(lab(labHBKToken), hbkTokenFields(x.dkID, keyID, x.hbkID))).h("token", hbkToken(x.dk, x.dkID, keyID, x.hbkID, x.tokIV, x.hbk))
	}
	good("the token of hbk/testdata/hierarchy.txt", vKeyID)
	good("a 64-byte key ID (the maximum)", longID("k", 64))
	good("a 1-byte key ID", "k")
	base := hbkToken(x.dk, x.dkID, vKeyID, x.hbkID, x.tokIV, x.hbk)
	std := func(t *vtest) *vtest { return t.h("dk", x.dk) }
	headerCases(f, "the token", base, 0x31, std, "token")
	bad := func(comment, reason string, tok []byte) { std(f.add(comment, reason)).h("token", tok) }
	bad("a 65-byte key ID", "length-over-maximum", hbkToken(x.dk, x.dkID, longID("k", 65), x.hbkID, x.tokIV, x.hbk))
	bad("an empty key ID", "length-under-minimum", hbkToken(x.dk, x.dkID, "", x.hbkID, x.tokIV, x.hbk))
	bad("a key ID with a space", "bad-identifier", hbkToken(x.dk, x.dkID, "key 1", x.hbkID, x.tokIV, x.hbk))
	bad("ciphertext's last byte (tag) changed", "bad-tag", flip(base, -1))
	bad("the HBK ID changed (the AAD binds it)", "wrong-aad", flip(base, 6+16+1+len(vKeyID)))
	bad("the key ID changed to another of the same length (the AAD binds it)", "wrong-aad", setByte(base, 6+16+1, '2'))
	bad("sealed under another domain key", "wrong-key", hbkToken(rng("other dk", 32), x.dkID, vKeyID, x.hbkID, x.tokIV, x.hbk))
	return f
}

func checkHBKToken(t *testing.T, v *vec) {
	raw := v.hex("token")
	tok, err := hbk.ParseToken(raw)
	if err == nil {
		var key []byte
		key, err = tok.Open(memDK{v.hex("dk")})
		if err == nil && v.Result == valid {
			eq(t, v.ID, "HBK", key, v.hex("hbk"))
		}
	}
	expectErr(t, v, err, hbkErr)
	if v.Result == invalid {
		return
	}
	again, _ := tok.Marshal()
	eq(t, v.ID, "re-encoding", again, raw)
	eq(t, v.ID, "DK ID", tok.DomainKeyID[:], v.hex("dk_id"))
	eq(t, v.ID, "HBK ID", tok.HBKID[:], v.hex("hbk_id"))
	eq(t, v.ID, "IV", tok.IV[:], v.hex("iv"))
	if tok.KeyID != v.str("key_id") {
		t.Fatalf("%s: key ID", v.ID)
	}
	eq(t, v.ID, "AAD", cat(lab(labHBKToken), raw[:len(raw)-60]), v.hex("aad"))
}

// encodeContext is the spec's encoding of pairs sorted by key bytes.
func encodeContext(p [][2]string) []byte {
	s := slices.Clone(p)
	slices.SortFunc(s, func(a, b [2]string) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	out := u16(uint16(len(s)))
	for _, kv := range s {
		out = cat(out, v16([]byte(kv[0])), v16([]byte(kv[1])))
	}
	return out
}

func genContext() *vfile {
	f := &vfile{name: "encryption-context.json", object: "Encryption context encoding", spec: "docs/protocol.md#encryption-context", prefix: "context",
		notes: []string{
			"pairs are the context's key/value pairs as given; a valid encoding decodes to exactly them (order aside) and encoding them gives exactly the encoding. Keys sort by their UTF-8 bytes.",
		},
		fields: []fieldDoc{
			{"pairs", tPairs, "the context"},
			{"encoding", tHex, "u16 n || n x (v16 key || v16 value), sorted by key bytes"},
		},
	}
	good := func(comment string, p [][2]string) {
		f.add(comment, "").pairs("pairs", p).h("encoding", encodeContext(p))
	}
	good("empty context", [][2]string{})
	good("the context of hbk/testdata/hierarchy.txt", [][2]string{{"Department", "10"}, {"purpose", "vector"}})
	good("{\"a\": \"bc\"}", [][2]string{{"a", "bc"}})
	good("{\"ab\": \"c\"}: its concatenation of keys and values equals the previous one's; its encoding does not", [][2]string{{"ab", "c"}})
	good("given out of order: sorted by key bytes (uppercase before lowercase, ASCII before UTF-8)", [][2]string{{"\u00e9t\u00e9", "x"}, {"b", ""}, {"Z", "y"}})
	good("an empty value", [][2]string{{"k", ""}})
	good("one pair, a 16384-byte encoding (the maximum)", [][2]string{{"k", string(fill(16377, 'v'))}})
	bad := func(comment, reason string, enc []byte) { f.add(comment, reason).h("encoding", enc) }
	bad("keys not sorted", "not-sorted", cat(u16(2), v16([]byte("b")), v16(nil), v16([]byte("a")), v16(nil)))
	bad("the same key twice", "duplicate", cat(u16(2), v16([]byte("a")), v16(nil), v16([]byte("a")), v16(nil)))
	bad("an empty key", "length-under-minimum", cat(u16(1), v16(nil), v16([]byte("v"))))
	bad("a value that is not UTF-8 (ff)", "bad-character", cat(u16(1), v16([]byte("k")), v16([]byte{0xff})))
	bad("a key that is not UTF-8 (c3 alone)", "bad-character", cat(u16(1), v16([]byte{0xc3}), v16(nil)))
	bad("count 1, no pair", "truncated", u16(1))
	bad("one byte", "truncated", []byte{0})
	bad("a pair followed by a byte", "trailing-bytes", cat(u16(1), v16([]byte("k")), v16(nil), []byte{0}))
	bad("a 16385-byte encoding (maximum 16384)", "length-over-maximum", encodeContext([][2]string{{"k", string(fill(16378, 'v'))}}))
	return f
}

func checkContext(t *testing.T, v *vec) {
	raw := v.hex("encoding")
	m, err := hbk.ParseContext(raw)
	if v.Result == invalid {
		if err == nil || !errors.Is(err, hbk.ErrContext) {
			t.Fatalf("%s: %v, want ErrContext", v.ID, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, p := range v.pairs("pairs") {
		want[p[0]] = p[1]
	}
	if !maps.Equal(m, want) {
		t.Fatalf("%s: decoded %v, want %v", v.ID, sortedKeys(m), sortedKeys(want))
	}
	enc, err := hbk.EncodeContext(want)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "encoding", enc, raw)
}

type blobF struct {
	keyID                string
	hbkID, nonce, iv, ct []byte
}

func (b *blobF) header() []byte {
	return cat(hdr(0x31), v8([]byte(b.keyID)), b.hbkID, b.nonce, b.iv)
}
func (b *blobF) enc() []byte { return cat(b.header(), v16(b.ct)) }

func kdfInput(keyID string, hbkID, nonce []byte) []byte {
	return cat([]byte{0, 0, 0, 1}, lab(labHBKKDF), v8([]byte(keyID)), hbkID, nonce, []byte{0, 0, 1, 0})
}

func hmac256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func sealBlob(hbkKey []byte, keyID string, hbkID, nonce, iv, ec, pt []byte) *blobF {
	b := &blobF{keyID: keyID, hbkID: hbkID, nonce: nonce, iv: iv}
	k := hmac256(hbkKey, kdfInput(keyID, hbkID, nonce))
	b.ct = seal(k, iv, pt, cat(lab(labBlob), b.header(), ec))
	return b
}

func genBlob() *vfile {
	x := newHier()
	f := &vfile{name: "blob.json", object: "Ciphertext blob", spec: "docs/protocol.md#ciphertext-blob-type-0x31", prefix: "blob",
		notes: []string{
			"To open: parse the blob, derive K = HMAC-SHA256(hbk, kdf_input) (SP 800-108 counter mode, one block), build the AAD from the blob's bytes before the ciphertext's length and the encoded context (encryption-context.json), and open with AES-256-GCM under K with the blob's IV.",
			"The context is bound as its length-prefixed encoding: blob-006 and blob-007 are the collision a plain concatenation of keys and values would allow ({\"a\":\"bc\"} and {\"ab\":\"c\"}).",
		},
		fields: []fieldDoc{
			{"hbk", tHex, "the HBK"}, {"key_id", tStr, "decoded: the key ID"}, {"hbk_id", tHex, "decoded: the HBK ID"},
			{"nonce", tHex, "decoded: N"}, {"iv", tHex, "decoded: the IV"},
			{"context", tPairs, "the encryption context the opener gives"}, {"context_encoding", tHex, "its encoding"},
			{"kdf_input", tHex, "00000001 || \"trent/v1 hbk kdf\" || 00 || v8(key_id) || hbk_id || N || 00000100"},
			{"k", tHex, "K"}, {"aad", tHex, "\"trent/v1 ciphertext\" || 00 || blob bytes before the ciphertext's length || context_encoding"},
			{"plaintext", tHex, "the plaintext"}, {"blob", tHex, "the encoded blob (input)"},
		},
	}
	hierCtx := [][2]string{{"Department", "10"}, {"purpose", "vector"}}
	good := func(comment, keyID string, ctx [][2]string, pt []byte) *blobF {
		ec := encodeContext(ctx)
		b := sealBlob(x.hbk, keyID, x.hbkID, x.nonce, x.iv, ec, pt)
		f.add(comment, "").h("hbk", x.hbk).s("key_id", keyID).h("hbk_id", x.hbkID).h("nonce", x.nonce).h("iv", x.iv).
			pairs("context", ctx).h("context_encoding", ec).h("kdf_input", kdfInput(keyID, x.hbkID, x.nonce)).
			h("k", hmac256(x.hbk, kdfInput(keyID, x.hbkID, x.nonce))).h("aad", cat(lab(labBlob), b.header(), ec)).
			h("plaintext", pt).h("blob", b.enc())
		return b
	}
	base := good("the blob of hbk/testdata/hierarchy.txt", vKeyID, hierCtx, []byte("Trent hierarchy vector plaintext"))
	good("empty context, 1-byte plaintext (the minimum)", vKeyID, [][2]string{}, []byte{0x42})
	good("4096-byte plaintext (the maximum)", vKeyID, hierCtx, fill(4096, 0x5a))
	good("64-byte key ID", longID("k", 64), nil, []byte("x"))
	good("{\"a\":\"bc\"}", vKeyID, [][2]string{{"a", "bc"}}, []byte("collision"))
	abc := sealBlob(x.hbk, vKeyID, x.hbkID, x.nonce, x.iv, encodeContext([][2]string{{"a", "bc"}}), []byte("collision"))
	hierEC := encodeContext(hierCtx)
	std := func(t *vtest) *vtest {
		return t.h("hbk", x.hbk).pairs("context", hierCtx).h("context_encoding", hierEC)
	}
	headerCases(f, "the blob", base.enc(), 0x30, std, "blob")
	bad := func(comment, reason string, b []byte, ctx [][2]string) {
		f.add(comment, reason).h("hbk", x.hbk).pairs("context", ctx).h("context_encoding", encodeContext(ctx)).h("blob", b)
	}
	bad("the {\"a\":\"bc\"} blob opened with {\"ab\":\"c\"}: equal under naive concatenation", "wrong-context", abc.enc(), [][2]string{{"ab", "c"}})
	bad("opened with an empty context", "wrong-context", base.enc(), nil)
	bad("opened with a value changed (\"11\" for \"10\")", "wrong-context", base.enc(), [][2]string{{"Department", "11"}, {"purpose", "vector"}})
	bad("ciphertext's last byte (tag) changed", "bad-tag", flip(base.enc(), -1), hierCtx)
	bad("N changed (K differs)", "wrong-aad", func() []byte { c := *base; c.nonce = flip(c.nonce, 0); return c.enc() }(), hierCtx)
	bad("IV changed", "wrong-aad", func() []byte { c := *base; c.iv = flip(c.iv, 0); return c.enc() }(), hierCtx)
	bad("HBK ID changed", "wrong-aad", func() []byte { c := *base; c.hbkID = flip(c.hbkID, 0); return c.enc() }(), hierCtx)
	bad("sealed under another HBK", "wrong-key", sealBlob(rng("other hbk", 32), vKeyID, x.hbkID, x.nonce, x.iv, hierEC, []byte("Trent hierarchy vector plaintext")).enc(), hierCtx)
	bad("ciphertext of 15 bytes", "length-under-minimum", func() []byte { c := *base; c.ct = c.ct[:15]; return c.enc() }(), hierCtx)
	bad("ciphertext of 4113 bytes (maximum 4112)", "length-over-maximum", func() []byte { c := *base; c.ct = fill(4113, 1); return c.enc() }(), hierCtx)
	bad("6145 bytes in all (maximum 6144): a blob followed by zeros", "length-over-maximum", cat(base.enc(), zeros(6145-len(base.enc()))), hierCtx)
	bad("a 65-byte key ID", "length-over-maximum", sealBlob(x.hbk, longID("k", 65), x.hbkID, x.nonce, x.iv, hierEC, []byte("x")).enc(), hierCtx)
	bad("an empty key ID", "length-under-minimum", sealBlob(x.hbk, "", x.hbkID, x.nonce, x.iv, hierEC, []byte("x")).enc(), hierCtx)
	bad("an empty plaintext: a 16-byte ciphertext (minimum 17)", "length-under-minimum", sealBlob(x.hbk, vKeyID, x.hbkID, x.nonce, x.iv, hierEC, nil).enc(), hierCtx)
	return f
}

// Known differences between docs/protocol.md and Trent, by vector ID: the
// check asserts that Trent still behaves as described, so that a fix shows
// here (and the entry is removed).
var divergences = map[string]string{}

type memHBK struct{ key []byte }

func (m memHBK) MAC(data []byte) ([]byte, error) { return hmac256(m.key, data), nil }

func checkBlob(t *testing.T, v *vec) {
	raw := v.hex("blob")
	ec := v.hex("context_encoding")
	eq(t, v.ID, "context encoding", encodeContext(v.pairs("context")), ec)
	bl, err := hbk.ParseBlob(raw)
	var pt []byte
	if err == nil {
		pt, err = bl.Open(memHBK{v.hex("hbk")}, ec)
	}
	if why, ok := divergences[v.ID]; ok {
		if err != nil {
			t.Fatalf("%s: Trent now refuses it (%v): remove the divergence %q", v.ID, err, why)
		}
		t.Logf("%s: known divergence: %s", v.ID, why)
		return
	}
	expectErr(t, v, err, hbkErr)
	if v.Result == invalid {
		return
	}
	eq(t, v.ID, "plaintext", pt, v.hex("plaintext"))
	again, _ := bl.Marshal()
	eq(t, v.ID, "re-encoding", again, raw)
	if bl.KeyID != v.str("key_id") {
		t.Fatalf("%s: key ID", v.ID)
	}
	eq(t, v.ID, "HBK ID", bl.HBKID[:], v.hex("hbk_id"))
	eq(t, v.ID, "N", bl.Nonce[:], v.hex("nonce"))
	eq(t, v.ID, "IV", bl.IV[:], v.hex("iv"))
	eq(t, v.ID, "KDF input", hbk.KDFInput(bl.KeyID, bl.HBKID, bl.Nonce), v.hex("kdf_input"))
	eq(t, v.ID, "K", hmac256(v.hex("hbk"), v.hex("kdf_input")), v.hex("k"))
	eq(t, v.ID, "AAD", cat(lab(labBlob), raw[:len(raw)-2-len(bl.Ciphertext)], ec), v.hex("aad"))
	// Trent seals the same blob from the same inputs.
	made, err := hbk.Seal(memHBK{v.hex("hbk")}, bl.KeyID, bl.HBKID, bl.Nonce, bl.IV, ec, pt)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := made.Marshal()
	eq(t, v.ID, "Trent's blob", b, raw)
}

func keyTokenFields(dkID []byte, keyID string, versionID []byte, spec byte) []byte {
	return cat(hdr(0x32), dkID, v8([]byte(keyID)), versionID, []byte{spec})
}

func keyToken(dk, dkID []byte, keyID string, versionID []byte, spec byte, iv, material []byte) []byte {
	fields := keyTokenFields(dkID, keyID, versionID, spec)
	return cat(fields, iv, v16(seal(dk, iv, material, cat(lab(labKeyToken), fields))))
}

func genKeyToken() *vfile {
	x := newHier()
	vid, iv := rng("key token version id", 16), rng("key token iv", 12)
	f := &vfile{name: "key-token.json", object: "Key token", spec: "docs/protocol.md#customer-asymmetric-and-hmac-keys", prefix: "key-token",
		notes: []string{"A key token opens with the domain key dk; material is PKCS#8 DER (RSA, ECC), the raw key (HMAC), a 32-byte seed (ML-DSA) or a 32-byte scalar (secp256k1)."},
		fields: []fieldDoc{
			{"dk", tHex, "the domain key"}, {"dk_id", tHex, "decoded: its ID"}, {"key_id", tStr, "decoded: the key ID"},
			{"version_id", tHex, "decoded: the version ID"}, {"spec", tInt, "decoded: the spec code"}, {"iv", tHex, "decoded: the IV"},
			{"material", tHex, "the key material"},
			{"aad", tHex, "\"trent/v1 key token\" || 00 || every byte before the IV"},
			{"token", tHex, "the encoded key token (input)"},
		},
	}
	p256, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar("key token p256")[:32])
	if err != nil {
		panic(err)
	}
	pk8, err := x509.MarshalPKCS8PrivateKey(p256)
	if err != nil {
		panic(err)
	}
	good := func(comment string, spec byte, material []byte) {
		f.add(comment, "").h("dk", x.dk).h("dk_id", x.dkID).s("key_id", vKeyID).h("version_id", vid).n("spec", uint64(spec)).h("iv", iv).
			h("material", material).h("aad", cat(lab(labKeyToken), keyTokenFields(x.dkID, vKeyID, vid, spec))).
			h("token", keyToken(x.dk, x.dkID, vKeyID, vid, spec, iv, material))
	}
	hmacKey := rng("key token hmac", 32)
	good("HMAC_256 (spec 9): a 32-byte key", 9, hmacKey)
	good("ECC_NIST_P256 (spec 4): a PKCS#8 private key", 4, pk8)
	good("ML_DSA_65 (spec 13): a 32-byte seed", 13, rng("key token ml-dsa seed", 32))
	good("material of 8192 bytes (the maximum)", 8, fill(8192, 0x11))
	base := keyToken(x.dk, x.dkID, vKeyID, vid, 9, iv, hmacKey)
	std := func(t *vtest) *vtest { return t.h("dk", x.dk) }
	headerCases(f, "the key token", base, 0x30, std, "token")
	bad := func(comment, reason string, tok []byte) { std(f.add(comment, reason)).h("token", tok) }
	bad("empty material: a 16-byte ciphertext", "length-under-minimum", keyToken(x.dk, x.dkID, vKeyID, vid, 9, iv, nil))
	bad("material of 8193 bytes (maximum 8192)", "length-over-maximum", keyToken(x.dk, x.dkID, vKeyID, vid, 8, iv, fill(8193, 0x11)))
	bad("a 65-byte key ID", "length-over-maximum", keyToken(x.dk, x.dkID, longID("k", 65), vid, 9, iv, hmacKey))
	bad("ciphertext's last byte (tag) changed", "bad-tag", flip(base, -1))
	bad("spec changed from 9 to 10 (the AAD binds it)", "wrong-aad", setByte(base, 6+16+1+len(vKeyID)+16, 10))
	bad("version ID changed", "wrong-aad", flip(base, 6+16+1+len(vKeyID)))
	bad("sealed under another domain key", "wrong-key", keyToken(rng("other dk", 32), x.dkID, vKeyID, vid, 9, iv, hmacKey))
	return f
}

func checkKeyToken(t *testing.T, v *vec) {
	raw := v.hex("token")
	tok, err := hbk.ParseKeyToken(raw)
	var m []byte
	if err == nil {
		m, err = tok.Open(memDK{v.hex("dk")})
	}
	expectErr(t, v, err, hbkErr)
	if v.Result == invalid {
		return
	}
	eq(t, v.ID, "material", m, v.hex("material"))
	again, _ := tok.Marshal()
	eq(t, v.ID, "re-encoding", again, raw)
	if tok.KeyID != v.str("key_id") || uint64(tok.Spec) != v.num("spec") {
		t.Fatalf("%s: decoded fields differ", v.ID)
	}
	eq(t, v.ID, "DK ID", tok.DomainKeyID[:], v.hex("dk_id"))
	eq(t, v.ID, "version ID", tok.VersionID[:], v.hex("version_id"))
	eq(t, v.ID, "IV", tok.IV[:], v.hex("iv"))
	made, err := hbk.SealKeyToken(memDK{v.hex("dk")}, tok.DomainKeyID, tok.KeyID, tok.VersionID, tok.Spec, tok.IV, m)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := made.Marshal()
	eq(t, v.ID, "Trent's token", b, raw)
	eq(t, v.ID, "AAD", cat(lab(labKeyToken), raw[:len(raw)-12-2-len(tok.Ciphertext)]), v.hex("aad"))
}

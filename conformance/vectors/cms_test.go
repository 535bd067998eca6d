package vectors

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"os"
	"testing"

	"github.com/trentkms/trent/internal/testvec"
	"github.com/trentkms/trent/nitro"
)

// CiphertextForRecipient (docs/protocol.md, command 21; package nitro): CMS
// EnvelopedData in KMS's BER layout.

// rsaKey is a deterministic RSA-2048 key: each prime is the first prime
// (with gcd(p-1, 65537) = 1) at or above SHAKE256("trent vector rng " ‖
// name) as a 1024-bit integer with its top two bits and its low bit set.
func rsaKey(name string) *rsa.PrivateKey {
	prime := func(label string) *big.Int {
		b := rng(label, 128)
		b[0] |= 0xc0
		b[127] |= 1
		p := new(big.Int).SetBytes(b)
		e, one := big.NewInt(65537), big.NewInt(1)
		for {
			if p.ProbablyPrime(32) && new(big.Int).GCD(nil, nil, new(big.Int).Sub(p, one), e).Cmp(one) == 0 {
				return p
			}
			p.Add(p, big.NewInt(2))
		}
	}
	p, q := prime(name+" p"), prime(name+" q")
	one := big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537},
		D: new(big.Int).ModInverse(big.NewInt(65537), phi), Primes: []*big.Int{p, q}}
	k.Precompute()
	if err := k.Validate(); err != nil {
		panic(err)
	}
	return k
}

var provenance = "real KMS CiphertextForRecipient from aws/aws-nitro-enclaves-sdk-c tests/kmstool-enclaves/cms_test.c (via ../shared/fixtures/nitro/cms/, copied to nitro/testdata/); no private key was published, so it is parse-only"

func genCMS() *vfile {
	f := &vfile{name: "cms.json", object: "CiphertextForRecipient (CMS EnvelopedData)", spec: "docs/protocol.md#customer-asymmetric-and-hmac-keys", prefix: "cms",
		notes: []string{
			"The layout is KMS's (nitro/cms.go): ContentInfo, its [0], EnvelopedData and EncryptedContentInfo with indefinite lengths; EnvelopedData version 2; one KeyTransRecipientInfo version 2 with a 32-byte subjectKeyIdentifier (SHA-256 of the recipient's SubjectPublicKeyInfo); RSAES-OAEP with SHA-256 and MGF1-SHA-256 (NULL parameters); id-data content under AES-256-CBC with PKCS#7 padding, in a constructed [0] of OCTET STRINGs (or a primitive [0]).",
			"The recipient RSA-2048 key is deterministic (see the generator, cms_test.go); rng is the sealer's random stream: content key (32) || IV (16) || OAEP seed (32). Tests with a provenance field are real KMS responses, parse-only.",
			"Invalid tests with a private key are refused on opening (bad-wrapped-key, bad-padding); the others on parsing.",
		},
		fields: []fieldDoc{
			{"recipient_private_key", tHex, "the recipient's RSA private key, PKCS#8 DER"},
			{"recipient_spki", tHex, "its public key, SubjectPublicKeyInfo DER"},
			{"rng", tHex, "the sealer's random bytes"},
			{"plaintext", tHex, "the plaintext"},
			{"subject_key_id", tHex, "decoded: the subjectKeyIdentifier"},
			{"wrapped_key", tHex, "decoded: the RSA-OAEP encryptedKey"},
			{"content_key", tHex, "the AES-256 content key"},
			{"iv", tHex, "decoded: the CBC IV"},
			{"encrypted_content", tHex, "decoded: the encrypted content"},
			{"provenance", tStr, "where a real sample comes from"},
			{"ciphertext_for_recipient", tHex, "the BER message (input)"},
		},
	}
	k := rsaKey("cms recipient")
	pk8, _ := x509.MarshalPKCS8PrivateKey(k)
	pub := spki(&k.PublicKey)
	ski := sha256.Sum256(pub)
	make1 := func(name string, pt []byte) ([]byte, []byte) {
		out, err := nitro.SealForRecipient(testvec.Reader(name), &k.PublicKey, ski[:], pt)
		if err != nil {
			panic(err)
		}
		return out, rng(name, 80)
	}
	good := func(comment, name string, pt []byte) []byte {
		msg, r := make1(name, pt)
		e, err := nitro.ParseEnvelope(msg)
		if err != nil {
			panic(err)
		}
		f.add(comment, "").h("recipient_private_key", pk8).h("recipient_spki", pub).h("rng", r).h("plaintext", pt).
			h("subject_key_id", ski[:]).h("wrapped_key", e.WrappedKey).h("content_key", r[:32]).h("iv", e.IV).
			h("encrypted_content", e.Ciphertext).h("ciphertext_for_recipient", msg)
		return msg
	}
	base := good("a 32-byte data key, as GenerateDataKey with Recipient returns", "cms 1", []byte("32-byte data key for the enclave"))
	good("a 1-byte plaintext", "cms 2", []byte{0x42})
	good("a 16-byte plaintext: a whole block of padding follows", "cms 3", fill(16, 0x10))
	for _, p := range []string{"kms_ciphertext_for_recipient_sdkc_1.ber", "kms_ciphertext_for_recipient_sdkc_2_primitive_content.ber"} {
		raw, err := os.ReadFile("../../nitro/testdata/" + p)
		if err != nil {
			panic(err)
		}
		e, err := nitro.ParseEnvelope(raw)
		if err != nil {
			panic(err)
		}
		f.add("a real KMS response ("+p+")", "").h("subject_key_id", e.SubjectKeyID).h("wrapped_key", e.WrappedKey).
			h("iv", e.IV).h("encrypted_content", e.Ciphertext).s("provenance", provenance).h("ciphertext_for_recipient", raw)
	}
	withKey := func(t *vtest) *vtest { return t.h("recipient_private_key", pk8) }
	bad := func(comment, reason string, msg []byte) {
		withKey(f.add(comment, reason)).h("ciphertext_for_recipient", msg)
	}
	bad("cut by one byte", "truncated", base[:len(base)-1])
	bad("cut to 2 bytes", "truncated", base[:2])
	bad("followed by a zero byte", "trailing-bytes", append(clone(base), 0))
	bad("the outer ContentInfo with a definite length (DER)", "bad-encoding", func() []byte {
		body := base[2 : len(base)-2]
		return cat([]byte{0x30, 0x82, byte(len(body) >> 8), byte(len(body))}, body)
	}())
	bad("contentType signedData (1.2.840.113549.1.7.2)", "bad-type", setByte(base, 12, 0x02))
	envVer := bytes.Index(base, []byte{0x30, 0x80, 0x02, 0x01, 0x02}) + 4
	bad("EnvelopedData version 0", "bad-version", setByte(base, envVer, 0))
	ktri := bytes.Index(base, []byte{0x02, 0x01, 0x02, 0x80, 0x20}) + 2
	bad("KeyTransRecipientInfo version 0", "bad-version", setByte(base, ktri, 0))
	sha := bytes.Index(base, []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01})
	bad("OAEP hash SHA-384 in place of SHA-256", "bad-algorithm", setByte(base, sha+8, 0x02))
	aesAlg := bytes.Index(base, []byte{0x30, 0x1d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a, 0x04, 0x10})
	bad("content encryption AES-128-CBC in place of AES-256-CBC", "bad-algorithm", setByte(base, aesAlg+12, 0x02))
	bad("a 15-byte IV", "bad-length", cat(base[:aesAlg], []byte{0x30, 0x1c}, base[aesAlg+2:aesAlg+14], []byte{0x0f}, base[aesAlg+15:aesAlg+30], base[aesAlg+31:]))
	content := bytes.Index(base, []byte{0xa0, 0x80, 0x04, 0x30})
	bad("encrypted content of 47 bytes (not whole blocks)", "bad-length", cat(base[:content+3], []byte{0x2f}, base[content+4:content+4+47], base[content+4+48:]))
	bad("an indefinite-length primitive in place of the content OCTET STRING", "bad-encoding", setByte(setByte(base, content+2, 0x04), content+3, 0x80))
	bad("indefinite SEQUENCEs nested 100 deep", "bad-encoding", cat(bytes.Repeat([]byte{0x30, 0x80}, 100), zeros(200)))
	wrapped := bytes.Index(base, []byte{0x04, 0x82, 0x01, 0x00}) + 4
	bad("the wrapped key's last byte changed: it does not unwrap", "bad-wrapped-key", flip(base, wrapped+255))
	{
		_, r := make1("cms 1", nil)
		padded := cat([]byte("32-byte data key for the enclave"), fill(16, 0x11))
		ct := make([]byte, len(padded))
		blk, _ := aes.NewCipher(r[:32])
		cipher.NewCBCEncrypter(blk, r[32:48]).CryptBlocks(ct, padded)
		bad("the content's last block ends in 0x11 (padding over 16)", "bad-padding", cat(base[:content+4], ct, base[content+4+48:]))
	}
	return f
}

func checkCMS(t *testing.T, v *vec) {
	raw := v.hex("ciphertext_for_recipient")
	e, err := nitro.ParseEnvelope(raw)
	var pt []byte
	if err == nil && v.has("recipient_private_key") {
		key, kerr := x509.ParsePKCS8PrivateKey(v.hex("recipient_private_key"))
		if kerr != nil {
			t.Fatal(kerr)
		}
		pt, err = e.Open(key.(*rsa.PrivateKey))
	}
	if why, ok := divergences[v.ID]; ok {
		if err != nil {
			t.Fatalf("%s: Trent now refuses it (%v): remove the divergence %q", v.ID, err, why)
		}
		t.Logf("%s: known divergence: %s", v.ID, why)
		return
	}
	if v.Result == invalid {
		if err == nil || !errorsIs(err, nitro.ErrCMS) {
			t.Fatalf("%s: %v, want ErrCMS", v.ID, err)
		}
		if (v.Reason == "bad-wrapped-key" || v.Reason == "bad-padding") != (e != nil) {
			t.Fatalf("%s: %s refused at the wrong step: %v", v.ID, v.Reason, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "subjectKeyIdentifier", e.SubjectKeyID, v.hex("subject_key_id"))
	eq(t, v.ID, "wrapped key", e.WrappedKey, v.hex("wrapped_key"))
	eq(t, v.ID, "IV", e.IV, v.hex("iv"))
	eq(t, v.ID, "encrypted content", e.Ciphertext, v.hex("encrypted_content"))
	if !v.has("recipient_private_key") {
		if v.str("provenance") == "" {
			t.Fatalf("%s: a parse-only test without provenance", v.ID)
		}
		return
	}
	eq(t, v.ID, "plaintext", pt, v.hex("plaintext"))
	spkiDER := v.hex("recipient_spki")
	ski := sha256.Sum256(spkiDER)
	eq(t, v.ID, "SKI from the SPKI", ski[:], v.hex("subject_key_id"))
	key, _ := x509.ParsePKCS8PrivateKey(v.hex("recipient_private_key"))
	eq(t, v.ID, "SPKI", spki(&key.(*rsa.PrivateKey).PublicKey), spkiDER)
	ck, err := rsa.DecryptOAEP(sha256.New(), nil, key.(*rsa.PrivateKey), e.WrappedKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "content key", ck, v.hex("content_key"))
	r := v.hex("rng")
	eq(t, v.ID, "content key from rng", r[:32], ck)
	eq(t, v.ID, "IV from rng", r[32:48], e.IV)
	made, err := nitro.SealForRecipient(bytes.NewReader(r), &key.(*rsa.PrivateKey).PublicKey, ski[:], pt)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, v.ID, "Trent's message", made, raw)
}

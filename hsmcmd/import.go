package hsmcmd

import (
	"crypto/hmac"
	"crypto/sha256"

	"github.com/trentkms/trent/hbk"
)

// The commands of key import (BYOK; docs/protocol.md, "Key import"):
//
//	ImportKeyMaterial  v16 wrapping key token ‖ u8 alg ‖ v16 wrapped material ‖ v8 key ID ‖ v8 HBK ID (0 or 16 bytes)
//	                   → v16 HBK token ‖ v8 check value (32 bytes)
//	ImportKeyToken     v16 wrapping key token ‖ u8 alg ‖ u8 spec ‖ v16 wrapped material ‖ v8 key ID
//	                   → v16 key token ‖ v16 public key DER (empty for HMAC) ‖ v8 check value (32 bytes)
//
// ImportKeyMaterial imports a SYMMETRIC_DEFAULT key's material (an HBK);
// ImportKeyToken an asymmetric or HMAC key's (a key token of spec, as
// CreateKeyPair makes). The wrapped material is at most
// MaxWrappedMaterial bytes (KMS's EncryptedKeyMaterial) and alg is a
// wrapping algorithm: AlgOAEPSHA1 or AlgOAEPSHA256 (RSAES-OAEP of the
// material itself) or AlgRSAAESKeyWrapSHA1 or AlgRSAAESKeyWrapSHA256
// (RSAES-OAEP of an AES key, followed by the material wrapped under it
// with AES key wrap with padding, RFC 5649).
//
// The wrapping key is an RSA key made by CreateKeyPair with a wrapping
// spec (SpecWrapRSA2048…4096) for the same KMS key: the HSM uses a key
// token of a wrapping spec for this command only (AsymDecrypt and Sign
// refuse it), so the unwrapped material never leaves the HSM in the clear.

// Wrapping key specs: RSA keys that only unwrap imported key material.
// They are no KMS key spec (SpecNames has none of them).
const (
	SpecWrapRSA2048 uint8 = 15
	SpecWrapRSA3072 uint8 = 16
	SpecWrapRSA4096 uint8 = 17
)

// WrappingSpecs are the wrapping key specs by KMS's WrappingKeySpec name.
var WrappingSpecs = map[string]uint8{"RSA_2048": SpecWrapRSA2048, "RSA_3072": SpecWrapRSA3072, "RSA_4096": SpecWrapRSA4096}

// IsWrappingSpec reports whether spec is a wrapping key spec.
func IsWrappingSpec(spec uint8) bool { return spec >= SpecWrapRSA2048 && spec <= SpecWrapRSA4096 }

// The wrapping algorithms of RSA_AES_KEY_WRAP_SHA_1 and _256 (the
// RSAES_OAEP_SHA_* ones are AlgOAEPSHA1 and AlgOAEPSHA256). They are no
// algorithm of another command (AlgNames has none of them).
const (
	AlgRSAAESKeyWrapSHA1   uint8 = 17
	AlgRSAAESKeyWrapSHA256 uint8 = 18
)

// WrappingAlgs are the wrapping algorithm codes by KMS's AlgorithmSpec
// name.
var WrappingAlgs = map[string]uint8{
	"RSAES_OAEP_SHA_1": AlgOAEPSHA1, "RSAES_OAEP_SHA_256": AlgOAEPSHA256,
	"RSA_AES_KEY_WRAP_SHA_1": AlgRSAAESKeyWrapSHA1, "RSA_AES_KEY_WRAP_SHA_256": AlgRSAAESKeyWrapSHA256,
}

// MaxWrappedMaterial bounds the wrapped material of an import (KMS's
// EncryptedKeyMaterial, 6144 bytes).
const MaxWrappedMaterial = 6144

// CheckValueSize is the length of an import's check value.
const CheckValueSize = 32

// ImportKeyMaterialRequest unwraps imported key material for KeyID and
// seals it as an HBK token.
type ImportKeyMaterialRequest struct {
	WrappingToken []byte // key token of a wrapping spec, at most MaxKeyToken bytes
	Alg           uint8  // a wrapping algorithm (WrappingAlgs; the HSM checks)
	Material      []byte // the wrapped material, at most MaxWrappedMaterial bytes
	KeyID         string // v8, at most hbk.MaxKeyID bytes
	// HBKID is the HBK ID the new token takes: empty for a first import
	// (the HSM draws one), the first import's for a re-import, so that
	// the key's ciphertexts name the same HBK.
	HBKID []byte
}

func (ImportKeyMaterialRequest) Code() Code { return ImportKeyMaterial }

func (m ImportKeyMaterialRequest) Marshal() ([]byte, error) {
	w := newWriter(ImportKeyMaterial)
	w.v16(m.WrappingToken, 0, MaxKeyToken, "wrapping token")
	w.u8(m.Alg)
	w.v16(m.Material, 0, MaxWrappedMaterial, "material")
	w.v8([]byte(m.KeyID), 0, hbk.MaxKeyID, "key ID")
	w.check(len(m.HBKID) == 0 || len(m.HBKID) == hbk.IDSize, "HBK ID")
	w.v8(m.HBKID, 0, hbk.IDSize, "HBK ID")
	return w.bytes()
}

// ParseImportKeyMaterialRequest decodes an ImportKeyMaterial.
func ParseImportKeyMaterialRequest(in []byte) (*ImportKeyMaterialRequest, error) {
	r := newReader(ImportKeyMaterial, in)
	m := &ImportKeyMaterialRequest{WrappingToken: r.v16(0, MaxKeyToken, "wrapping token"), Alg: r.u8("algorithm")}
	m.Material = r.v16(0, MaxWrappedMaterial, "material")
	m.KeyID = string(r.v8(0, hbk.MaxKeyID, "key ID"))
	m.HBKID = r.v8(0, hbk.IDSize, "HBK ID")
	if r.err == nil && len(m.HBKID) != 0 && len(m.HBKID) != hbk.IDSize {
		r.fail("HBK ID")
	}
	if len(m.HBKID) == 0 {
		m.HBKID = nil
	}
	return result(m, r)
}

// ImportKeyMaterialResponse is the HBK token of the imported material
// and its check value: HMAC-SHA256 keyed by the material over
// "trent import check v1\x00" ‖ key ID, which tells a re-import of the
// same material from another without revealing it.
type ImportKeyMaterialResponse struct {
	Token []byte // HBK token, 1 to MaxHBKToken bytes
	Check []byte // CheckValueSize bytes
}

func (m ImportKeyMaterialResponse) Marshal() ([]byte, error) {
	w := newWriter(ImportKeyMaterial)
	w.v16(m.Token, 1, MaxHBKToken, "token")
	w.v8(m.Check, CheckValueSize, CheckValueSize, "check value")
	return w.bytes()
}

// ParseImportKeyMaterialResponse decodes an ImportKeyMaterial's answer.
func ParseImportKeyMaterialResponse(in []byte) (*ImportKeyMaterialResponse, error) {
	r := newReader(ImportKeyMaterial, in)
	m := &ImportKeyMaterialResponse{Token: r.v16(1, MaxHBKToken, "token"), Check: r.v8(CheckValueSize, CheckValueSize, "check value")}
	return result(m, r)
}

// ImportCheckValue is the check value of imported material for key
// keyID: HMAC-SHA256 keyed by the material over "trent import check
// v1\x00" ‖ key ID. The HSM computes it; it reveals nothing of the
// material but whether two imports are the same.
func ImportCheckValue(material []byte, keyID string) []byte {
	m := hmac.New(sha256.New, material)
	m.Write([]byte("trent import check v1\x00"))
	m.Write([]byte(keyID))
	return m.Sum(nil)
}

// ImportKeyTokenRequest unwraps imported key material of an asymmetric
// or HMAC key spec for KeyID and seals it as a key token. The material
// is what KMS requires of the spec: a PKCS#8 DER private key (RSA of the
// spec's size, an ECC key on the spec's curve) or the raw HMAC key.
type ImportKeyTokenRequest struct {
	WrappingToken []byte // key token of a wrapping spec, at most MaxKeyToken bytes
	Alg           uint8  // a wrapping algorithm (WrappingAlgs; the HSM checks)
	Spec          uint8  // the KMS key's spec (SpecRSA2048…SpecHMAC512; the HSM checks)
	Material      []byte // the wrapped material, at most MaxWrappedMaterial bytes
	KeyID         string // v8, at most hbk.MaxKeyID bytes
}

func (ImportKeyTokenRequest) Code() Code { return ImportKeyToken }

func (m ImportKeyTokenRequest) Marshal() ([]byte, error) {
	w := newWriter(ImportKeyToken)
	w.v16(m.WrappingToken, 0, MaxKeyToken, "wrapping token")
	w.u8(m.Alg)
	w.u8(m.Spec)
	w.v16(m.Material, 0, MaxWrappedMaterial, "material")
	w.v8([]byte(m.KeyID), 0, hbk.MaxKeyID, "key ID")
	return w.bytes()
}

// ParseImportKeyTokenRequest decodes an ImportKeyToken.
func ParseImportKeyTokenRequest(in []byte) (*ImportKeyTokenRequest, error) {
	r := newReader(ImportKeyToken, in)
	m := &ImportKeyTokenRequest{WrappingToken: r.v16(0, MaxKeyToken, "wrapping token"), Alg: r.u8("algorithm"), Spec: r.u8("spec")}
	m.Material = r.v16(0, MaxWrappedMaterial, "material")
	m.KeyID = string(r.v8(0, hbk.MaxKeyID, "key ID"))
	return result(m, r)
}

// ImportKeyTokenResponse is the key token of the imported material, its
// public key (DER SubjectPublicKeyInfo, derived by the HSM from the
// private key; empty for HMAC) and its check value (ImportCheckValue of
// the material's canonical form: the PKCS#8 DER the token holds, the
// secp256k1 scalar, the HMAC key).
type ImportKeyTokenResponse struct {
	Token     []byte // key token, 1 to MaxKeyToken bytes
	PublicKey []byte // at most MaxPublicKey bytes
	Check     []byte // CheckValueSize bytes
}

func (m ImportKeyTokenResponse) Marshal() ([]byte, error) {
	w := newWriter(ImportKeyToken)
	w.v16(m.Token, 1, MaxKeyToken, "token")
	w.v16(m.PublicKey, 0, MaxPublicKey, "public key")
	w.v8(m.Check, CheckValueSize, CheckValueSize, "check value")
	return w.bytes()
}

// ParseImportKeyTokenResponse decodes an ImportKeyToken's answer.
func ParseImportKeyTokenResponse(in []byte) (*ImportKeyTokenResponse, error) {
	r := newReader(ImportKeyToken, in)
	m := &ImportKeyTokenResponse{Token: r.v16(1, MaxKeyToken, "token"), PublicKey: r.v16(0, MaxPublicKey, "public key"),
		Check: r.v8(CheckValueSize, CheckValueSize, "check value")}
	return result(m, r)
}

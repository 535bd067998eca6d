package hsmcmd

import (
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/trentkms/trent/hbk"
)

// Commands of customer asymmetric, HMAC and ML-DSA keys (docs/protocol.md,
// "Customer asymmetric and HMAC keys"):
//
//	CreateKeyPair        u8 spec ‖ v8 key ID → v16 key token ‖ v16 public key DER (empty for HMAC)
//	Sign                 v16 key token ‖ u8 alg ‖ u8 message type (0 RAW, 1 DIGEST) ‖ v16 message → signature
//	AsymDecrypt          v16 key token ‖ u8 alg ‖ v16 ciphertext → plaintext
//	GenerateMac          v16 key token ‖ u8 alg ‖ v16 message → MAC
//	VerifyMac            v16 key token ‖ u8 alg ‖ v16 message ‖ v16 MAC → u8 1 (valid) or 0
//	DeriveSharedSecret   v16 key token ‖ v16 peer public key DER → the shared secret
//	GenerateDataKeyPair  v16 HBK token ‖ v16 context ‖ u8 spec ‖ u8 flags (bit 0: return the private key)
//	                     → v16 private key DER (empty without bit 0) ‖ v16 public key DER ‖ v16 blob
//	Verify               v16 public key DER ‖ u8 alg ‖ u8 message type ‖ v16 message ‖ v16 signature → u8 1 or 0

// Limits of these commands.
const (
	// MaxSignMessage bounds the message of Sign and Verify (KMS's 4096).
	MaxSignMessage = 4096
	// MaxMacMessage bounds the message of GenerateMac and VerifyMac.
	MaxMacMessage = 4096
	// MaxAsymCiphertext bounds an RSAES-OAEP ciphertext (RSA-4096) and so
	// its plaintext.
	MaxAsymCiphertext = 512
	// MaxPublicKey bounds a DER SubjectPublicKeyInfo (ML-DSA-87's is the
	// longest, 2614 bytes).
	MaxPublicKey = 4096
	// MaxSignature is the longest signature (ML-DSA-87's).
	MaxSignature = mldsa87.SignatureSize
	// MaxMac is the longest MAC (HMAC-SHA-512).
	MaxMac = 64
	// MaxSharedSecret is the longest ECDH shared secret (P-521's x).
	MaxSharedSecret = 66
	// MaxVerifyField bounds VerifyMac's MAC and Verify's signature: their
	// prefix's limit. A longer one than the key makes is answered "not
	// valid", as it always has been, not refused.
	MaxVerifyField = 0xffff
)

// CreateKeyPairRequest asks for a new key of Spec for the KMS key KeyID.
type CreateKeyPairRequest struct {
	Spec  uint8
	KeyID string // v8, at most hbk.MaxKeyID bytes
}

func (CreateKeyPairRequest) Code() Code { return CreateKeyPair }

func (m CreateKeyPairRequest) Marshal() ([]byte, error) {
	w := newWriter(CreateKeyPair)
	w.u8(m.Spec)
	w.v8([]byte(m.KeyID), 0, hbk.MaxKeyID, "key ID")
	return w.bytes()
}

// ParseCreateKeyPairRequest decodes a CreateKeyPair.
func ParseCreateKeyPairRequest(in []byte) (*CreateKeyPairRequest, error) {
	r := newReader(CreateKeyPair, in)
	m := &CreateKeyPairRequest{Spec: r.u8("spec")}
	m.KeyID = string(r.v8(0, hbk.MaxKeyID, "key ID"))
	return result(m, r)
}

// CreateKeyPairResponse is the key token and the public key.
type CreateKeyPairResponse struct {
	Token     []byte // 1 to MaxKeyToken bytes
	PublicKey []byte // DER SubjectPublicKeyInfo, at most MaxPublicKey bytes; empty for HMAC
}

func (m CreateKeyPairResponse) Marshal() ([]byte, error) {
	w := newWriter(CreateKeyPair)
	w.v16(m.Token, 1, MaxKeyToken, "token")
	w.v16(m.PublicKey, 0, MaxPublicKey, "public key")
	return w.bytes()
}

// ParseCreateKeyPairResponse decodes a CreateKeyPair's answer.
func ParseCreateKeyPairResponse(in []byte) (*CreateKeyPairResponse, error) {
	r := newReader(CreateKeyPair, in)
	m := &CreateKeyPairResponse{Token: r.v16(1, MaxKeyToken, "token"), PublicKey: r.v16(0, MaxPublicKey, "public key")}
	return result(m, r)
}

// SignRequest signs Message (RAW) or the digest in Message (Digest).
type SignRequest struct {
	Token   []byte // key token, at most MaxKeyToken bytes
	Alg     uint8
	Digest  bool   // message type: 0 RAW, 1 DIGEST
	Message []byte // at most MaxSignMessage bytes
}

func (SignRequest) Code() Code { return Sign }

func (m SignRequest) Marshal() ([]byte, error) {
	w := newWriter(Sign)
	w.v16(m.Token, 0, MaxKeyToken, "token")
	w.u8(m.Alg)
	w.u8(flag(m.Digest))
	w.v16(m.Message, 0, MaxSignMessage, "message")
	return w.bytes()
}

// ParseSignRequest decodes a Sign.
func ParseSignRequest(in []byte) (*SignRequest, error) {
	r := newReader(Sign, in)
	m := &SignRequest{Token: r.v16(0, MaxKeyToken, "token"), Alg: r.u8("algorithm")}
	m.Digest = r.messageType()
	m.Message = r.v16(0, MaxSignMessage, "message")
	return result(m, r)
}

// SignResponse is the signature (ECDSA: DER; RSA: the raw signature;
// ML-DSA: FIPS 204 bytes).
type SignResponse struct {
	Signature []byte // 1 to MaxSignature bytes
}

func (m SignResponse) Marshal() ([]byte, error) {
	w := newWriter(Sign)
	w.rest(m.Signature, 1, MaxSignature, "signature")
	return w.bytes()
}

// ParseSignResponse decodes a Sign's answer.
func ParseSignResponse(in []byte) (*SignResponse, error) {
	r := newReader(Sign, in)
	m := &SignResponse{Signature: r.rest(1, MaxSignature, "signature")}
	return result(m, r)
}

// AsymDecryptRequest decrypts an RSAES-OAEP ciphertext.
type AsymDecryptRequest struct {
	Token      []byte // key token, at most MaxKeyToken bytes
	Alg        uint8  // AlgOAEPSHA1 or AlgOAEPSHA256 (the HSM checks)
	Ciphertext []byte // at most MaxAsymCiphertext bytes
}

func (AsymDecryptRequest) Code() Code { return AsymDecrypt }

func (m AsymDecryptRequest) Marshal() ([]byte, error) {
	w := newWriter(AsymDecrypt)
	w.v16(m.Token, 0, MaxKeyToken, "token")
	w.u8(m.Alg)
	w.v16(m.Ciphertext, 0, MaxAsymCiphertext, "ciphertext")
	return w.bytes()
}

// ParseAsymDecryptRequest decodes an AsymDecrypt.
func ParseAsymDecryptRequest(in []byte) (*AsymDecryptRequest, error) {
	r := newReader(AsymDecrypt, in)
	m := &AsymDecryptRequest{Token: r.v16(0, MaxKeyToken, "token"), Alg: r.u8("algorithm")}
	m.Ciphertext = r.v16(0, MaxAsymCiphertext, "ciphertext")
	return result(m, r)
}

// AsymDecryptResponse is the plaintext.
type AsymDecryptResponse struct {
	Plaintext []byte // at most MaxAsymCiphertext bytes
}

func (m AsymDecryptResponse) Marshal() ([]byte, error) {
	w := newWriter(AsymDecrypt)
	w.rest(m.Plaintext, 0, MaxAsymCiphertext, "plaintext")
	return w.bytes()
}

// ParseAsymDecryptResponse decodes an AsymDecrypt's answer.
func ParseAsymDecryptResponse(in []byte) (*AsymDecryptResponse, error) {
	r := newReader(AsymDecrypt, in)
	m := &AsymDecryptResponse{Plaintext: r.rest(0, MaxAsymCiphertext, "plaintext")}
	return result(m, r)
}

// GenerateMacRequest computes the MAC of Message.
type GenerateMacRequest struct {
	Token   []byte // key token, at most MaxKeyToken bytes
	Alg     uint8
	Message []byte // at most MaxMacMessage bytes
}

func (GenerateMacRequest) Code() Code { return GenerateMac }

func (m GenerateMacRequest) Marshal() ([]byte, error) {
	w := newWriter(GenerateMac)
	w.v16(m.Token, 0, MaxKeyToken, "token")
	w.u8(m.Alg)
	w.v16(m.Message, 0, MaxMacMessage, "message")
	return w.bytes()
}

// ParseGenerateMacRequest decodes a GenerateMac.
func ParseGenerateMacRequest(in []byte) (*GenerateMacRequest, error) {
	r := newReader(GenerateMac, in)
	m := &GenerateMacRequest{Token: r.v16(0, MaxKeyToken, "token"), Alg: r.u8("algorithm")}
	m.Message = r.v16(0, MaxMacMessage, "message")
	return result(m, r)
}

// GenerateMacResponse is the MAC.
type GenerateMacResponse struct {
	Mac []byte // 1 to MaxMac bytes
}

func (m GenerateMacResponse) Marshal() ([]byte, error) {
	w := newWriter(GenerateMac)
	w.rest(m.Mac, 1, MaxMac, "MAC")
	return w.bytes()
}

// ParseGenerateMacResponse decodes a GenerateMac's answer.
func ParseGenerateMacResponse(in []byte) (*GenerateMacResponse, error) {
	r := newReader(GenerateMac, in)
	m := &GenerateMacResponse{Mac: r.rest(1, MaxMac, "MAC")}
	return result(m, r)
}

// VerifyMacRequest checks Mac against Message's MAC, in constant time.
type VerifyMacRequest struct {
	Token   []byte // key token, at most MaxKeyToken bytes
	Alg     uint8
	Message []byte // at most MaxMacMessage bytes
	Mac     []byte // at most MaxVerifyField bytes
}

func (VerifyMacRequest) Code() Code { return VerifyMac }

func (m VerifyMacRequest) Marshal() ([]byte, error) {
	w := newWriter(VerifyMac)
	w.v16(m.Token, 0, MaxKeyToken, "token")
	w.u8(m.Alg)
	w.v16(m.Message, 0, MaxMacMessage, "message")
	w.v16(m.Mac, 0, MaxVerifyField, "MAC")
	return w.bytes()
}

// ParseVerifyMacRequest decodes a VerifyMac.
func ParseVerifyMacRequest(in []byte) (*VerifyMacRequest, error) {
	r := newReader(VerifyMac, in)
	m := &VerifyMacRequest{Token: r.v16(0, MaxKeyToken, "token"), Alg: r.u8("algorithm")}
	m.Message = r.v16(0, MaxMacMessage, "message")
	m.Mac = r.v16(0, MaxVerifyField, "MAC")
	return result(m, r)
}

// VerifyMacResponse says whether the MAC is valid: u8 1 or 0.
type VerifyMacResponse struct{ Valid bool }

func (m VerifyMacResponse) Marshal() ([]byte, error) { return []byte{flag(m.Valid)}, nil }

// ParseVerifyMacResponse decodes a VerifyMac's answer.
func ParseVerifyMacResponse(in []byte) (*VerifyMacResponse, error) {
	r := newReader(VerifyMac, in)
	m := &VerifyMacResponse{Valid: r.valid()}
	return result(m, r)
}

// DeriveSharedSecretRequest is ECDH between the key and a peer key.
type DeriveSharedSecretRequest struct {
	Token         []byte // key token, at most MaxKeyToken bytes
	PeerPublicKey []byte // DER SubjectPublicKeyInfo, at most MaxPublicKey bytes
}

func (DeriveSharedSecretRequest) Code() Code { return DeriveSharedSecret }

func (m DeriveSharedSecretRequest) Marshal() ([]byte, error) {
	w := newWriter(DeriveSharedSecret)
	w.v16(m.Token, 0, MaxKeyToken, "token")
	w.v16(m.PeerPublicKey, 0, MaxPublicKey, "peer public key")
	return w.bytes()
}

// ParseDeriveSharedSecretRequest decodes a DeriveSharedSecret.
func ParseDeriveSharedSecretRequest(in []byte) (*DeriveSharedSecretRequest, error) {
	r := newReader(DeriveSharedSecret, in)
	m := &DeriveSharedSecretRequest{Token: r.v16(0, MaxKeyToken, "token"), PeerPublicKey: r.v16(0, MaxPublicKey, "peer public key")}
	return result(m, r)
}

// DeriveSharedSecretResponse is the shared secret (the x-coordinate).
type DeriveSharedSecretResponse struct {
	Secret []byte // 1 to MaxSharedSecret bytes
}

func (m DeriveSharedSecretResponse) Marshal() ([]byte, error) {
	w := newWriter(DeriveSharedSecret)
	w.rest(m.Secret, 1, MaxSharedSecret, "shared secret")
	return w.bytes()
}

// ParseDeriveSharedSecretResponse decodes a DeriveSharedSecret's answer.
func ParseDeriveSharedSecretResponse(in []byte) (*DeriveSharedSecretResponse, error) {
	r := newReader(DeriveSharedSecret, in)
	m := &DeriveSharedSecretResponse{Secret: r.rest(1, MaxSharedSecret, "shared secret")}
	return result(m, r)
}

// GenerateDataKeyPairRequest asks for a key pair of Spec outside any key
// store, its private key sealed like Encrypt.
type GenerateDataKeyPairRequest struct {
	Token          []byte // HBK token, at most MaxHBKToken bytes
	Context        []byte // at most hbk.MaxContext bytes
	Spec           uint8  // 1 to 7 (the HSM checks)
	WithPrivateKey bool   // flags bit 0
}

func (GenerateDataKeyPairRequest) Code() Code { return GenerateDataKeyPair }

func (m GenerateDataKeyPairRequest) Marshal() ([]byte, error) {
	w := newWriter(GenerateDataKeyPair)
	w.v16(m.Token, 0, MaxHBKToken, "token")
	w.v16(m.Context, 0, hbk.MaxContext, "context")
	w.u8(m.Spec)
	w.u8(flag(m.WithPrivateKey))
	return w.bytes()
}

// ParseGenerateDataKeyPairRequest decodes a GenerateDataKeyPair.
func ParseGenerateDataKeyPairRequest(in []byte) (*GenerateDataKeyPairRequest, error) {
	r := newReader(GenerateDataKeyPair, in)
	m := &GenerateDataKeyPairRequest{Token: r.v16(0, MaxHBKToken, "token"), Context: r.v16(0, hbk.MaxContext, "context")}
	m.Spec = r.u8("spec")
	m.WithPrivateKey = r.flags()
	return result(m, r)
}

// GenerateDataKeyPairResponse is the key pair and the sealed private key.
type GenerateDataKeyPairResponse struct {
	PrivateKey []byte // PKCS#8 DER, at most hbk.MaxPlaintext bytes; empty unless asked for
	PublicKey  []byte // DER SubjectPublicKeyInfo, 1 to MaxPublicKey bytes
	Blob       []byte // the private key sealed as Encrypt seals, 1 to hbk.MaxBlob bytes
}

func (m GenerateDataKeyPairResponse) Marshal() ([]byte, error) {
	w := newWriter(GenerateDataKeyPair)
	w.v16(m.PrivateKey, 0, hbk.MaxPlaintext, "private key")
	w.v16(m.PublicKey, 1, MaxPublicKey, "public key")
	w.v16(m.Blob, 1, hbk.MaxBlob, "blob")
	return w.bytes()
}

// ParseGenerateDataKeyPairResponse decodes a GenerateDataKeyPair's answer.
func ParseGenerateDataKeyPairResponse(in []byte) (*GenerateDataKeyPairResponse, error) {
	r := newReader(GenerateDataKeyPair, in)
	m := &GenerateDataKeyPairResponse{
		PrivateKey: r.v16(0, hbk.MaxPlaintext, "private key"),
		PublicKey:  r.v16(1, MaxPublicKey, "public key"),
		Blob:       r.v16(1, hbk.MaxBlob, "blob"),
	}
	return result(m, r)
}

// VerifyRequest checks a signature by a public key the host cannot
// verify with itself (ECC_SECG_P256K1).
type VerifyRequest struct {
	PublicKey []byte // DER SubjectPublicKeyInfo, at most MaxPublicKey bytes
	Alg       uint8  // AlgECDSASHA256 (the HSM checks)
	Digest    bool   // message type: 0 RAW, 1 DIGEST
	Message   []byte // at most MaxSignMessage bytes
	Signature []byte // DER, at most MaxVerifyField bytes
}

func (VerifyRequest) Code() Code { return Verify }

func (m VerifyRequest) Marshal() ([]byte, error) {
	w := newWriter(Verify)
	w.v16(m.PublicKey, 0, MaxPublicKey, "public key")
	w.u8(m.Alg)
	w.u8(flag(m.Digest))
	w.v16(m.Message, 0, MaxSignMessage, "message")
	w.v16(m.Signature, 0, MaxVerifyField, "signature")
	return w.bytes()
}

// ParseVerifyRequest decodes a Verify.
func ParseVerifyRequest(in []byte) (*VerifyRequest, error) {
	r := newReader(Verify, in)
	m := &VerifyRequest{PublicKey: r.v16(0, MaxPublicKey, "public key"), Alg: r.u8("algorithm")}
	m.Digest = r.messageType()
	m.Message = r.v16(0, MaxSignMessage, "message")
	m.Signature = r.v16(0, MaxVerifyField, "signature")
	return result(m, r)
}

// VerifyResponse says whether the signature is valid: u8 1 or 0.
type VerifyResponse struct{ Valid bool }

func (m VerifyResponse) Marshal() ([]byte, error) { return []byte{flag(m.Valid)}, nil }

// ParseVerifyResponse decodes a Verify's answer.
func ParseVerifyResponse(in []byte) (*VerifyResponse, error) {
	r := newReader(Verify, in)
	m := &VerifyResponse{Valid: r.valid()}
	return result(m, r)
}

// messageType reads a u8 message type: 0 RAW (false), 1 DIGEST (true).
func (r *reader) messageType() bool {
	t := r.u8("message type")
	if r.err == nil && t > 1 {
		r.fail("message type")
	}
	return t == 1
}

// valid reads a u8 verdict: 1 valid, 0 not.
func (r *reader) valid() bool {
	v := r.u8("verdict")
	if r.err == nil && v > 1 {
		r.fail("verdict")
	}
	return v == 1
}

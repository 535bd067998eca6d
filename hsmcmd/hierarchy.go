package hsmcmd

import "github.com/trentkms/trent/hbk"

// The customer key hierarchy's commands (docs/protocol.md, "Hierarchy
// commands"); fields are v16 unless stated:
//
//	CreateHBK        v8 key ID                               → HBK token
//	Encrypt          HBK token ‖ context ‖ plaintext          → blob
//	GenerateDataKey  HBK token ‖ context ‖ u16 size (1 to MaxRandom) ‖
//	                 u8 flags (bit 0: return the plaintext; other bits 0)
//	                 → v16 plaintext (empty without bit 0) ‖ v16 blob
//	Decrypt          HBK token ‖ context ‖ blob               → plaintext
//	ReEncrypt        source HBK token ‖ source context ‖ blob ‖
//	                 destination HBK token ‖ destination context → blob
//
// A context is an encoded encryption context (hbk.EncodeContext).

// Sizes of the hierarchy's objects, as package hbk encodes them.
const (
	// MaxHBKToken is the longest HBK token: header, domain key ID, v8 key
	// ID of hbk.MaxKeyID bytes, HBK ID, IV, sealed HBK and tag.
	MaxHBKToken = 6 + hbk.DKIDSize + 1 + hbk.MaxKeyID + hbk.IDSize + hbk.IVSize + hbk.Size + hbk.TagSize
	// MaxKeyToken is the longest key token (asymmetric, HMAC and ML-DSA
	// keys): header, domain key ID, v8 key ID, version ID, spec, IV, v16
	// sealed material of hbk.MaxKeyMaterial bytes and tag.
	MaxKeyToken = 6 + hbk.DKIDSize + 1 + hbk.MaxKeyID + hbk.IDSize + 1 + hbk.IVSize + 2 + hbk.MaxKeyMaterial + hbk.TagSize
	// MaxKeyIDField bounds the v8 key ID of CreateHBK: its prefix's limit.
	// The HSM makes an HBK only for a valid KMS key ID (hbk.ValidKeyID:
	// 1 to hbk.MaxKeyID printable bytes) and answers any other as an
	// internal error, as it always has.
	MaxKeyIDField = 0xff
)

// CreateHBKRequest asks for a new HBK of the KMS key KeyID, sealed under
// the active domain key.
type CreateHBKRequest struct {
	KeyID string // v8, at most MaxKeyIDField bytes
}

func (CreateHBKRequest) Code() Code { return CreateHBK }

func (m CreateHBKRequest) Marshal() ([]byte, error) {
	w := newWriter(CreateHBK)
	w.v8([]byte(m.KeyID), 0, MaxKeyIDField, "key ID")
	return w.bytes()
}

// ParseCreateHBKRequest decodes a CreateHBK.
func ParseCreateHBKRequest(in []byte) (*CreateHBKRequest, error) {
	r := newReader(CreateHBK, in)
	m := &CreateHBKRequest{KeyID: string(r.v8(0, MaxKeyIDField, "key ID"))}
	return result(m, r)
}

// CreateHBKResponse is the new HBK token.
type CreateHBKResponse struct {
	Token []byte // 1 to MaxHBKToken bytes
}

func (m CreateHBKResponse) Marshal() ([]byte, error) {
	w := newWriter(CreateHBK)
	w.rest(m.Token, 1, MaxHBKToken, "token")
	return w.bytes()
}

// ParseCreateHBKResponse decodes a CreateHBK's answer.
func ParseCreateHBKResponse(in []byte) (*CreateHBKResponse, error) {
	r := newReader(CreateHBK, in)
	m := &CreateHBKResponse{Token: r.rest(1, MaxHBKToken, "token")}
	return result(m, r)
}

// EncryptRequest seals Plaintext under the HBK of Token with Context.
type EncryptRequest struct {
	Token     []byte // HBK token, at most MaxHBKToken bytes
	Context   []byte // encoded encryption context, at most hbk.MaxContext bytes
	Plaintext []byte // at most hbk.MaxPlaintext bytes (the HSM wants at least 1)
}

func (EncryptRequest) Code() Code { return Encrypt }

func (m EncryptRequest) Marshal() ([]byte, error) {
	w := newWriterSize(Encrypt, 6+len(m.Token)+len(m.Context)+len(m.Plaintext))
	w.v16(m.Token, 0, MaxHBKToken, "token")
	w.v16(m.Context, 0, hbk.MaxContext, "context")
	w.v16(m.Plaintext, 0, hbk.MaxPlaintext, "plaintext")
	return w.bytes()
}

// ParseEncryptRequest decodes an Encrypt.
func ParseEncryptRequest(in []byte) (*EncryptRequest, error) {
	r := newReader(Encrypt, in)
	m := &EncryptRequest{
		Token:     r.v16(0, MaxHBKToken, "token"),
		Context:   r.v16(0, hbk.MaxContext, "context"),
		Plaintext: r.v16(0, hbk.MaxPlaintext, "plaintext"),
	}
	return result(m, r)
}

// EncryptResponse is the ciphertext blob.
type EncryptResponse struct {
	Blob []byte // 1 to hbk.MaxBlob bytes
}

func (m EncryptResponse) Marshal() ([]byte, error) {
	w := newWriterSize(Encrypt, len(m.Blob))
	w.rest(m.Blob, 1, hbk.MaxBlob, "blob")
	return w.bytes()
}

// ParseEncryptResponse decodes an Encrypt's answer.
func ParseEncryptResponse(in []byte) (*EncryptResponse, error) {
	r := newReader(Encrypt, in)
	m := &EncryptResponse{Blob: r.rest(1, hbk.MaxBlob, "blob")}
	return result(m, r)
}

// GenerateDataKeyRequest asks for Size random bytes sealed like Encrypt.
type GenerateDataKeyRequest struct {
	Token         []byte // HBK token, at most MaxHBKToken bytes
	Context       []byte // at most hbk.MaxContext bytes
	Size          uint16 // 1 to MaxRandom
	WithPlaintext bool   // flags bit 0: the answer holds the plaintext
}

func (GenerateDataKeyRequest) Code() Code { return GenerateDataKey }

func (m GenerateDataKeyRequest) Marshal() ([]byte, error) {
	w := newWriterSize(GenerateDataKey, 7+len(m.Token)+len(m.Context))
	w.v16(m.Token, 0, MaxHBKToken, "token")
	w.v16(m.Context, 0, hbk.MaxContext, "context")
	if w.check(m.Size >= 1 && m.Size <= MaxRandom, "size") {
		w.u16(m.Size)
	}
	w.u8(flag(m.WithPlaintext))
	return w.bytes()
}

// ParseGenerateDataKeyRequest decodes a GenerateDataKey.
func ParseGenerateDataKeyRequest(in []byte) (*GenerateDataKeyRequest, error) {
	r := newReader(GenerateDataKey, in)
	m := &GenerateDataKeyRequest{
		Token:   r.v16(0, MaxHBKToken, "token"),
		Context: r.v16(0, hbk.MaxContext, "context"),
		Size:    r.u16("size"),
	}
	if r.err == nil && (m.Size < 1 || m.Size > MaxRandom) {
		r.fail("size")
	}
	m.WithPlaintext = r.flags()
	return result(m, r)
}

// GenerateDataKeyResponse is the data key and its blob.
type GenerateDataKeyResponse struct {
	Plaintext []byte // at most MaxRandom bytes; empty unless asked for
	Blob      []byte // 1 to hbk.MaxBlob bytes
}

func (m GenerateDataKeyResponse) Marshal() ([]byte, error) {
	w := newWriterSize(GenerateDataKey, 4+len(m.Plaintext)+len(m.Blob))
	w.v16(m.Plaintext, 0, MaxRandom, "plaintext")
	w.v16(m.Blob, 1, hbk.MaxBlob, "blob")
	return w.bytes()
}

// ParseGenerateDataKeyResponse decodes a GenerateDataKey's answer.
func ParseGenerateDataKeyResponse(in []byte) (*GenerateDataKeyResponse, error) {
	r := newReader(GenerateDataKey, in)
	m := &GenerateDataKeyResponse{Plaintext: r.v16(0, MaxRandom, "plaintext"), Blob: r.v16(1, hbk.MaxBlob, "blob")}
	return result(m, r)
}

// DecryptRequest opens Blob under the HBK of Token with Context.
type DecryptRequest struct {
	Token   []byte // HBK token, at most MaxHBKToken bytes
	Context []byte // at most hbk.MaxContext bytes
	Blob    []byte // at most hbk.MaxBlob bytes
}

func (DecryptRequest) Code() Code { return Decrypt }

func (m DecryptRequest) Marshal() ([]byte, error) {
	w := newWriterSize(Decrypt, 6+len(m.Token)+len(m.Context)+len(m.Blob))
	w.v16(m.Token, 0, MaxHBKToken, "token")
	w.v16(m.Context, 0, hbk.MaxContext, "context")
	w.v16(m.Blob, 0, hbk.MaxBlob, "blob")
	return w.bytes()
}

// ParseDecryptRequest decodes a Decrypt.
func ParseDecryptRequest(in []byte) (*DecryptRequest, error) {
	r := newReader(Decrypt, in)
	m := &DecryptRequest{
		Token:   r.v16(0, MaxHBKToken, "token"),
		Context: r.v16(0, hbk.MaxContext, "context"),
		Blob:    r.v16(0, hbk.MaxBlob, "blob"),
	}
	return result(m, r)
}

// DecryptResponse is the plaintext.
type DecryptResponse struct {
	Plaintext []byte // 1 to hbk.MaxPlaintext bytes
}

func (m DecryptResponse) Marshal() ([]byte, error) {
	w := newWriterSize(Decrypt, len(m.Plaintext))
	w.rest(m.Plaintext, 1, hbk.MaxPlaintext, "plaintext")
	return w.bytes()
}

// ParseDecryptResponse decodes a Decrypt's answer.
func ParseDecryptResponse(in []byte) (*DecryptResponse, error) {
	r := newReader(Decrypt, in)
	m := &DecryptResponse{Plaintext: r.rest(1, hbk.MaxPlaintext, "plaintext")}
	return result(m, r)
}

// ReEncryptRequest moves Blob from the source HBK and context to the
// destination's, inside the HSM.
type ReEncryptRequest struct {
	SourceToken        []byte // HBK token, at most MaxHBKToken bytes
	SourceContext      []byte // at most hbk.MaxContext bytes
	Blob               []byte // at most hbk.MaxBlob bytes
	DestinationToken   []byte // HBK token, at most MaxHBKToken bytes
	DestinationContext []byte // at most hbk.MaxContext bytes
}

func (ReEncryptRequest) Code() Code { return ReEncrypt }

func (m ReEncryptRequest) Marshal() ([]byte, error) {
	w := newWriter(ReEncrypt)
	w.v16(m.SourceToken, 0, MaxHBKToken, "source token")
	w.v16(m.SourceContext, 0, hbk.MaxContext, "source context")
	w.v16(m.Blob, 0, hbk.MaxBlob, "blob")
	w.v16(m.DestinationToken, 0, MaxHBKToken, "destination token")
	w.v16(m.DestinationContext, 0, hbk.MaxContext, "destination context")
	return w.bytes()
}

// ParseReEncryptRequest decodes a ReEncrypt.
func ParseReEncryptRequest(in []byte) (*ReEncryptRequest, error) {
	r := newReader(ReEncrypt, in)
	m := &ReEncryptRequest{
		SourceToken:        r.v16(0, MaxHBKToken, "source token"),
		SourceContext:      r.v16(0, hbk.MaxContext, "source context"),
		Blob:               r.v16(0, hbk.MaxBlob, "blob"),
		DestinationToken:   r.v16(0, MaxHBKToken, "destination token"),
		DestinationContext: r.v16(0, hbk.MaxContext, "destination context"),
	}
	return result(m, r)
}

// ReEncryptResponse is the blob under the destination.
type ReEncryptResponse struct {
	Blob []byte // 1 to hbk.MaxBlob bytes
}

func (m ReEncryptResponse) Marshal() ([]byte, error) {
	w := newWriterSize(ReEncrypt, len(m.Blob))
	w.rest(m.Blob, 1, hbk.MaxBlob, "blob")
	return w.bytes()
}

// ParseReEncryptResponse decodes a ReEncrypt's answer.
func ParseReEncryptResponse(in []byte) (*ReEncryptResponse, error) {
	r := newReader(ReEncrypt, in)
	m := &ReEncryptResponse{Blob: r.rest(1, hbk.MaxBlob, "blob")}
	return result(m, r)
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// flags reads a u8 flags field whose only bit is bit 0.
func (r *reader) flags() bool {
	f := r.u8("flags")
	if r.err == nil && f > 1 {
		r.fail("flags")
	}
	return f == 1
}

package kms

import "github.com/trentkms/trent/internal/strictjson"

// The requests of Encrypt, Decrypt and GenerateDataKey decode their usual
// bodies themselves (strictjson.FastDecoder): in one pass, without
// reflection, to the value strictjson.Unmarshal's usual path gives
// (TestRequestsDecodeFast and the FuzzDecodeFast targets compare the
// two). Anything else (null, an escaped member name, a Recipient, an
// unknown or repeated member, ...) they decline, and the usual path
// decodes or refuses it with its own message.

var (
	encryptMembers         = []string{"KeyId", "Plaintext", "EncryptionContext", "GrantTokens", "EncryptionAlgorithm", "DryRun"}
	decryptMembers         = []string{"CiphertextBlob", "EncryptionContext", "KeyId", "GrantTokens", "EncryptionAlgorithm", "DryRun"}
	generateDataKeyMembers = []string{"KeyId", "KeySpec", "NumberOfBytes", "EncryptionContext", "GrantTokens", "DryRun"}
)

// decodeMember reads the member name of the shared fields.
func (c *cryptoRequest) decodeMember(s *strictjson.Scanner, name string) (ok bool) {
	switch name {
	case "EncryptionContext":
		c.EncryptionContext, ok = s.StringMap()
	case "GrantTokens":
		c.GrantTokens, ok = s.Strings()
	case "DryRun":
		c.DryRun, ok = s.Bool()
	}
	return ok
}

// DecodeFast implements strictjson.FastDecoder.
func (r *encryptRequest) DecodeFast(data []byte) bool {
	s := strictjson.NewScanner(data)
	return s.Object(encryptMembers, func(name string) (ok bool) {
		switch name {
		case "KeyId":
			r.KeyId, ok = s.String()
		case "Plaintext":
			r.Plaintext, ok = s.Bytes()
		case "EncryptionAlgorithm":
			r.EncryptionAlgorithm, ok = s.StringPtr()
		default:
			ok = r.decodeMember(&s, name)
		}
		return ok
	}) && s.End()
}

// DecodeFast implements strictjson.FastDecoder.
func (r *decryptRequest) DecodeFast(data []byte) bool {
	s := strictjson.NewScanner(data)
	return s.Object(decryptMembers, func(name string) (ok bool) {
		switch name {
		case "CiphertextBlob":
			r.CiphertextBlob, ok = s.Bytes()
		case "KeyId":
			r.KeyId, ok = s.StringPtr()
		case "EncryptionAlgorithm":
			r.EncryptionAlgorithm, ok = s.StringPtr()
		default:
			ok = r.decodeMember(&s, name)
		}
		return ok
	}) && s.End()
}

// DecodeFast implements strictjson.FastDecoder.
func (r *generateDataKeyRequest) DecodeFast(data []byte) bool {
	s := strictjson.NewScanner(data)
	return s.Object(generateDataKeyMembers, func(name string) (ok bool) {
		switch name {
		case "KeyId":
			r.KeyId, ok = s.String()
		case "KeySpec":
			r.KeySpec, ok = s.StringPtr()
		case "NumberOfBytes":
			r.NumberOfBytes, ok = s.IntPtr()
		default:
			ok = r.decodeMember(&s, name)
		}
		return ok
	}) && s.End()
}

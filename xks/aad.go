package xks

import (
	"crypto/sha256"
	"encoding/binary"
)

// AAD is the additional data a proxy gives AES-GCM for a request's
// additionalAuthenticatedData and the ciphertextMetadata of its answer
// (Encrypt) or request (Decrypt): the 2-byte big-endian length of aad,
// aad, the 1-byte length of meta, meta (the specification's Encrypt
// section, "ciphertextMetadata"). Absent fields have length zero. aad is at
// most 65535 bytes and meta at most 255 (both far above the limits).
func AAD(aad, meta []byte) []byte {
	if len(aad) > 0xffff || len(meta) > 0xff {
		panic("xks: AAD input too long")
	}
	out := make([]byte, 0, 3+len(aad)+len(meta))
	out = binary.BigEndian.AppendUint16(out, uint16(len(aad)))
	out = append(out, aad...)
	out = append(out, byte(len(meta)))
	return append(out, meta...)
}

// CDIV is the ciphertext data integrity value with SHA_256: the SHA-256 of
// additionalAuthenticatedData ‖ ciphertextMetadata ‖ initializationVector ‖
// ciphertext ‖ authenticationTag, without lengths (the specification's
// Appendix C).
func CDIV(aad, meta, iv, ciphertext, tag []byte) []byte {
	h := sha256.New()
	for _, b := range [][]byte{aad, meta, iv, ciphertext, tag} {
		h.Write(b)
	}
	return h.Sum(nil)
}

// Package hbk holds the objects of the customer key hierarchy (AWS KMS
// Cryptographic Details, "Customer key hierarchy"): the HSM backing key
// (HBK) of each KMS key version, the token that carries it sealed under a
// domain key, and the ciphertext blob of Encrypt and GenerateDataKey.
//
// # Objects
//
// A Token is an HBK sealed with AES-256-GCM under a domain key. It names
// the domain key, the KMS key and the HBK ID, all bound as associated data,
// so a token opens only for the key and version it was made for. Tokens are
// what the raft key store holds; the HBK itself exists only inside an HSM.
//
// A Blob is a ciphertext: the KMS key ID, the HBK ID, a 32-byte nonce N and
// a 12-byte IV in the clear, then AES-256-GCM ciphertext and tag under a
// one-time key K = KDF(HBK, key ID, HBK ID, N) (NIST SP 800-108 counter mode
// with HMAC-SHA256, one block). The associated data is a context label, the
// blob's header fields and the encryption context in the encoding of
// EncodeContext, which is injective: two different contexts never encode
// alike (no concatenation ambiguity).
//
// docs/protocol.md ("Customer key hierarchy") specifies every byte;
// testdata/ holds known-answer vectors.
//
// # Where keys live
//
// The functions here take the domain key and the HBK as interfaces
// (Sealer, Opener, MAC), which package hsm's volatile token keys satisfy:
// the HBK stays a token object and only the one-time K, an output of the
// token's HMAC, passes through process memory for one operation, cleared
// afterwards.
//
// # Limits
//
// Key IDs are 1 to MaxKeyID printable ASCII bytes, plaintexts at most
// MaxPlaintext bytes, encoded encryption contexts at most MaxContext bytes,
// blobs at most MaxBlob bytes. Every decoder is strict (no trailing bytes)
// and returns an error wrapping ErrMalformed or ErrVersion; a failed open
// returns ErrOpen and says nothing more.
package hbk

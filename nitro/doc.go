// Package nitro parses and verifies AWS Nitro Enclaves attestation
// documents, as a KMS host must before it honours a Recipient.
//
// # Documents
//
// A document is a COSE_Sign1 (RFC 9052), untagged as the Nitro Secure
// Module emits it (the CBOR tag 18 is tolerated), at most MaxDocument
// bytes (KMS's limit on AttestationDocument). Its protected header is
// exactly {1: -35} (ES384); its payload is a CBOR map with the NSM's nine
// fields: module_id, digest ("SHA384"), timestamp (milliseconds),
// pcrs (1 to 32 entries, indexes 0 to 31, values of 32, 48 or 64 bytes),
// certificate, cabundle ([root, intermediates…], each 1 to 1024 bytes),
// and public_key, user_data and nonce (each absent, CBOR null, or up to
// 1024 bytes). Decoding is strict (github.com/fxamacker/cbor/v2: no
// duplicate map keys, no indefinite lengths, no unknown fields, nothing
// after the value); the COSE structure is github.com/veraison/go-cose's
// UntaggedSign1Message.
//
// # Verification
//
// Verify checks the leaf certificate's chain (the bundle's intermediates)
// up to one of the Verifier's trusted roots, as of the verification time,
// and the ES384 signature over the Sig_structure with the leaf's P-384 key.
// The verification time is the Verifier's clock (time.Now unless set): a
// document is good only while its short-lived leaf is. RootG1 is the AWS
// Nitro Enclaves Root-G1 certificate, bundled. Errors wrap ErrMalformed,
// ErrChain or ErrSignature; none of them repeats the document's bytes.
//
// # CiphertextForRecipient
//
// SealForRecipient builds the CMS EnvelopedData that KMS returns to an
// enclave, byte for byte in KMS's BER layout (cms.go says which), and
// ParseEnvelope and Envelope.Open read it back as the enclave would.
package nitro

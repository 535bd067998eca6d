// Package ceremony is the operator side of quorum ceremonies: operator keys,
// the command file that travels between operators while they sign, the
// status of a command against a domain, and the offline HSM steps (genesis,
// a local change rehearsal) that turn a satisfied command into a domain
// token. `trent operator`, `trent quorum` and `trent domain` are thin
// wrappers around it; docs/ceremonies.md walks through a ceremony.
//
// # Files
//
// Every input is parsed strictly and every error names the package
// ("ceremony: ..."):
//
//   - operator private keys: PEM, "PRIVATE KEY" (PKCS#8, ECDSA P-384) or
//     "ML-DSA-87 PRIVATE KEY" (the 32-byte FIPS 204 seed); one block, no
//     headers, nothing else in the file, mode 0600 (a key file that others
//     can read is refused). A key in a PKCS#11 token is named
//     "pkcs11:DIR:LABEL";
//   - an operator's public entry (Entry): JSON {"id", "alg", "public_key"};
//   - an HSM member: the JSON `trent hsm init` prints (node.Info);
//   - the command file (File): JSON {"signed_command", "summary"}, where
//     signed_command is the base64 of a quorum.SignedCommand and summary is
//     recomputed from it at every write and never trusted on read;
//   - domain tokens: domain.ParseToken.
//
// JSON is read with internal/strictjson: no duplicate keys, no unknown
// fields, no trailing data, a size limit.
//
// # Secrets
//
// PINs and private keys never appear in output or errors. Key files are
// created with mode 0600 and never overwritten; the command file is
// replaced atomically (temporary file, then rename).
//
// # What is checked where
//
// A proposal is checked before anyone signs it: its parameters must decode
// to exactly the bytes the domain package encodes, and it must apply to
// the domain state it names (a dry run of domain.Apply, or of the genesis
// state for CreateDomain), leaving every command type signable by the
// resulting operators unless the proposer allows a lockout. Status runs
// quorum.Evaluate, the same pure function the HSMs run. None of this is
// trusted by the HSMs, which check everything again.
//
// # Concurrency
//
// Functions are safe for concurrent use on distinct files; a Key is owned
// by one goroutine. The PKCS#11 operations open and close their token within
// the call (see package hsm for the module's one-configuration-at-a-time
// rule).
package ceremony

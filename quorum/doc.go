// Package quorum will hold quorum-signed operator commands: their canonical
// encoding, operator signatures (ECDSA P-384, ML-DSA-87) and the rule check.
// Nothing is built here yet; see docs/architecture.md.
package quorum

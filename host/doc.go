// Package host will be the service host: the AWS KMS JSON API with SigV4,
// key policies and grants, the key operations, the pool of authenticated
// sessions to the HSMs, and the audit log. Nothing is built here yet; see
// docs/architecture.md for what is.
package host

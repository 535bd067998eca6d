// Package xks is the XKS proxy conformance suite: black-box checks of an
// endpoint that claims to implement AWS's External Key Store (XKS) Proxy
// API Specification, version 1 (repository aws/aws-kms-xksproxy-api-spec,
// xks_proxy_api_spec.md). `trent conformance xks` runs it;
// docs/conformance.md lists its checks.
//
// # The contract
//
// Each check states one behaviour the specification requires (the shape
// of an answer, a refusal and its error name and HTTP status, the binding
// of the additional authenticated data, the CDIV, SigV4 authentication
// with the service kms-xks-proxy), cites the section, and fails with the
// expected and observed values when the proxy differs. The suite builds
// its requests as raw HTTP, signs them with the aws-sdk-go-v2 v4 signer
// and reads the answers with encoding/json: package xks (Trent's client
// and proxy) is not used, so that a proxy and the document are compared,
// not two copies of one implementation. A check that expects a refusal
// first sends the untampered twin of the request and requires it to be
// served, so that the refusal is the tampering's doing.
//
// The suite needs the proxy's endpoint, URI path, a SigV4 credential it
// accepts, and the ID of an external key that allows encrypt and decrypt.
// Checks needing more declare it: CapEncryptOnly, CapDecryptOnly and
// CapNoUsage (IDs of keys whose usages are restricted so); without them
// they are skipped with the reason, never passed.
//
// # State
//
// The suite changes nothing on the proxy: it encrypts and decrypts with
// the keys it is given and asks for metadata and health. The checks run
// one after another; each is independent of the others.
package xks

// Package xks is AWS's External Key Store (XKS) Proxy API, version 1, as
// published in the XKS Proxy API Specification (repository
// aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md): its wire types, a
// client (what a KMS uses to reach a proxy), and a server handler (what
// `trent xks serve` runs) over a narrow Backend that does the AES-GCM. The
// package is cgo-free; package xks/p11 is the PKCS#11 Backend.
//
// # The API
//
// Four operations, each a POST of a JSON body to a path under the proxy's
// URI path, which is "[/<prefix>]/kms/xks/v1" (AWS's XksProxyUriPath):
//
//	/health                   GetHealthStatus
//	/keys/<keyId>/metadata    GetKeyMetadata
//	/keys/<keyId>/encrypt     Encrypt (AES_GCM)
//	/keys/<keyId>/decrypt     Decrypt (AES_GCM)
//
// Requests are signed with SigV4 under the service name "kms-xks-proxy"
// and the caller's region (SigV4ServiceName). Errors are an HTTP status
// and a JSON body {"errorName": ..., "errorMessage": ...} with the names
// of the specification's table (ValidationException, KeyNotFoundException,
// ...).
//
// # Client
//
// New makes a Client from a Config (endpoint, URI path, SigV4 credential,
// region, TLS configuration, per-call timeout). Health, GetKeyMetadata,
// Encrypt and Decrypt each take a context and are bounded by the Config's
// Timeout (DefaultTimeout if zero). A Client is safe for concurrent use.
// Responses are parsed strictly and checked against the specification's
// invariants (IV of 12 or 16 bytes, a 16-byte tag, ciphertext as long as
// the plaintext, at most 20 bytes of ciphertext metadata, the CDIV when it
// was asked for); one that breaks them is an invalid response.
//
// Every error a call returns is an *Error whose Kind classifies the
// failure so that a KMS can map it to AWS's exceptions, and which unwraps
// to the Kind's sentinel (ErrUnreachable, ErrTimeout, ...):
//
//	Kind                 cause                                  AWS KMS maps it to
//	Unreachable          no TCP or TLS connection               XksProxyUriUnreachableException
//	Timeout              no answer in time; DependencyTimeout   XksProxyUriUnreachableException
//	Throttled            ThrottlingException (429)              XksProxyUriUnreachableException
//	AuthenticationFailed AuthenticationFailedException (401)    XksProxyIncorrectAuthenticationCredentialException
//	InvalidURIPath       InvalidUriPathException (404)          XksProxyInvalidConfigurationException
//	InvalidResponse      malformed or inconsistent answer       XksProxyInvalidResponseException
//	Validation           ValidationException (400)              XksProxyInvalidResponseException
//	Internal             InternalException (500)                XksProxyInvalidResponseException
//	KeyNotFound          KeyNotFoundException (404)             XksKeyNotFoundException (CreateKey)
//	InvalidState         InvalidStateException (400)            XksKeyInvalidConfigurationException (CreateKey)
//	InvalidKeyUsage      InvalidKeyUsageException (400)         XksKeyInvalidConfigurationException (CreateKey)
//	InvalidCiphertext    InvalidCiphertextException (400)       KMSInvalidStateException (Decrypt)
//	AccessDenied         AccessDeniedException (403)            KMSInvalidStateException
//	Unsupported          UnsupportedOperationException (501)    XksKeyInvalidResponseException (CreateKey)
//
// (the specification's "KMS Considerations" table; for cryptographic
// operations AWS answers KMSInvalidStateException for all of them). Kind
// Retryable reports the transient ones. Errors never contain plaintext,
// key material or the secret access key.
//
// # Server
//
// Handler serves the four operations over a Backend: it routes by path
// (a path outside the configured URI path is InvalidUriPathException, a
// method other than POST 405), verifies the SigV4 signature against its
// credentials (AuthenticationFailedException otherwise, including a
// request more than five minutes from the server's clock), decodes the
// body strictly and within bounds, builds the AES-GCM
// additional data as the specification says (AAD), asks the Backend, and
// computes the ciphertext data integrity value (CDIV) when asked for it,
// after a decrypt of the fresh ciphertext (the specification's Appendix C
// order). The Backend sees only key IDs, bytes and the AAD it must use.
// Every request is logged (slog) with its requestMetadata, never its
// plaintext. A Handler accepts several credentials at once and
// SetCredentials replaces them while it serves (a rotation).
// GetHealthStatus's body is read for the log but never refused: the
// specification lists no ValidationException for it. ServerTLS and
// RequireClientCert build the TLS side (the specification's suites, and
// mutual TLS by CA and subject common name).
//
// # Limits
//
// Requests: the body at most MaxBodySize bytes; plaintext and ciphertext
// at most MaxDataSize bytes and additional authenticated data at most
// MaxAADSize (the specification's minimums are 4300 and 8192); ciphertext
// metadata at most 20 bytes; key IDs 1 to 128 characters of A-Z, a-z,
// 0-9, '-', '.', '_'; ARNs and other metadata strings at most 2048
// characters. A value above a limit the specification sets is a
// ValidationException; one within the specification but above this
// implementation's is an UnsupportedOperationException (501), as the
// specification asks.
package xks

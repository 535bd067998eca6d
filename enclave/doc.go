// Package enclave runs simulated AWS Nitro Enclaves against Trent's KMS:
// the parent instance's proxy (vsock-proxy's analog, Proxy) and an
// enclave process that runs kmstool_enclave_cli's commands (Run, which
// starts it, and Boot, which it runs). It is what `trent enclave proxy`
// and `trent enclave run` do.
//
// # The flow
//
// Run starts the enclave as a separate OS process: the trent binary again
// (RunConfig.Exe, its hidden "enclave boot" subcommand), with arguments
//
//	--image ABS --nsm ABS --proxy ADDR --region R [--debug] -- COMMAND…
//
// the root directory as working directory, no standard input, and an
// environment holding nothing but AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// and AWS_SESSION_TOKEN, copied from the parent's environment, and only
// when the command gives no --aws-access-key-id of its own. The process
// (BootMain, then Boot) makes an RSA-2048 key pair; measures the image
// (nitro.MeasureImage: PCR0-2, zero in debug mode, the other PCRs zero);
// has the simulated NSM sign an attestation document for those PCRs and
// its public key; and runs the command with the aws-sdk-go-v2 KMS client,
// passing the document as the Recipient (RSAES_OAEP_SHA_256):
//
//	decrypt --ciphertext B64 [--key-id K --encryption-algorithm A]   PLAINTEXT: <b64>
//	genkey --key-id K --key-spec AES-256|AES-128                     CIPHERTEXT: <b64>, PLAINTEXT: <b64>
//	genrandom --length N                                             PLAINTEXT: <b64>
//
// It checks that KMS answered with a CiphertextForRecipient only, sealed
// to its own key (the CMS recipient's SubjectKeyIdentifier), opens it
// (nitro.Envelope.Open) and prints kmstool's lines on standard output.
// Every connection of its HTTP client goes to the proxy address, whatever
// the request's URL (http://kms.REGION.amazonaws.com, the name SigV4
// signs); HTTP_PROXY and the like are not read. Standard error gets one
// "[enclave]" line (module ID, PCR0, the public key's hash) and errors,
// "enclave: OP: Code: message" for KMS exceptions (KMSError). The exit
// status is 0, 1 for a failed command, 2 for a bad boot command line;
// Run returns an *ExitError for a non-zero one.
//
// Proxy forwards each connection it accepts on a Unix socket (the
// stand-in for a vsock port) or a loopback TCP address, byte for byte and
// passing half-closes on, to one TCP endpoint, which must be on its
// allowlist or it refuses to start. It serves at most MaxConns
// connections at once (the others wait in the listen backlog), logs one
// line per connection (addresses, byte counts, duration; never payloads),
// and on cancellation closes its listener (removing the socket file) and
// every open connection.
//
// # What is real
//
// The attestation document (COSE_Sign1, ES384, the certificate chain, the
// NSM's fields) and its verification by the KMS hosts and the HSMs; the
// key policy's kms:RecipientAttestation:ImageSha384 and :PCRn condition
// keys; the CiphertextForRecipient (CMS EnvelopedData, RSAES-OAEP-SHA256,
// AES-256-CBC) and its opening; the enclave's key, made in the enclave
// process and never written, printed or passed anywhere; the process
// boundary and the scrubbed environment; the proxy's sockets and bytes;
// SigV4 (the secret key never crosses the proxy). On Linux, when the proxy
// is a Unix socket, the enclave process also gets user and network
// namespaces of its own (NetNS "auto", the default; "on" requires them,
// "off" never): it has no network interface but its own loopback, so the
// socket file is its only way out, as vsock is an enclave's. Where the
// system refuses the namespaces, "auto" falls back to the parent's
// network and says so; the client then reaches KMS through the proxy by
// construction, not by confinement.
//
// # What is simulated, and not modelled
//
//   - Isolation: the enclave is an ordinary process of the parent's user
//     on the parent's kernel. Its memory is not protected from the parent
//     (ptrace, /proc/PID/mem, core dumps); a Nitro hypervisor's is.
//   - The NSM: a CA hierarchy in a file of the dev data dir
//     (DIR/nitro/sim-nsm.pem), which the enclave process reads. Whoever
//     can read that file can make documents for any PCRs and any key, the
//     parent included: the simulation shows what KMS checks, not that the
//     parent cannot forge. Only a dev domain trusts that root.
//   - The image is measured, not run: the code in the enclave process is
//     trent's kmstool, whatever the image holds. PCR3/4 (parent role and
//     instance) and PCR8 (signing certificate) are zero; there is no
//     nonce or user data.
//   - No TLS between the enclave and KMS: the dev KMS serves plain HTTP,
//     so the parent (and the proxy) could read requests and answers. They
//     hold ciphertexts, the document and CMS envelopes, signed requests
//     but no secret key, and no plaintext, because KMS answers a
//     Recipient request with a CiphertextForRecipient only.
//   - The enclave's output: kmstool prints plaintexts on its standard
//     output, which a real enclave's application reads inside the
//     enclave. Here the process's standard output is the caller of
//     trent enclave run, i.e. the parent. This models the KMS side of the
//     boundary (only the attested image's key opens the answer), not the
//     confidentiality of what the enclave application does next.
//
// # Trust boundaries
//
// KMS (hosts and HSMs) trusts attestation documents that chain to the
// domain's roots (the AWS Nitro root and, in a dev domain, the simulated
// NSM's), and the key policy decides what an attested image may do. The
// parent is outside the boundary: it holds the credentials, runs the
// proxy and hands ciphertexts in, and is refused what the policy keeps
// for an attested image. The enclave process is inside: its key pair and
// the plaintexts it opens exist only in its memory.
package enclave

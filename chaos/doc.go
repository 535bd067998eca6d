// Package chaos is Trent's fault-injection suite: a nemesis against a
// concurrent workload over a cluster of processes (dev.Start with
// Options.Exec), with the history checked afterwards, after etcd's
// robustness suite.
//
// # What a run does
//
// Run starts a fresh cluster (three HSM nodes, three service hosts, every
// host serving the KMS API), runs the Workload (several aws-sdk-go-v2
// clients with retries off, spread over the hosts' KMS endpoints) for the
// scenario's duration, injects the Scenario's fault (kill -9 and restart
// of the raft leader, a follower or an HSM; SIGSTOP/SIGCONT of the leader;
// a restart of everything; a partition of the leader; a domain change
// with an HSM down) and heals it, then verifies after healing: every
// acknowledged key and alias is found, and every acknowledged ciphertext
// decrypts to its plaintext, on every host; every HSM reaches the latest
// state version. Every operation, the verification's included, is
// recorded in a History with its invoke and return times and outcome.
//
// # The model and what counts as misleading
//
// Check judges a History:
//
//   - Linearizability (github.com/anishathalye/porcupine) of the key
//     management operations against a model of the API, partitioned by key
//     (existence, enabled state, key policy; Encrypt, GenerateDataKey and
//     Decrypt read the enabled state) and by alias (its target key). A
//     write that failed with a retryable error (HTTP 5xx,
//     KMSInternalException, DependencyTimeoutException, throttling, a
//     timeout, a connection error) may or may not have happened: it is
//     checked as an operation that never returned. Reads that failed
//     retryably are left out.
//   - Misleading answers: a permanent error (HTTP 4xx) that the history
//     proves false when the request began: NotFoundException for a key or
//     alias whose creation was acknowledged before, InvalidCiphertext for
//     an acknowledged ciphertext, DisabledException or
//     KMSInvalidStateException while the key was certainly enabled,
//     AlreadyExistsException for an alias never created, and any other
//     4xx the workload's well-formed requests should never get.
//   - Lost writes: an acknowledged key, alias or ciphertext that the
//     verification still cannot find (or open) on some host once the
//     fault is healed and the retries are exhausted.
//   - Unavailability: the spans in which consecutive requests of one kind
//     to one host failed (p50 and max).
//
// # Limits
//
// Keys are never deleted and the workload only names keys, aliases and
// ciphertexts whose creation was acknowledged, so the model can treat a
// key's existence as settled once created. A Run needs root for the
// network namespaces of the partition scenario (Network); without them
// that scenario is skipped with the reason. A Run is not safe to run
// concurrently with another in one process; a History and its recorders
// are safe for concurrent use.
package chaos

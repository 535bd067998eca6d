// Package kms is the AWS KMS API of a service host: key management,
// aliases, tags, key policies, grants, rotation and the cryptographic
// operations, each as a handler that package kmsapi serves (SigV4, strict
// bodies, KMS exception shapes and the audit trail are kmsapi's).
//
// # The Service
//
// A Service holds no state of its own but caches: every key, alias and
// grant is a record of a Store, and every secret operation is a command
// to an HSM. New makes one from a Config; Operations is the table kmsapi
// serves; IsWrite says which operations a raft follower must forward to
// the leader; KeyMaintenance deletes keys past their pending window,
// pushes multi-Region primary keys' pending rotations to their replica
// regions (mrkrotation.go) and rotates keys whose automatic rotation is
// due (the host's leader calls it periodically). A Service is safe for concurrent use; KeyMaintenance
// is meant to run one call at a time.
//
// GetKeyLastUsage is fed without a write per request (usage.go): each
// successful cryptographic operation notes its keys' usage in the
// Service's memory; PendingUsage hands a host's noted usages over and
// MergeUsage, on the leader, commits the newest of every host's as the
// keys' usage records. A use is visible at once on the host that served
// it and elsewhere once merged.
//
// # The two interfaces
//
// Store is the replicated key store: Sync is a read barrier, Get and
// Records read the local replica, Propose commits a set of
// compare-and-swap replacements as one entry and reports ErrConflict when
// a record changed since it was read. Every operation but GenerateRandom
// (the table's local flag) calls Sync before its handler, so its reads
// see every write the cluster acknowledged before the request began
// (linearizable reads: a NotFound, Disabled or InvalidCiphertext answer is
// true for the cluster); when Sync fails the answer is Sync's retryable
// error, never a 4xx. Every write is read-modify-CAS, retried a few times
// on ErrConflict before it answers ConflictException. The host's Store is
// its raft FSM with the read index of the raft paper as Sync, and the
// leader's log for Propose; writes reach the leader because kmsapi
// forwards every operation the table marks as a write.
//
// HSM runs one command, a typed request of package hsmcmd, on some HSM of
// the domain; the Service sends every command through one helper (call
// in service.go), which parses the answer with the request's
// Parse…Response, so no file here encodes or decodes a command's bytes.
// The implementation owns the encoding, batching, the choice of HSM, and
// the one resynchronisation policy: a refusal is retried once after the
// HSMs are offered the latest domain token; a refusal that persists wraps
// ErrRefused. The Service maps ErrRefused to the operation's exception
// (InvalidCiphertextException for a ciphertext that does not open) and
// any other HSM error to KMSInternalException (HTTP 500, which clients
// retry), never to a statement about the request.
//
// # Custom key stores
//
// Two optional interfaces connect a host to customers' key stores:
// KeyStores opens a PKCS#11 token (CustomKeyStoreType AWS_CLOUDHSM;
// package p11store implements it) and XKSProxies makes clients of XKS
// proxies (EXTERNAL_KEY_STORE; package xksstore). A store is a record of
// the Store, its secret (kmsuser PIN, XKS secret access key) sealed by an
// HSM; each host keeps its own connection to each store the cluster wants
// connected (KeyStoreMaintenance, which the host runs on every host), and
// the leader records its outcome in the record (customstore.go says how a
// host answers ConnectionState for the cluster). Keys of a PKCS#11 store
// live and are used in its token; keys of an external key store have an
// HBK in the HSMs and an external key, and their ciphertexts need both
// (xks.go).
//
// # The operation table
//
// ops.go declares every operation once: its name, whether it writes the
// key store, whether it is cryptographic (CloudTrail omits its response),
// what a grant may say of it (whether grant constraints apply to it, the
// kinds of key a grant of it may be on), the key usage it needs, and its
// handler. Registration, forwarding, CloudTrail's readOnly, grant
// evaluation and the usage check are derived from the table. Every
// operation that uses a key goes through one pipeline (useKey and use in
// keystore.go): resolve the key or alias, authorize by the key policy and
// grants with the operation's condition keys and kms:RequestAlias, check
// the key's state and usage, then DryRun.
//
// # Tests
//
// The handlers are tested here against an in-memory Store and a software
// HSM built on package hbk (fakes_test.go), in milliseconds; package host
// runs the same API end to end on raft and SoftHSM.
package kms

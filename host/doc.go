// Package host is the service host: a raft voter replicating the domain
// (package domain's FSM: domain state and latest token, key store, command
// history) over TCP or mutual TLS with raft-boltdb stores and file
// snapshots; sessions with the domain's HSMs (package session), read
// through the replicated state; and the four-step change: a signed quorum
// command submitted to any host (followers forward to the leader) is
// exported by one member HSM without enacting it, committed through raft
// (every FSM re-checks it), and the committed token is delivered by every
// host to the HSMs it serves, and offered again periodically so that a
// restarted HSM resyncs.
//
// A host joins raft only with a join request signed by its identity key,
// which the domain must list as a service-host operator. The leader also
// runs scheduled domain key rotation, the EKT re-encryption job, the KMS
// key maintenance (kms.Service.KeyMaintenance), and gathers the hosts' key
// usages for GetKeyLastUsage every Config.UsageEvery (usage.go). The host
// API serves submit, join, status, the raft operations, /metrics, the
// latest token (for an HSM node that rejoins), the read index, the
// readiness (/trent/v1/host/ready and /health), and a host's pending key
// usages (/trent/v1/host/usage).
//
// # Consistency
//
// ReadBarrier is the read index of the raft paper: the leader's commit
// index once a quorum has confirmed its leadership (a barrier entry first
// in each term), learnt by a follower from the leader, then waited for in
// this host's FSM, which records the index it has applied (raft's own
// applied index counts entries handed to the FSM, not applied). Readers
// share rounds. The KMS Store's Sync is this barrier, so every KMS read is
// linearizable; when it cannot be had within MaxReadWait the answer is
// ErrNotReady (a retryable 503 at the KMS API). Ready reports whether the
// host is caught up, holds a domain and has an HSM answering at its
// version.
//
// The AWS KMS API is package kms; the host wires it (kms.go): a kms.Store
// over its FSM and the leader's compare-and-swap entries, a kms.HSM over
// its sessions, the batcher (batch.go) and token delivery, and a
// kmsapi.Server on Config.KMSAddr and at kmsapi.ForwardPath for the
// key-store writes its peers forward to the leader. Host methods are safe
// for concurrent use.
package host

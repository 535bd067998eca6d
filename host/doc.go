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
// runs scheduled domain key rotation, the EKT re-encryption job, and the
// KMS key maintenance (kms.Service.KeyMaintenance). The host API serves
// submit, join, status, the raft operations and /metrics.
//
// The AWS KMS API is package kms; the host wires it (kms.go): a kms.Store
// over its FSM and the leader's compare-and-swap entries, a kms.HSM over
// its sessions, the batcher (batch.go) and token delivery, and a
// kmsapi.Server on Config.KMSAddr and at kmsapi.ForwardPath for the
// key-store writes its peers forward to the leader. Host methods are safe
// for concurrent use.
package host

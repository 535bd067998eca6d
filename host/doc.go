// Package host is the service host: a raft voter replicating the domain
// (package domain's FSM: domain state and latest token, key store, command
// history) over TCP with raft-boltdb stores and file snapshots; sessions with
// the domain's HSMs (package session), read through the replicated state;
// and the four-step change: a signed quorum command submitted to any host
// (followers forward to the leader) is exported by one member HSM without
// enacting it, committed through raft (every FSM re-checks it), and the
// committed token is delivered by every host to the HSMs it serves, and
// offered again periodically so that a restarted HSM resyncs.
//
// A host joins raft only with a join request signed by its identity key,
// which the domain must list as a service-host operator. The KMS API,
// scheduled rotation with EKT re-encryption, and the raft operations commands
// come with later work. Host methods are safe for concurrent use.
package host

// Package domain is the domain as the rest of Trent reads it: its public
// state, the commands that change it, the exported domain tokens that carry
// it to HSMs, and the raft FSM that replicates it with the key store across
// service hosts. docs/protocol.md specifies every byte. The package needs no
// cgo and no PKCS#11: the HSM side (drawing domain keys, unwrapping a
// token's key set in the token) is package hsm/node's.
//
// # State and commands
//
// State is a domain's public state (name, version, member HSMs, operators
// and their roles, quorum rules, retention, domain key records, attestation
// roots) with a canonical encoding (Marshal, ParseState). Genesis builds
// version 1 from a CreateDomain command; Apply gives the state after a
// quorum-signed command. Both are pure functions of their arguments: the
// time a command is checked at is an argument, the record of a new domain
// key (drawn by an HSM) is an argument, the state given is not changed, and
// the same inputs give the same state byte for byte on every HSM and host.
//
// # Tokens
//
// SealToken exports a state, its command and the domain keys, signed by the
// exporting HSM, with the key set wrapped once for every member (one-pass
// C(1,2)); ParseToken, Parsed.Verify and Parsed.OpenKeys read it back.
// VerifyTransition is the one rule every HSM and every FSM applies to a
// token: the next version, exported by a member, holding exactly the state
// that Apply (or Genesis) makes of the current one with its command.
//
// # Replication
//
// FSM implements raft.FSM over four entry types (EntryDomain, EntryPutKey,
// EntryDeleteKey, EntryReplaceKeys; the first byte of an entry). It is a
// thin wrapper around a pure transition function: a dispatch table selects
// the entry's step, which decides the change from the current state and
// the entry alone (a domain entry carries the leader's time, since no step
// reads a clock; there is no randomness and no map iteration), and the FSM
// commits it. A refused entry changes nothing and returns an error wrapping
// ErrEntry. Snapshots are canonical, so two FSMs given the same entries hold
// byte-identical snapshots; Restore decodes a whole new state before
// swapping it in. Reads (State, Key, Keys, Records, History) are safe
// concurrently with Apply.
//
// # Views
//
// View is the public part of a domain read from a strictly parsed JSON
// file, for `trent hsm serve --domain` (a single-member domain without a
// genesis ceremony).
package domain

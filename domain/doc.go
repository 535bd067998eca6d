// Package domain will hold the domain state (members, operators, rules,
// domain keys by ID), the exported domain token, and the raft FSM that
// replicates the domain, the key store and the command history across the
// service hosts. Nothing is built here yet; see docs/architecture.md.
package domain

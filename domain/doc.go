// Package domain holds the domain as the rest of Trent reads it. Today that
// is View: the public part of a domain (name, state version, operators and
// their roles, member HSMs) read from a strictly parsed JSON file, which is
// what `trent hsm serve` and `trent dev` use. The quorum-managed domain
// state, the exported domain token and the raft FSM replicating the domain,
// the key store and the command history come with the issues that build
// them and will replace the file.
package domain

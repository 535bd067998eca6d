// Package quorum holds quorum-signed operator commands: their canonical
// encoding, operator signatures (ECDSA P-384 or ML-DSA-87), and the rule
// check, a pure function from (rules, operators, state, command,
// signatures, time) to a Result: satisfied, pending with what is missing, or
// rejected with why. docs/protocol.md specifies the bytes; testdata/ holds
// known-answer vectors.
//
// # Rules
//
// For each command type the domain keeps a list of alternative rules; a rule
// is a set of requirements {role, N}; a command is satisfied when every
// requirement of one alternative is met by distinct signers holding that
// role. An operator holds one role and counts once however often it signs.
// Any signature that does not verify, or that comes from no operator of the
// domain, rejects the command: a ceremony never proceeds past a bad
// signature. A command names the domain and the state version it applies
// to, so it applies at most once: applying it moves the state on.
//
// # Concurrency
//
// Everything here is a value or a pure function, safe for concurrent use.
package quorum

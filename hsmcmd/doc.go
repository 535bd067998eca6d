// Package hsmcmd is the contract between a service host and an HSM node:
// the commands a host sends inside session envelopes (session.Envelope's
// type and plaintext) and the answers an HSM returns in session
// responses. It holds every command code, a typed request and a typed
// response per command with Marshal and Parse side by side, and the pure
// helpers both ends share (key spec and algorithm codes, public-key
// encodings, the Recipient key rule). docs/protocol.md, Commands, gives
// the same byte layouts.
//
// The package does no cryptography with keys and touches no token: it
// imports neither hsm nor hsm/node nor PKCS#11, so a host, a test or
// another implementation can use it without cgo.
//
// # Encodings
//
// Integers are big-endian; v8, v16 and v24 are a u8, u16 or u24 length and
// that many bytes. Every variable field has a maximum (a Max constant, or
// the length prefix's own limit where the HSM decides further, as stated
// on the field); Parse functions refuse a field over its maximum, a
// truncated message and any byte after the last field, and wrap
// ErrMalformed. Some messages end with a field that is the rest of the
// message (a blob, a signature, a Ping's payload): those have no length
// prefix, as in protocol version 1.
//
// Parse functions return byte fields that alias their input, except
// ParseBatchResponse, ParseReencryptEKTsRequest and
// ParseReencryptEKTsResponse, which copy (their callers clear the input).
// Marshal methods refuse what their Parse would refuse.
//
// # Concurrency
//
// Messages are plain values; the package has no state. The tables
// (SpecNames, AlgNames) must not be modified.
package hsmcmd

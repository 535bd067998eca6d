// Package session is the protocol between service hosts and HSMs: the
// C(2,2) ECDHE P-384 handshake that gives both ends a session key SK, the
// EKT that lets any HSM of the domain recover SK, the Envelopes that carry
// commands under SK, and one-pass C(1,2) key transport. docs/protocol.md
// specifies every byte; testdata/ holds known-answer vectors.
//
// # Ends
//
// Host begins a handshake (Begin) and finishes it with the HSM's Reply
// (Finish), giving a Session that seals commands (Seal) and opens the
// responses (Open). HSM answers Hellos (Handshake) and opens Envelopes
// (Open), returning a Request whose Seal binds the response to it. The
// HSM's signing key, ephemeral keys, RNG and domain keys are the token's
// (package hsm); Z, the negotiated key NK and SK live in process memory and
// are cleared after use (SK stays cached by session ID, bounded, and is
// cleared on eviction).
//
// # Hybrid key establishment
//
// The handshake and the one-pass message also exist in a hybrid form
// (header version VersionHybrid): ML-KEM-1024 (FIPS 203, circl's) beside
// P-384, the shared secret Z_ecdh ‖ Z_mlkem fed to the same one-step KDF
// as RFC 10024's SecP384r1MLKEM1024 does, so that a recorded exchange stays
// secret while either holds. Host.Hybrid chooses the mode of a Hello; an
// HSM answers in the Hello's mode and refuses a classical Hello when its
// Directory implements HybridPolicy and requires hybrid (ErrHybridRequired,
// Alert 26). SealOnePassHybrid and OpenOnePassHybrid are the one-pass
// form, for recipients with long-lived ML-KEM keys (Member.KEM).
//
// # Domain view
//
// The protocol reads the domain through two small interfaces: Directory
// (domain name and version, service hosts, member HSMs) and KeyRing (the
// HSM's domain keys, one active). StaticDirectory and MemoryKeyRing are
// the implementations here; an HSM node (package hsm/node) swaps a
// StaticDirectory made from each domain state it adopts, and a service host
// reads its directory from the raft-replicated domain state (domain.FSM).
//
// # Transport
//
// Server serves an HSM on one port: frames (frame.go: a 24-byte preface,
// then length ‖ stream ‖ kind ‖ body, several in flight) to hosts, and
// HTTP/2 for tools, tokens and metrics, told apart by the first byte.
// Client is a host's client of its domain's HSMs: one frame connection to
// each, dialled on first use and after it breaks (a broken connection
// fails its calls with a retryable transport error, never an Alert),
// falling back to HTTP/2 for an HSM that does not speak frames, and
// renegotiating the session before it expires. FrameConn carries Hellos
// and Envelopes its caller makes itself on such a connection, in frames
// only, for tools that test an HSM.
//
// # Concurrency and limits
//
// Session, HSM and MemoryKeyRing are safe for concurrent use. Commands and
// responses are at most MaxCommandLen bytes; every decoder is strict (no
// trailing bytes, lengths within their documented maxima) and returns an
// error wrapping ErrMalformed or ErrVersion.
package session

// Package hsm is the HSM conformance suite: black-box checks of one HSM
// endpoint over the wire protocol of docs/protocol.md, the suite acting as
// a service host of the domain. `trent conformance hsm` runs it;
// docs/conformance-suite-hsm.md lists its checks.
//
// # The contract
//
// Each check states one behaviour the protocol specifies (a derivation of
// the handshake, a refusal and its Alert code, the replay window, the trust
// rule of domain tokens, the quorum rule), cites the section of
// docs/protocol.md, and fails with the expected and observed values when
// the HSM differs. The suite encodes, signs, derives and seals the
// protocol's objects itself, from the document and the Go standard library
// (nothing of them with package session), so that an HSM and the document
// are compared, not two copies of one implementation. Domain tokens and
// quorum commands are built and read with packages domain and quorum.
//
// # Transport
//
// The Hellos and Envelopes travel as hosts send them, in frames on one
// connection (Config.Transport TransportFrames, the default), carried by
// session.FrameConn: the frame connection of session.Client, which only
// moves the suite's bytes and, unlike a Client, never falls back to
// HTTP/2, so an HSM that does not speak frames fails instead of being
// tested over HTTP/2 unnoticed. TransportHTTP2 posts them as HTTP/2
// requests (an HSM of an earlier release). Domain tokens go over HTTP/2
// either way. The frame layer's checks (HSM-FRM-*) write prefaces and
// frames themselves, byte by byte from the document, on connections of
// their own; they need CapFrames, which TransportHTTP2 lacks.
//
// The suite needs the domain token of the state the HSM holds (its name,
// version, members, operators, rules and keys) and the key of a
// service-host operator of the domain. Checks needing more declare it:
// CapOperators (operator keys, to sign quorum commands the rules allow) and
// CapDomainChange (leave to import the next state version into the HSM,
// which no service host of it may then follow); without it they are
// skipped with the reason, never passed. A check that finds at run time
// that it cannot run (no operator without the service-host role, an EKT
// validity period longer than MaxWait) is skipped too.
//
// # State
//
// Only HSM-TOK-002 changes the HSM's domain (to the next version, for a
// command that changes nothing else: SetRetention to the current
// retention); the suite then follows it, and Env.Token is the token of the
// state the HSM holds. A check that could move an HSM that breaks the
// protocol to a state the suite cannot follow offers it the current token
// again when it ends. Sessions, Exports and refused imports change nothing
// an HSM keeps. The checks run one after another; HSM-TOK-003 uses a token
// that HSM-TOK-002 superseded if no older token is given.
package hsm

package session

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// TypeAlert is the object an HSM returns instead of a Reply or a Response
// when it refuses a message. Alerts are not authenticated: a host treats one
// as a failed exchange, never as a statement it relies on.
const TypeAlert byte = 0x07

// MaxAlertMessage bounds an Alert's text.
const MaxAlertMessage = 255

// ErrUnknownCommand means the HSM has no handler for the command type.
var ErrUnknownCommand = errors.New("session: unknown command type")

// ErrInternal means the HSM failed for a reason of its own (its token, say).
var ErrInternal = errors.New("session: internal HSM error")

// ErrRefused means the HSM refused a well-formed request for a reason of
// the command's own (a quorum not met, a stale domain token); the Alert's
// message says which. Command handlers wrap such errors in it.
var ErrRefused = errors.New("session: request refused")

// ErrTokenKeyNotHeld means the HSM refused a command because a key token
// in it is sealed under a domain key the HSM does not hold (it lags a
// domain change, or the token's domain key was dropped): a state of the
// HSM or of the key store, never of the request. Hosts deliver the latest
// domain token and retry; a refusal that persists is their internal error.
var ErrTokenKeyNotHeld = errors.New("session: a key token is under a domain key this HSM does not hold")

// ErrKeyMaterial means the HSM refused imported key material that
// unwrapped but is not key material of the key's spec (the request's
// fault: KMS's IncorrectKeyMaterialException).
var ErrKeyMaterial = errors.New("session: the imported key material is not valid for the key")

// ErrUntrustedPeer means a multi-Region key transport names a region that
// is no peer region of the HSM's domain, or comes from an HSM that is no
// member of that peer region (docs/protocol.md, Multi-Region keys).
var ErrUntrustedPeer = errors.New("session: not a member HSM of a trusted peer region")

// ErrPeerContext means a multi-Region key transport was made for another
// key or another pair of domains than the request names.
var ErrPeerContext = errors.New("session: transport for another key or domain")

// alertCodes is the wire code of each sentinel; docs/protocol.md lists them.
// AlertFor takes the first that an error wraps: the peer-region refusals
// come before ErrRefused, which their handlers also wrap.
var alertCodes = []struct {
	code uint16
	err  error
}{
	{1, ErrMalformed}, {2, ErrVersion}, {3, ErrInvalidPoint}, {4, ErrDomainMismatch},
	{5, ErrClockSkew}, {6, ErrUnknownHost}, {7, ErrNotServiceHost}, {8, ErrNotMember},
	{9, ErrBadSignature}, {10, ErrBadReply}, {11, ErrAuthentication}, {12, ErrKeyNotRetained},
	{13, ErrNoActiveKey}, {14, ErrExpired}, {15, ErrNotYetValid}, {16, ErrWrongHost},
	{17, ErrSessionMismatch}, {18, ErrReplay}, {19, ErrNotRecipient}, {20, ErrUnknownCommand},
	{21, ErrInternal}, {22, ErrSessionClosed}, {28, ErrUntrustedPeer}, {29, ErrPeerContext}, {23, ErrRefused},
	{24, ErrTokenKeyNotHeld}, {25, ErrKeyMaterial}, {26, ErrHybridRequired}, {27, ErrInvalidKEM},
}

// Alert is a refusal on the wire.
type Alert struct {
	Code    uint16
	Message string
}

// AlertFor makes the Alert for err: the code of the first sentinel err
// wraps, else ErrInternal's with no detail (an internal error's text may say
// more than the host should learn).
func AlertFor(err error) *Alert {
	for _, a := range alertCodes {
		if errors.Is(err, a.err) {
			msg := err.Error()
			if len(msg) > MaxAlertMessage {
				msg = msg[:MaxAlertMessage]
			}
			return &Alert{Code: a.code, Message: printable(msg)}
		}
	}
	return &Alert{Code: 21, Message: ErrInternal.Error()}
}

// Err returns the error the Alert stands for: it wraps the sentinel of its
// code (ErrInternal for an unknown code).
func (a *Alert) Err() error {
	for _, c := range alertCodes {
		if c.code == a.Code {
			return &RemoteError{Err: c.err, Message: a.Message}
		}
	}
	return &RemoteError{Err: ErrInternal, Message: a.Message}
}

// RemoteError is an error reported by the other end in an Alert.
type RemoteError struct {
	Err     error  // the sentinel
	Message string // the peer's text, printable ASCII
}

func (e *RemoteError) Error() string { return fmt.Sprintf("session: peer refused: %s", e.Message) }
func (e *RemoteError) Unwrap() error { return e.Err }

// Marshal encodes the Alert.
func (a *Alert) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	addHeader(&b, TypeAlert)
	b.AddUint16(a.Code)
	if len(a.Message) > MaxAlertMessage {
		b.SetError(errors.New("session: alert message too long"))
	}
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(a.Message)) })
	return b.Bytes()
}

// ParseAlert decodes an Alert strictly; its message must be printable ASCII.
func ParseAlert(in []byte) (*Alert, error) {
	s := cryptobyte.String(in)
	a := &Alert{}
	if err := readHeader(&s, TypeAlert); err != nil {
		return nil, err
	}
	var msg cryptobyte.String
	if !s.ReadUint16(&a.Code) || !s.ReadUint8LengthPrefixed(&msg) || printable(string(msg)) != string(msg) {
		return nil, malformed("alert")
	}
	a.Message = string(msg)
	return a, done(s)
}

// printable replaces every byte outside 0x20–0x7e with '?'.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

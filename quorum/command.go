package quorum

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
)

// Object types (docs/protocol.md).
const (
	TypeCommand       byte = 0x10
	TypeSignedCommand byte = 0x11
)

// Limits.
const (
	NonceSize     = 16
	MaxParams     = 1 << 16 // bytes of a command's parameters
	MaxSignatures = 32
	// DefaultExpiry is how long a command is valid by default, as CloudHSM
	// quorum tokens are; MaxExpiry bounds what a proposer may ask for.
	DefaultExpiry = 10 * time.Minute
	MaxExpiry     = 24 * time.Hour
)

// CommandType names what a command does to the domain.
type CommandType uint16

// Command types.
const (
	CreateDomain               CommandType = 1
	AddMember                  CommandType = 2
	RemoveMember               CommandType = 3
	AddOperator                CommandType = 4
	RemoveOperator             CommandType = 5
	SetRule                    CommandType = 6
	RotateDomainKeys           CommandType = 7
	SetRetention               CommandType = 8
	SetTrustedAttestationRoots CommandType = 9
	// SetSessionPolicy sets whether the domain requires hybrid
	// (ML-KEM-1024 + P-384) key establishment and the members' ML-KEM
	// keys. A domain without a rule of its own for it applies its SetRule
	// rule (Rules.For).
	SetSessionPolicy CommandType = 10
	// SetPeerRegion records (or, with no members, forgets) another
	// region's domain whose member HSMs may send this domain multi-Region
	// key material (docs/protocol.md, Multi-Region keys). A domain without
	// a rule of its own for it applies its AddMember rule (Rules.For).
	SetPeerRegion CommandType = 11
)

// CommandTypes lists every command type, in order.
var CommandTypes = []CommandType{CreateDomain, AddMember, RemoveMember, AddOperator, RemoveOperator,
	SetRule, RotateDomainKeys, SetRetention, SetTrustedAttestationRoots, SetSessionPolicy, SetPeerRegion}

var commandNames = map[CommandType]string{
	CreateDomain: "CreateDomain", AddMember: "AddMember", RemoveMember: "RemoveMember",
	AddOperator: "AddOperator", RemoveOperator: "RemoveOperator", SetRule: "SetRule",
	RotateDomainKeys: "RotateDomainKeys", SetRetention: "SetRetention",
	SetTrustedAttestationRoots: "SetTrustedAttestationRoots",
	SetSessionPolicy:           "SetSessionPolicy", SetPeerRegion: "SetPeerRegion",
}

func (t CommandType) String() string {
	if n, ok := commandNames[t]; ok {
		return n
	}
	return fmt.Sprintf("CommandType(%d)", uint16(t))
}

// ParseCommandType is the inverse of String for known types.
func ParseCommandType(s string) (CommandType, error) {
	for t, n := range commandNames {
		if n == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("quorum: unknown command type %q", s)
}

// Errors for malformed input.
var (
	ErrMalformed = errors.New("quorum: malformed message")
	ErrVersion   = errors.New("quorum: unsupported protocol version")
)

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

func readHeader(s *cryptobyte.String, typ byte) error {
	return wire.CheckHeader(s, typ, ErrMalformed, ErrVersion)
}

// Command is an operator command, as proposed and signed.
type Command struct {
	Domain       string
	StateVersion uint64 // the state version it applies to
	Type         CommandType
	Params       []byte // the type's parameters, encoded by the domain package
	Nonce        [NonceSize]byte
	IssuedAt     uint64 // Unix seconds
	ExpiresAt    uint64
}

// Marshal encodes the command: these are the bytes operators sign.
func (c *Command) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeCommand)
	wire.AddID(&b, c.Domain)
	b.AddUint64(c.StateVersion)
	b.AddUint16(uint16(c.Type))
	if len(c.Params) > MaxParams {
		b.SetError(errors.New("quorum: parameters too long"))
	}
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.Params) })
	b.AddBytes(c.Nonce[:])
	b.AddUint64(c.IssuedAt)
	b.AddUint64(c.ExpiresAt)
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("quorum: %w", err)
	}
	return out, nil
}

// ParseCommand decodes a command strictly.
func ParseCommand(in []byte) (*Command, error) {
	s := cryptobyte.String(in)
	c := &Command{}
	if err := readHeader(&s, TypeCommand); err != nil {
		return nil, err
	}
	if !wire.ReadID(&s, &c.Domain) {
		return nil, malformed("domain")
	}
	var typ uint16
	var params cryptobyte.String
	if !s.ReadUint64(&c.StateVersion) || !s.ReadUint16(&typ) ||
		!s.ReadUint24LengthPrefixed(&params) || len(params) > MaxParams ||
		!s.CopyBytes(c.Nonce[:]) || !s.ReadUint64(&c.IssuedAt) || !s.ReadUint64(&c.ExpiresAt) {
		return nil, malformed("command fields")
	}
	c.Type = CommandType(typ)
	c.Params = append([]byte(nil), params...)
	if !s.Empty() {
		return nil, malformed("trailing bytes")
	}
	return c, nil
}

// NewCommand makes a command for the domain at version, with a fresh nonce
// from rand, issued now and expiring after expiry (DefaultExpiry if zero).
func NewCommand(domain string, version uint64, typ CommandType, params []byte, now time.Time, expiry time.Duration, rand func([]byte) error) (*Command, error) {
	if expiry == 0 {
		expiry = DefaultExpiry
	}
	if expiry < time.Second || expiry > MaxExpiry {
		return nil, fmt.Errorf("quorum: expiry %v outside 1s to %v", expiry, MaxExpiry)
	}
	c := &Command{Domain: domain, StateVersion: version, Type: typ, Params: params,
		IssuedAt: uint64(now.Unix()), ExpiresAt: uint64(now.Add(expiry).Unix())}
	if err := rand(c.Nonce[:]); err != nil {
		return nil, fmt.Errorf("quorum: nonce: %w", err)
	}
	if _, err := c.Marshal(); err != nil {
		return nil, err
	}
	return c, nil
}

// SignedCommand is a command with the signatures gathered so far, one per
// signer, in increasing order of signer ID: what travels between operators
// during a ceremony and to the HSMs.
type SignedCommand struct {
	Command    []byte // the encoded Command
	Signatures []Signature
}

// Marshal encodes the signed command.
func (sc *SignedCommand) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeSignedCommand)
	if len(sc.Command) == 0 || len(sc.Command) > MaxParams+1024 {
		b.SetError(errors.New("quorum: command length out of range"))
	}
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sc.Command) })
	if len(sc.Signatures) > MaxSignatures {
		b.SetError(errors.New("quorum: too many signatures"))
	}
	b.AddUint8(uint8(len(sc.Signatures)))
	for i, sig := range sc.Signatures {
		if i > 0 && sc.Signatures[i-1].Signer >= sig.Signer {
			b.SetError(errors.New("quorum: signatures not in strictly increasing signer order"))
		}
		wire.AddID(&b, sig.Signer)
		b.AddUint8(uint8(sig.Alg))
		if !sig.Alg.validLen(len(sig.Sig)) {
			b.SetError(errors.New("quorum: signature length out of range"))
		}
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig.Sig) })
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("quorum: %w", err)
	}
	return out, nil
}

// ParseSignedCommand decodes a signed command strictly, including the
// command's encoding. It does not verify the signatures.
func ParseSignedCommand(in []byte) (*SignedCommand, *Command, error) {
	s := cryptobyte.String(in)
	if err := readHeader(&s, TypeSignedCommand); err != nil {
		return nil, nil, err
	}
	var cmd cryptobyte.String
	var n uint8
	if !s.ReadUint24LengthPrefixed(&cmd) || !s.ReadUint8(&n) || int(n) > MaxSignatures {
		return nil, nil, malformed("signed command")
	}
	c, err := ParseCommand(cmd)
	if err != nil {
		return nil, nil, err
	}
	sc := &SignedCommand{Command: append([]byte(nil), cmd...)}
	for i := 0; i < int(n); i++ {
		var sig Signature
		var alg uint8
		var v cryptobyte.String
		if !wire.ReadID(&s, &sig.Signer) || !s.ReadUint8(&alg) || !s.ReadUint16LengthPrefixed(&v) {
			return nil, nil, malformed("signature")
		}
		sig.Alg = Alg(alg)
		if !sig.Alg.validLen(len(v)) {
			return nil, nil, malformed("signature algorithm or length")
		}
		if i > 0 && sc.Signatures[i-1].Signer >= sig.Signer {
			return nil, nil, malformed("signatures not in strictly increasing signer order")
		}
		sig.Sig = append([]byte(nil), v...)
		sc.Signatures = append(sc.Signatures, sig)
	}
	if !s.Empty() {
		return nil, nil, malformed("trailing bytes")
	}
	return sc, c, nil
}

// Add adds or replaces sig (one signature per signer), keeping the order.
func (sc *SignedCommand) Add(sig Signature) error {
	out := sc.Signatures[:0:0]
	placed := false
	for _, s := range sc.Signatures {
		switch {
		case s.Signer == sig.Signer:
			continue
		case !placed && sig.Signer < s.Signer:
			out = append(out, sig)
			placed = true
		}
		out = append(out, s)
	}
	if !placed {
		out = append(out, sig)
	}
	if len(out) > MaxSignatures {
		return fmt.Errorf("quorum: more than %d signatures", MaxSignatures)
	}
	sc.Signatures = out
	return nil
}

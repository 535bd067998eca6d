package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// The domain operations, as commands inside a session (docs/protocol.md,
// Commands). Quorum commands and domain tokens authenticate themselves;
// the session adds that only a service host of the domain asks.
const (
	// CmdExport: a signed quorum command in; the next domain token out
	// (the HSM's own state unchanged).
	CmdExport uint16 = 2
	// CmdImport: a domain token in; the new state version (u64) out.
	CmdImport uint16 = 3
	// CmdReencryptEKTs: a batch of EKTs in; each re-sealed under the
	// active domain key, or a refusal code, out.
	CmdReencryptEKTs uint16 = 4
	// CmdDomainStatus: nothing in; the encoded domain state out (empty if
	// the HSM holds none).
	CmdDomainStatus uint16 = 5
	// CmdRandom: u16 n (1 to MaxRandom) in; n bytes of the token's RNG out.
	CmdRandom uint16 = 6
)

// MaxRandom bounds CmdRandom (KMS's GenerateRandom allows 1024 bytes).
const MaxRandom = 1024

// PathToken is where an HSM takes a domain token outside any session: a
// restarted or new HSM has no domain, so no host can open a session with
// it; the token authenticates itself.
const PathToken = "/trent/v1/token"

// MaxTokenSize bounds a domain token on the wire.
const MaxTokenSize = 1 << 20

func (n *Node) commands() map[uint16]session.CommandHandler {
	refused := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("%w: %w", session.ErrRefused, err)
	}
	m := map[uint16]session.CommandHandler{
		CmdPing: ping,
		CmdExport: func(r *session.Request) ([]byte, error) {
			sc, _, err := quorum.ParseSignedCommand(r.Command)
			if err != nil {
				return nil, refused(err)
			}
			tok, err := n.Export(sc, time.Now())
			return tok, refused(err)
		},
		CmdImport: func(r *session.Request) ([]byte, error) { return n.importToken(r.Command) },
		CmdReencryptEKTs: func(r *session.Request) ([]byte, error) {
			in, err := ParseEKTBatch(r.Command)
			if err != nil {
				return nil, refused(err)
			}
			out, errs, err := n.ReencryptEKTs(in)
			if err != nil {
				return nil, err
			}
			return MarshalEKTResults(out, errs)
		},
		CmdRandom: func(r *session.Request) ([]byte, error) {
			if len(r.Command) != 2 {
				return nil, refused(errors.New("node: random: want a u16 length"))
			}
			size := int(binary.BigEndian.Uint16(r.Command))
			if size < 1 || size > MaxRandom {
				return nil, refused(fmt.Errorf("node: random: %d bytes, want 1 to %d", size, MaxRandom))
			}
			return n.tok.Random(size)
		},
		CmdDomainStatus: func(*session.Request) ([]byte, error) {
			st, _ := n.DomainState()
			if st == nil {
				return []byte{}, nil
			}
			return st.Marshal()
		},
	}
	n.keyCommands(m, refused)
	n.asymCommands(m, refused)
	n.verifyCommand(m, refused)
	n.recipientCommand(m, refused)
	m[CmdBatch] = batchHandler(m, refused)
	return m
}

func (n *Node) importToken(token []byte) ([]byte, error) {
	if err := n.Import(token, time.Now()); err != nil {
		return nil, fmt.Errorf("%w: %w", session.ErrRefused, err)
	}
	st, _ := n.DomainState()
	return binary.BigEndian.AppendUint64(nil, st.Version), nil
}

// ErrBatch is wrapped by the batch codecs' errors.
var ErrBatch = errors.New("node: malformed EKT batch")

// ParseEKTBatch decodes u16 count ‖ count × v16 EKT (count ≤
// MaxReencryptBatch, each EKT ≤ session.MaxEKTLen).
func ParseEKTBatch(in []byte) ([][]byte, error) {
	s := cryptobyte.String(in)
	var n uint16
	if !s.ReadUint16(&n) || int(n) > MaxReencryptBatch {
		return nil, fmt.Errorf("%w: count", ErrBatch)
	}
	out := make([][]byte, 0, n)
	for range n {
		var e cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&e) || len(e) == 0 || len(e) > session.MaxEKTLen {
			return nil, fmt.Errorf("%w: EKT", ErrBatch)
		}
		out = append(out, append([]byte(nil), e...))
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing bytes", ErrBatch)
	}
	return out, nil
}

// MarshalEKTBatch encodes a batch for CmdReencryptEKTs.
func MarshalEKTBatch(ekts [][]byte) ([]byte, error) {
	var b cryptobyte.Builder
	if len(ekts) > MaxReencryptBatch {
		return nil, fmt.Errorf("%w: %d EKTs", ErrBatch, len(ekts))
	}
	b.AddUint16(uint16(len(ekts)))
	for _, e := range ekts {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e) })
	}
	return b.Bytes()
}

// MarshalEKTResults encodes u16 count ‖ count × (u16 alert code, 0 for
// success ‖ v16 EKT, empty on failure).
func MarshalEKTResults(out [][]byte, errs []error) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(uint16(len(out)))
	for i := range out {
		code := uint16(0)
		if errs[i] != nil {
			code = session.AlertFor(errs[i]).Code
		}
		b.AddUint16(code)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(out[i]) })
	}
	return b.Bytes()
}

// ParseEKTResults decodes MarshalEKTResults' output; a failed entry is a
// nil EKT and the error of its alert code.
func ParseEKTResults(in []byte) ([][]byte, []error, error) {
	s := cryptobyte.String(in)
	var n uint16
	if !s.ReadUint16(&n) || int(n) > MaxReencryptBatch {
		return nil, nil, fmt.Errorf("%w: count", ErrBatch)
	}
	out, errs := make([][]byte, n), make([]error, n)
	for i := range int(n) {
		var code uint16
		var e cryptobyte.String
		if !s.ReadUint16(&code) || !s.ReadUint16LengthPrefixed(&e) || len(e) > session.MaxEKTLen || (code == 0) == (len(e) == 0) {
			return nil, nil, fmt.Errorf("%w: result", ErrBatch)
		}
		if code != 0 {
			errs[i] = (&session.Alert{Code: code}).Err()
			continue
		}
		out[i] = append([]byte(nil), e...)
	}
	if !s.Empty() {
		return nil, nil, fmt.Errorf("%w: trailing bytes", ErrBatch)
	}
	return out, errs, nil
}

package node

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/session"
)

// CmdBatch carries several hierarchy commands in one envelope, so that a
// busy host pays for one request to the HSM rather than one each:
//
//	in:  u16 n (1 to MaxBatch) ‖ n × (u16 command type ‖ v24 command)
//	out: u16 n ‖ n × (u16 alert code, 0 for success ‖ v24 response, empty on failure)
//
// Only the commands in batchable may be batched; each is served as if it
// had come alone and fails alone. The commands of a batch are independent
// (none reads what another writes), so the HSM serves them on all its
// cores at once; the outcomes keep the commands' order.
const CmdBatch uint16 = 12

// MaxBatch bounds the commands of one batch.
const MaxBatch = 64

var batchable = map[uint16]bool{
	CmdRandom: true, CmdEncrypt: true, CmdGenerateDataKey: true, CmdDecrypt: true, CmdReEncrypt: true,
	CmdSign: true, CmdAsymDecrypt: true, CmdGenerateMac: true, CmdVerifyMac: true, CmdDeriveSharedSecret: true, CmdVerify: true,
	CmdRecipient: true,
}

// Batchable reports whether commands of type typ may go in a batch.
func Batchable(typ uint16) bool { return batchable[typ] }

// ErrBatchCommand is wrapped by malformed batches.
var ErrBatchCommand = errors.New("node: malformed batch")

// BatchItem is one command of a batch, or its outcome.
type BatchItem struct {
	Type    uint16
	Command []byte // in: the command; out: the response
	Err     error  // out: the refusal, as an alert's error
}

// MarshalBatch encodes a batch of commands.
func MarshalBatch(items []BatchItem) ([]byte, error) {
	if len(items) == 0 || len(items) > MaxBatch {
		return nil, fmt.Errorf("%w: %d commands", ErrBatchCommand, len(items))
	}
	var b cryptobyte.Builder
	b.AddUint16(uint16(len(items)))
	for _, it := range items {
		if !batchable[it.Type] {
			return nil, fmt.Errorf("%w: command %d cannot be batched", ErrBatchCommand, it.Type)
		}
		b.AddUint16(it.Type)
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(it.Command) })
	}
	return b.Bytes()
}

// ParseBatch decodes a batch of commands strictly.
func ParseBatch(in []byte) ([]BatchItem, error) {
	s := cryptobyte.String(in)
	var n uint16
	if !s.ReadUint16(&n) || n == 0 || n > MaxBatch {
		return nil, fmt.Errorf("%w: count", ErrBatchCommand)
	}
	items := make([]BatchItem, n)
	for i := range items {
		var c cryptobyte.String
		if !s.ReadUint16(&items[i].Type) || !batchable[items[i].Type] || !s.ReadUint24LengthPrefixed(&c) {
			return nil, fmt.Errorf("%w: command %d", ErrBatchCommand, i)
		}
		items[i].Command = c
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing bytes", ErrBatchCommand)
	}
	return items, nil
}

// MarshalBatchResults encodes the outcomes of a batch.
func MarshalBatchResults(items []BatchItem) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(uint16(len(items)))
	for _, it := range items {
		code, resp := uint16(0), it.Command
		if it.Err != nil {
			code, resp = session.AlertFor(it.Err).Code, nil
		}
		b.AddUint16(code)
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(resp) })
	}
	return b.Bytes()
}

// ParseBatchResults decodes the outcomes of a batch of n commands.
func ParseBatchResults(in []byte, n int) ([]BatchItem, error) {
	s := cryptobyte.String(in)
	var count uint16
	if !s.ReadUint16(&count) || int(count) != n {
		return nil, fmt.Errorf("%w: result count", ErrBatchCommand)
	}
	out := make([]BatchItem, n)
	for i := range out {
		var code uint16
		var r cryptobyte.String
		if !s.ReadUint16(&code) || !s.ReadUint24LengthPrefixed(&r) || (code != 0 && len(r) != 0) {
			return nil, fmt.Errorf("%w: result %d", ErrBatchCommand, i)
		}
		if code != 0 {
			out[i].Err = (&session.Alert{Code: code}).Err()
			continue
		}
		out[i].Command = append([]byte(nil), r...)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: trailing bytes", ErrBatchCommand)
	}
	return out, nil
}

// batchHandler serves CmdBatch with the node's own handlers.
func batchHandler(handlers map[uint16]session.CommandHandler, refused func(error) error) session.CommandHandler {
	return func(r *session.Request) ([]byte, error) {
		items, err := ParseBatch(r.Command)
		if err != nil {
			return nil, refused(err)
		}
		serve := func(i int) {
			sub := &session.Request{SessionID: r.SessionID, HostID: r.HostID, Seq: r.Seq, Type: items[i].Type, Command: items[i].Command}
			items[i].Command, items[i].Err = handlers[items[i].Type](sub)
		}
		// Workers take the next unserved command until none is left: a
		// Recipient command (two signature checks, an RSA encryption)
		// costs a hundred small ones, so a fixed split would leave cores
		// idle.
		workers := min(len(items), runtime.GOMAXPROCS(0))
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(items); i = int(next.Add(1) - 1) {
					serve(i)
				}
			})
		}
		wg.Wait()
		out, err := MarshalBatchResults(items)
		for _, it := range items {
			clear(it.Command)
		}
		return out, err
	}
}

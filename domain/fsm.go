package domain

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/internal/wire"
	"github.com/trentkms/trent/quorum"
)

// Raft log entries replicate the domain across service hosts. The first
// byte of an entry is its type (docs/protocol.md, Raft entries):
//
//	EntryDomain     proposed_at u64 ‖ v24 token
//	EntryPutKey     v8 key ID ‖ v24 record
//	EntryDeleteKey  v8 key ID
//	EntryReplaceKeys u16 n ‖ n × (v8 key ID ‖ v24 old record ‖ v24 new record)
//
// proposed_at is the proposing leader's clock: the one time an FSM may use,
// since Apply never reads a clock.
const (
	EntryDomain    byte = 1
	EntryPutKey    byte = 2
	EntryDeleteKey byte = 3
	// EntryReplaceKeys replaces records only where they still hold the old
	// value (a compare-and-swap per record; an empty old value means the
	// record must be absent): a re-encryption batch never overwrites a
	// record changed since the batch was read. An empty new value removes
	// the record.
	EntryReplaceKeys byte = 4
)

// MaxReplaceBatch bounds one EntryReplaceKeys.
const MaxReplaceBatch = 4096

// Limits of entries and snapshots.
const (
	MaxKeyID     = 255
	MaxKeyRecord = 1 << 16
	MaxSnapshot  = 1 << 30
	// TypeSnapshot is the object type of an FSM snapshot.
	TypeSnapshot byte = 0x22
)

// ErrEntry is wrapped by every refusal of a raft entry.
var ErrEntry = errors.New("domain: raft entry refused")

// DomainEntry encodes a domain change for raft: the token (which carries
// its signed command) and the time the leader proposes it.
func DomainEntry(proposedAt uint64, token []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(EntryDomain)
	b.AddUint64(proposedAt)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(token) })
	return b.Bytes()
}

// PutKeyEntry encodes storing a key record under id.
func PutKeyEntry(id string, record []byte) ([]byte, error) {
	if len(id) == 0 || len(id) > MaxKeyID || len(record) > MaxKeyRecord {
		return nil, fmt.Errorf("%w: key ID or record size", ErrEntry)
	}
	var b cryptobyte.Builder
	b.AddUint8(EntryPutKey)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(id)) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(record) })
	return b.Bytes()
}

// Replacement is one record of a replace batch.
type Replacement struct {
	ID       string
	Old, New []byte
}

// ReplaceKeysEntry encodes a batch of compare-and-swap replacements.
func ReplaceKeysEntry(rs []Replacement) ([]byte, error) {
	if len(rs) == 0 || len(rs) > MaxReplaceBatch {
		return nil, fmt.Errorf("%w: batch of %d", ErrEntry, len(rs))
	}
	var b cryptobyte.Builder
	b.AddUint8(EntryReplaceKeys)
	b.AddUint16(uint16(len(rs)))
	for _, r := range rs {
		if len(r.ID) == 0 || len(r.ID) > MaxKeyID || len(r.Old) > MaxKeyRecord || len(r.New) > MaxKeyRecord {
			return nil, fmt.Errorf("%w: key ID or record size", ErrEntry)
		}
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.ID)) })
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.Old) })
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.New) })
	}
	return b.Bytes()
}

// DeleteKeyEntry encodes removing the key record id.
func DeleteKeyEntry(id string) ([]byte, error) {
	if len(id) == 0 || len(id) > MaxKeyID {
		return nil, fmt.Errorf("%w: key ID size", ErrEntry)
	}
	var b cryptobyte.Builder
	b.AddUint8(EntryDeleteKey)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(id)) })
	return b.Bytes()
}

// Record is one applied domain change in the command history.
type Record struct {
	Version    uint64
	Type       quorum.CommandType
	Command    [32]byte // SHA-256 of the encoded command
	Signers    []string
	Exporter   string
	ProposedAt uint64
}

// FSM is the replicated state of the service hosts: the domain's public
// state and latest token, the key store, and the command history. It
// implements raft.FSM. Apply is deterministic (no clock, no randomness, no
// map order) and re-checks every domain entry with VerifyTransition before
// applying it; a refused entry changes nothing. Reads are safe concurrently
// with Apply.
type FSM struct {
	mu      sync.RWMutex
	state   *State
	token   []byte
	keys    map[string][]byte
	history []Record
}

// NewFSM returns an empty FSM.
func NewFSM() *FSM { return &FSM{keys: map[string][]byte{}} }

// ApplyResult is what Apply returns for an applied entry (raft hands it to
// the proposer through ApplyFuture.Response); a refused entry returns an
// error wrapping ErrEntry.
type ApplyResult struct {
	Version uint64 // the domain state version after the entry
	// Replaced counts the records an EntryReplaceKeys changed (those
	// whose old value still held).
	Replaced int
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	replaced, err := f.apply(l.Data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEntry, err)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	var v uint64
	if f.state != nil {
		v = f.state.Version
	}
	return ApplyResult{Version: v, Replaced: replaced}
}

func (f *FSM) apply(data []byte) (int, error) {
	var replaced int
	err := f.applyEntry(data, &replaced)
	return replaced, err
}

func (f *FSM) applyEntry(data []byte, replaced *int) error {
	s := cryptobyte.String(data)
	var typ uint8
	if !s.ReadUint8(&typ) {
		return malformed("empty entry")
	}
	switch typ {
	case EntryDomain:
		var at uint64
		var token cryptobyte.String
		if !s.ReadUint64(&at) || !s.ReadUint24LengthPrefixed(&token) || !s.Empty() {
			return malformed("domain entry")
		}
		p, err := ParseToken(token)
		if err != nil {
			return err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if err := VerifyTransition(f.state, p, int64(at)); err != nil {
			return err
		}
		c, err := quorum.ParseCommand(p.Command.Command)
		if err != nil {
			return err
		}
		rec := Record{Version: p.State.Version, Type: c.Type, Command: sha256.Sum256(p.Command.Command),
			Exporter: p.Token.Exporter, ProposedAt: at}
		for _, sig := range p.Command.Signatures {
			rec.Signers = append(rec.Signers, sig.Signer)
		}
		f.state, f.token = p.State, append([]byte(nil), token...)
		f.history = append(f.history, rec)
		return nil
	case EntryPutKey:
		var id, rec cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&id) || len(id) == 0 || !s.ReadUint24LengthPrefixed(&rec) ||
			len(rec) > MaxKeyRecord || !s.Empty() {
			return malformed("put-key entry")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.keys[string(id)] = append([]byte(nil), rec...)
		return nil
	case EntryDeleteKey:
		var id cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&id) || len(id) == 0 || !s.Empty() {
			return malformed("delete-key entry")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.keys[string(id)]; !ok {
			return fmt.Errorf("no key record %q", id)
		}
		delete(f.keys, string(id))
		return nil
	case EntryReplaceKeys:
		var n uint16
		if !s.ReadUint16(&n) || n == 0 || int(n) > MaxReplaceBatch {
			return malformed("replace entry count")
		}
		rs := make([]Replacement, 0, n)
		for range n {
			var id, old, nw cryptobyte.String
			if !s.ReadUint8LengthPrefixed(&id) || len(id) == 0 || !s.ReadUint24LengthPrefixed(&old) ||
				!s.ReadUint24LengthPrefixed(&nw) || len(old) > MaxKeyRecord || len(nw) > MaxKeyRecord {
				return malformed("replace entry")
			}
			rs = append(rs, Replacement{ID: string(id), Old: old, New: nw})
		}
		if !s.Empty() {
			return malformed("trailing bytes in replace entry")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, r := range rs {
			cur, ok := f.keys[r.ID]
			if (ok && bytes.Equal(cur, r.Old)) || (!ok && len(r.Old) == 0) {
				if len(r.New) == 0 {
					delete(f.keys, r.ID) // an empty new value removes the record
				} else {
					f.keys[r.ID] = append([]byte(nil), r.New...)
				}
				*replaced++
			}
		}
		return nil
	}
	return malformed(fmt.Sprintf("entry type %d", typ))
}

// Records calls fn for every key record in ID order, under the read lock;
// fn must not call the FSM.
func (f *FSM) Records(fn func(id string, record []byte) bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, id := range slices.Sorted(maps.Keys(f.keys)) {
		if !fn(id, f.keys[id]) {
			return
		}
	}
}

// State returns the domain state (nil before genesis) and its token.
func (f *FSM) State() (*State, []byte) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state, f.token
}

// Key returns the key record id.
func (f *FSM) Key(id string) ([]byte, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.keys[id]
	return r, ok
}

// Keys returns the key record IDs, sorted.
func (f *FSM) Keys() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Sorted(maps.Keys(f.keys))
}

// History returns the applied domain changes, oldest first.
func (f *FSM) History() []Record {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.history)
}

// Snapshot implements raft.FSM: the encoding is taken now, under the read
// lock, and written later.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := f.marshal()
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

// marshal encodes the FSM (docs/protocol.md, FSM snapshot); f.mu is held.
func (f *FSM) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeSnapshot)
	var state []byte
	if f.state != nil {
		var err error
		if state, err = f.state.Marshal(); err != nil {
			return nil, err
		}
	}
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(state) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.token) })
	ids := slices.Sorted(maps.Keys(f.keys))
	b.AddUint32(uint32(len(ids)))
	for _, id := range ids {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(id)) })
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.keys[id]) })
	}
	b.AddUint32(uint32(len(f.history)))
	for _, r := range f.history {
		b.AddUint64(r.Version)
		b.AddUint16(uint16(r.Type))
		b.AddBytes(r.Command[:])
		b.AddUint8(uint8(len(r.Signers)))
		for _, s := range r.Signers {
			wire.AddID(&b, s)
		}
		wire.AddID(&b, r.Exporter)
		b.AddUint64(r.ProposedAt)
	}
	return b.Bytes()
}

// Restore implements raft.FSM: it decodes the snapshot into a new FSM
// state, checks it, and only then swaps it in.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxSnapshot+1))
	if err != nil {
		return fmt.Errorf("domain: restore: %w", err)
	}
	if len(data) > MaxSnapshot {
		return malformed("snapshot too large")
	}
	next, err := parseSnapshot(data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state, f.token, f.keys, f.history = next.state, next.token, next.keys, next.history
	return nil
}

func parseSnapshot(data []byte) (*FSM, error) {
	s := cryptobyte.String(data)
	if err := wire.CheckHeader(&s, TypeSnapshot, ErrMalformed, ErrVersion); err != nil {
		return nil, err
	}
	next := NewFSM()
	var state, token cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&state) || !s.ReadUint24LengthPrefixed(&token) {
		return nil, malformed("snapshot state")
	}
	if len(state) > 0 {
		p, err := ParseToken(token)
		if err != nil {
			return nil, err
		}
		if string(p.Token.State) != string(state) {
			return nil, malformed("snapshot state is not its token's")
		}
		next.state, next.token = p.State, append([]byte(nil), token...)
	} else if len(token) > 0 {
		return nil, malformed("snapshot token without state")
	}
	var n uint32
	if !s.ReadUint32(&n) {
		return nil, malformed("snapshot key count")
	}
	prev := ""
	for i := range n {
		var id, rec cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&id) || len(id) == 0 || (i > 0 && string(id) <= prev) ||
			!s.ReadUint24LengthPrefixed(&rec) || len(rec) > MaxKeyRecord {
			return nil, malformed("snapshot key record")
		}
		prev = string(id)
		next.keys[prev] = append([]byte(nil), rec...)
	}
	if !s.ReadUint32(&n) {
		return nil, malformed("snapshot history count")
	}
	for range n {
		var r Record
		var typ uint16
		var ns uint8
		if !s.ReadUint64(&r.Version) || !s.ReadUint16(&typ) || !s.CopyBytes(r.Command[:]) || !s.ReadUint8(&ns) {
			return nil, malformed("snapshot history")
		}
		r.Type = quorum.CommandType(typ)
		for range ns {
			var id string
			if !wire.ReadID(&s, &id) {
				return nil, malformed("snapshot signer")
			}
			r.Signers = append(r.Signers, id)
		}
		if !wire.ReadID(&s, &r.Exporter) || !s.ReadUint64(&r.ProposedAt) {
			return nil, malformed("snapshot history")
		}
		next.history = append(next.history, r)
	}
	if !s.Empty() {
		return nil, malformed("trailing bytes in snapshot")
	}
	return next, nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshot) Release() {}

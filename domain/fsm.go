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
// since no step reads a clock. entrySteps maps each type to its step.
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
	MaxKeyRecord = 1 << 20 // a key record's metadata (keystore.MaxMetadata) and its tokens
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

// replica is the replicated state, what a snapshot holds: the domain's
// public state and latest token, the key store, and the command history.
// Its values are never changed in place once stored (a State, a token, a
// record and a history entry are replaced whole), so readers may keep what
// they were given.
type replica struct {
	state   *State
	token   []byte
	keys    map[string][]byte
	history []Record
}

func newReplica() replica { return replica{keys: map[string][]byte{}} }

func (r *replica) version() uint64 {
	if r.state == nil {
		return 0
	}
	return r.state.Version
}

// change is what one entry does to a replica, decided by step without
// touching it and made by commit.
type change struct {
	domain   *domainChange
	writes   []keyWrite // in entry order
	replaced int        // for EntryReplaceKeys: the records whose old value held
}

type domainChange struct {
	state  *State
	token  []byte
	record Record
}

type keyWrite struct {
	id     string
	record []byte
	remove bool
}

// An entryStep decides what the body of an entry (the bytes after its
// type) does to cur, which it must not change. It depends on nothing but
// its arguments: no clock (a domain entry carries the leader's time), no
// randomness, no map iteration.
type entryStep func(cur *replica, body cryptobyte.String) (change, error)

// entrySteps is the FSM's dispatch table, indexed by an entry's first byte.
var entrySteps = [...]entryStep{
	EntryDomain:      stepDomain,
	EntryPutKey:      stepPutKey,
	EntryDeleteKey:   stepDeleteKey,
	EntryReplaceKeys: stepReplaceKeys,
}

// step is the FSM's transition function, pure: what entry does to cur,
// decided from cur and entry alone, cur unchanged. A refused entry gives
// an error and no change. The same replica and entry give the same change
// on every host.
func step(cur *replica, entry []byte) (change, error) {
	s := cryptobyte.String(entry)
	var typ uint8
	if !s.ReadUint8(&typ) {
		return change{}, malformed("empty entry")
	}
	if int(typ) >= len(entrySteps) || entrySteps[typ] == nil {
		return change{}, malformed(fmt.Sprintf("entry type %d", typ))
	}
	return entrySteps[typ](cur, s)
}

// commit makes ch, which step decided for r.
func (r *replica) commit(ch change) {
	if d := ch.domain; d != nil {
		r.state, r.token = d.state, d.token
		r.history = append(r.history, d.record)
	}
	for _, w := range ch.writes {
		if w.remove {
			delete(r.keys, w.id)
		} else {
			r.keys[w.id] = w.record
		}
	}
}

// stepDomain: proposed_at u64 ‖ v24 token, checked with VerifyTransition
// at proposed_at (domain.Apply, pure, re-derives the token's state).
func stepDomain(cur *replica, s cryptobyte.String) (change, error) {
	var at uint64
	var token cryptobyte.String
	if !s.ReadUint64(&at) || !s.ReadUint24LengthPrefixed(&token) || !s.Empty() {
		return change{}, malformed("domain entry")
	}
	p, err := ParseToken(token)
	if err != nil {
		return change{}, err
	}
	if err := VerifyTransition(cur.state, p, int64(at)); err != nil {
		return change{}, err
	}
	c, err := quorum.ParseCommand(p.Command.Command)
	if err != nil {
		return change{}, err
	}
	rec := Record{Version: p.State.Version, Type: c.Type, Command: sha256.Sum256(p.Command.Command),
		Exporter: p.Token.Exporter, ProposedAt: at}
	for _, sig := range p.Command.Signatures {
		rec.Signers = append(rec.Signers, sig.Signer)
	}
	return change{domain: &domainChange{state: p.State, token: append([]byte(nil), token...), record: rec}}, nil
}

// stepPutKey: v8 key ID ‖ v24 record.
func stepPutKey(_ *replica, s cryptobyte.String) (change, error) {
	var id, rec cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&id) || len(id) == 0 || !s.ReadUint24LengthPrefixed(&rec) ||
		len(rec) > MaxKeyRecord || !s.Empty() {
		return change{}, malformed("put-key entry")
	}
	return change{writes: []keyWrite{{id: string(id), record: append([]byte(nil), rec...)}}}, nil
}

// stepDeleteKey: v8 key ID, which must be present.
func stepDeleteKey(cur *replica, s cryptobyte.String) (change, error) {
	var id cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&id) || len(id) == 0 || !s.Empty() {
		return change{}, malformed("delete-key entry")
	}
	if _, ok := cur.keys[string(id)]; !ok {
		return change{}, fmt.Errorf("no key record %q", id)
	}
	return change{writes: []keyWrite{{id: string(id), remove: true}}}, nil
}

// stepReplaceKeys: u16 n ‖ n × (v8 key ID ‖ v24 old ‖ v24 new), each a
// compare-and-swap in order: a replacement sees the ones before it in the
// same batch.
func stepReplaceKeys(cur *replica, s cryptobyte.String) (change, error) {
	var n uint16
	if !s.ReadUint16(&n) || n == 0 || int(n) > MaxReplaceBatch {
		return change{}, malformed("replace entry count")
	}
	rs := make([]Replacement, 0, n)
	for range n {
		var id, old, nw cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&id) || len(id) == 0 || !s.ReadUint24LengthPrefixed(&old) ||
			!s.ReadUint24LengthPrefixed(&nw) || len(old) > MaxKeyRecord || len(nw) > MaxKeyRecord {
			return change{}, malformed("replace entry")
		}
		rs = append(rs, Replacement{ID: string(id), Old: old, New: nw})
	}
	if !s.Empty() {
		return change{}, malformed("trailing bytes in replace entry")
	}
	var ch change
	batch := map[string]keyWrite{} // this batch's writes so far, by ID (looked up, never iterated)
	for _, r := range rs {
		rec, ok := cur.keys[r.ID]
		if w, seen := batch[r.ID]; seen {
			rec, ok = w.record, !w.remove
		}
		if (ok && bytes.Equal(rec, r.Old)) || (!ok && len(r.Old) == 0) {
			// An empty new value removes the record.
			w := keyWrite{id: r.ID, record: append([]byte(nil), r.New...), remove: len(r.New) == 0}
			batch[r.ID] = w
			ch.writes = append(ch.writes, w)
			ch.replaced++
		}
	}
	return ch, nil
}

// FSM is the replicated state of the service hosts: the domain's public
// state and latest token, the key store, and the command history. It
// implements raft.FSM as a thin wrapper around step, the pure transition
// function: an entry's first byte selects its step in a dispatch table;
// the step decides the change from the current state and the entry alone
// (no clock, no randomness, no map order; a domain entry is re-checked
// with VerifyTransition, which re-derives the state with domain.Apply);
// the FSM then commits it. A refused entry changes nothing. Restore
// decodes a whole new state and only then swaps it in. Reads are safe
// concurrently with Apply.
type FSM struct {
	// writeMu serialises Apply and Restore (raft calls them one at a
	// time already), so that the state a step read is the one its change
	// is committed to.
	writeMu sync.Mutex
	mu      sync.RWMutex // readers against commits
	r       replica
}

// NewFSM returns an empty FSM.
func NewFSM() *FSM { return &FSM{r: newReplica()} }

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
	f.writeMu.Lock()
	defer f.writeMu.Unlock()
	f.mu.RLock()
	ch, err := step(&f.r, l.Data)
	f.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEntry, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.r.commit(ch)
	return ApplyResult{Version: f.r.version(), Replaced: ch.replaced}
}

// Records calls fn for every key record in ID order, under the read lock;
// fn must not call the FSM.
func (f *FSM) Records(fn func(id string, record []byte) bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, id := range slices.Sorted(maps.Keys(f.r.keys)) {
		if !fn(id, f.r.keys[id]) {
			return
		}
	}
}

// State returns the domain state (nil before genesis) and its token.
func (f *FSM) State() (*State, []byte) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.r.state, f.r.token
}

// Key returns the key record id.
func (f *FSM) Key(id string) ([]byte, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.r.keys[id]
	return r, ok
}

// Keys returns the key record IDs, sorted.
func (f *FSM) Keys() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Sorted(maps.Keys(f.r.keys))
}

// History returns the applied domain changes, oldest first.
func (f *FSM) History() []Record {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.r.history)
}

// Snapshot implements raft.FSM: the encoding is taken now, under the read
// lock, and written later.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := f.r.marshal()
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

// marshal encodes the replica (docs/protocol.md, FSM snapshot).
func (r *replica) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	wire.AddHeader(&b, TypeSnapshot)
	var state []byte
	if r.state != nil {
		var err error
		if state, err = r.state.Marshal(); err != nil {
			return nil, err
		}
	}
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(state) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.token) })
	ids := slices.Sorted(maps.Keys(r.keys))
	b.AddUint32(uint32(len(ids)))
	for _, id := range ids {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(id)) })
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.keys[id]) })
	}
	b.AddUint32(uint32(len(r.history)))
	for _, h := range r.history {
		b.AddUint64(h.Version)
		b.AddUint16(uint16(h.Type))
		b.AddBytes(h.Command[:])
		b.AddUint8(uint8(len(h.Signers)))
		for _, s := range h.Signers {
			wire.AddID(&b, s)
		}
		wire.AddID(&b, h.Exporter)
		b.AddUint64(h.ProposedAt)
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
	f.writeMu.Lock()
	defer f.writeMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.r = next
	return nil
}

// parseSnapshot decodes a snapshot into a new replica.
func parseSnapshot(data []byte) (replica, error) {
	s := cryptobyte.String(data)
	if err := wire.CheckHeader(&s, TypeSnapshot, ErrMalformed, ErrVersion); err != nil {
		return replica{}, err
	}
	next := newReplica()
	var state, token cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&state) || !s.ReadUint24LengthPrefixed(&token) {
		return replica{}, malformed("snapshot state")
	}
	if len(state) > 0 {
		p, err := ParseToken(token)
		if err != nil {
			return replica{}, err
		}
		if string(p.Token.State) != string(state) {
			return replica{}, malformed("snapshot state is not its token's")
		}
		next.state, next.token = p.State, append([]byte(nil), token...)
	} else if len(token) > 0 {
		return replica{}, malformed("snapshot token without state")
	}
	var n uint32
	if !s.ReadUint32(&n) {
		return replica{}, malformed("snapshot key count")
	}
	prev := ""
	for i := range n {
		var id, rec cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&id) || len(id) == 0 || (i > 0 && string(id) <= prev) ||
			!s.ReadUint24LengthPrefixed(&rec) || len(rec) > MaxKeyRecord {
			return replica{}, malformed("snapshot key record")
		}
		prev = string(id)
		next.keys[prev] = append([]byte(nil), rec...)
	}
	if !s.ReadUint32(&n) {
		return replica{}, malformed("snapshot history count")
	}
	for range n {
		var r Record
		var typ uint16
		var ns uint8
		if !s.ReadUint64(&r.Version) || !s.ReadUint16(&typ) || !s.CopyBytes(r.Command[:]) || !s.ReadUint8(&ns) {
			return replica{}, malformed("snapshot history")
		}
		r.Type = quorum.CommandType(typ)
		for range ns {
			var id string
			if !wire.ReadID(&s, &id) {
				return replica{}, malformed("snapshot signer")
			}
			r.Signers = append(r.Signers, id)
		}
		if !wire.ReadID(&s, &r.Exporter) || !s.ReadUint64(&r.ProposedAt) {
			return replica{}, malformed("snapshot history")
		}
		next.history = append(next.history, r)
	}
	if !s.Empty() {
		return replica{}, malformed("trailing bytes in snapshot")
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

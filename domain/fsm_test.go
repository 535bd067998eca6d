package domain

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"

	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

const t0 = 1767225600

// chain builds a domain's first tokens with software member keys: genesis
// (v1), a rotation signed by the service host (v2), SetRetention (v3).
type chain struct {
	tokens  [][]byte
	st      []*State
	members []vecMember
	host    *ecdsa.PrivateKey
	alice   *ecdsa.PrivateKey
}

func exporterOf(m vecMember) Exporter {
	return Exporter{ID: m.m.ID, Signer: detSigner{K: m.sign}, Rand: rand.Reader,
		NewEphemeral: func() (session.EphemeralKey, error) {
			return softEph{K: mustECDH()}, nil
		}}
}

func newChain(t *testing.T) *chain {
	v := genTokenVector(t)
	f, err := parseVectorFields(v)
	require.NoError(t, err)
	g, err := ParseToken(f["token"])
	require.NoError(t, err)
	st, ms, alice, carol := vecState(t)
	host, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), scalar("host-1"))
	require.NoError(t, err)
	c := &chain{tokens: [][]byte{f["token"]}, st: []*State{g.State}, members: ms, host: host, alice: alice}
	_ = st
	dk1 := f["dk"]
	dk2 := bytes.Repeat([]byte{2}, DKSize)

	rot := c.command(t, 1, quorum.RotateDomainKeys, nil, signWith{"host-1", host})
	newKey := &KeyInfo{ID: [16]byte{'d', 'k', '-', '2'}}
	v2, err := Apply(g.State, rot, newKey, t0)
	require.NoError(t, err)
	tok2, err := SealToken(v2, rot, [][]byte{dk1, dk2}, exporterOf(ms[0]))
	require.NoError(t, err)

	ret, err := ParamsRetention(3)
	require.NoError(t, err)
	sr := c.command(t, 2, quorum.SetRetention, ret, signWith{"alice", alice})
	sig, err := quorum.SignMLDSA("carol", carol, sr.Command, true)
	require.NoError(t, err)
	require.NoError(t, sr.Add(sig))
	v3, err := Apply(v2, sr, nil, t0)
	require.NoError(t, err)
	tok3, err := SealToken(v3, sr, [][]byte{dk1, dk2}, exporterOf(ms[1]))
	require.NoError(t, err)
	c.tokens = append(c.tokens, tok2, tok3)
	c.st = append(c.st, v2, v3)
	return c
}

type signWith struct {
	id string
	k  *ecdsa.PrivateKey
}

func (c *chain) command(t *testing.T, version uint64, typ quorum.CommandType, params []byte, signers ...signWith) *quorum.SignedCommand {
	cmd := &quorum.Command{Domain: "example-domain", StateVersion: version, Type: typ, Params: params,
		IssuedAt: t0, ExpiresAt: t0 + 600}
	cmd.Nonce[0] = byte(version)
	raw, err := cmd.Marshal()
	require.NoError(t, err)
	sc := &quorum.SignedCommand{Command: raw}
	for _, s := range signers {
		sig, err := quorum.SignECDSA(s.id, s.k, raw)
		require.NoError(t, err)
		require.NoError(t, sc.Add(sig))
	}
	return sc
}

func entry(t *testing.T, token []byte) *raft.Log {
	d, err := DomainEntry(t0, token)
	require.NoError(t, err)
	return &raft.Log{Type: raft.LogCommand, Data: d}
}

func snap(t *testing.T, f *FSM) []byte {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := f.r.marshal()
	require.NoError(t, err)
	return b
}

func TestFSMAppliesDeterministically(t *testing.T) {
	c := newChain(t)
	a, b := NewFSM(), NewFSM()
	put, err := PutKeyEntry("key-1", []byte("record"))
	require.NoError(t, err)
	del, err := DeleteKeyEntry("key-1")
	require.NoError(t, err)
	put2, err := PutKeyEntry("key-2", []byte("kept"))
	require.NoError(t, err)
	logs := []*raft.Log{entry(t, c.tokens[0]), {Type: raft.LogCommand, Data: put}, entry(t, c.tokens[1]),
		{Type: raft.LogCommand, Data: del}, {Type: raft.LogCommand, Data: put2}, entry(t, c.tokens[2])}
	for _, f := range []*FSM{a, b} {
		for i, l := range logs {
			res := f.Apply(l)
			_, isErr := res.(error)
			require.False(t, isErr, "entry %d: %v", i, res)
		}
	}
	assert.Equal(t, snap(t, a), snap(t, b), "the same log gives the same state")
	st, tok := a.State()
	assert.Equal(t, uint64(3), st.Version)
	assert.Equal(t, c.tokens[2], tok)
	assert.Equal(t, []string{"key-2"}, a.Keys())
	h := a.History()
	require.Len(t, h, 3)
	assert.Equal(t, quorum.RotateDomainKeys, h[1].Type)
	assert.Equal(t, []string{"host-1"}, h[1].Signers)
	assert.Equal(t, []string{"alice", "carol"}, h[2].Signers)
}

func TestFSMRefusesForgedEntries(t *testing.T) {
	c := newChain(t)
	f := NewFSM()
	require.IsType(t, ApplyResult{}, f.Apply(entry(t, c.tokens[0])))

	// A command without quorum, in a token a member signed.
	ret, _ := ParamsRetention(2)
	lone := c.command(t, 1, quorum.SetRetention, ret, signWith{"alice", c.alice})
	forged := c.st[0].Clone()
	forged.Version, forged.Retention = 2, 2
	noQuorum, err := SealToken(forged, lone, [][]byte{bytes.Repeat([]byte{1}, DKSize)}, exporterOf(c.members[0]))
	require.NoError(t, err)
	// A token whose exporter is not a member.
	outsider := newVecMember(t, "outsider")
	byOutsider, err := SealToken(c.st[1], c.commandOf(t, c.tokens[1]), [][]byte{make([]byte, DKSize), make([]byte, DKSize)}, exporterOf(outsider))
	require.NoError(t, err)

	before := snap(t, f)
	for name, tc := range map[string]struct {
		l    *raft.Log
		want error
	}{
		"no quorum":              {entry(t, noQuorum), quorum.ErrPending},
		"non-member exporter":    {entry(t, byOutsider), ErrTokenExporter},
		"a later version (gap)":  {entry(t, c.tokens[2]), ErrGap},
		"the same version again": {entry(t, c.tokens[0]), ErrStale},
		"empty entry":            {&raft.Log{Type: raft.LogCommand, Data: nil}, ErrMalformed},
		"unknown entry type":     {&raft.Log{Type: raft.LogCommand, Data: []byte{9}}, ErrMalformed},
		"trailing bytes":         {&raft.Log{Type: raft.LogCommand, Data: append(entry(t, c.tokens[1]).Data, 0)}, ErrMalformed},
		"delete a missing key":   {&raft.Log{Type: raft.LogCommand, Data: mustDel(t, "nope")}, ErrEntry},
	} {
		res := f.Apply(tc.l)
		err, ok := res.(error)
		require.True(t, ok, "%s: applied", name)
		assert.ErrorIs(t, err, ErrEntry, name)
		assert.ErrorIs(t, err, tc.want, name)
		assert.Equal(t, before, snap(t, f), "%s: state unchanged", name)
	}
	// The real next token still applies.
	require.IsType(t, ApplyResult{}, f.Apply(entry(t, c.tokens[1])))
}

func (c *chain) commandOf(t *testing.T, token []byte) *quorum.SignedCommand {
	p, err := ParseToken(token)
	require.NoError(t, err)
	return p.Command
}

func mustDel(t *testing.T, id string) []byte {
	d, err := DeleteKeyEntry(id)
	require.NoError(t, err)
	return d
}

func TestFSMSnapshotRestore(t *testing.T) {
	c := newChain(t)
	f := NewFSM()
	for _, tok := range c.tokens {
		require.IsType(t, ApplyResult{}, f.Apply(entry(t, tok)))
	}
	put, _ := PutKeyEntry("k", []byte("v"))
	f.Apply(&raft.Log{Type: raft.LogCommand, Data: put})
	s, err := f.Snapshot()
	require.NoError(t, err)
	sink := &memSink{}
	require.NoError(t, s.Persist(sink))

	g := NewFSM()
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))))
	assert.Equal(t, snap(t, f), snap(t, g))
	assert.Equal(t, f.History(), g.History())

	// A restored FSM goes on applying.
	require.IsType(t, ApplyResult{}, g.Apply(&raft.Log{Type: raft.LogCommand, Data: mustDel(t, "k")}))

	// Damaged snapshots are refused and change nothing.
	before := snap(t, g)
	data := sink.Bytes()
	for name, bad := range map[string][]byte{
		"truncated": data[:len(data)-1],
		"trailing":  append(bytes.Clone(data), 0),
		"empty":     nil,
	} {
		err := g.Restore(io.NopCloser(bytes.NewReader(bad)))
		assert.ErrorIs(t, err, ErrMalformed, name)
		assert.Equal(t, before, snap(t, g), name)
	}
}

type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return errors.New("cancelled") }
func (s *memSink) Close() error  { return nil }

func FuzzFSMApply(f *testing.F) {
	put, _ := PutKeyEntry("k", []byte("v"))
	f.Add(put)
	f.Add([]byte{EntryDomain, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(mustDelF("k"))
	f.Fuzz(func(t *testing.T, in []byte) {
		fsm := NewFSM()
		fsm.Apply(&raft.Log{Type: raft.LogCommand, Data: in}) // never panics
		fsm.Restore(io.NopCloser(bytes.NewReader(in)))
	})
}

func mustDelF(id string) []byte { d, _ := DeleteKeyEntry(id); return d }

// model is a deliberately naive key store: the semantics of the key entries
// written out directly (STYLE 14), for the property test.
type model map[string][]byte

func (m model) apply(e []byte) (int, bool) {
	s := cryptobyte.String(e)
	var typ uint8
	s.ReadUint8(&typ)
	switch typ {
	case EntryPutKey:
		var id, rec cryptobyte.String
		s.ReadUint8LengthPrefixed(&id)
		s.ReadUint24LengthPrefixed(&rec)
		m[string(id)] = bytes.Clone([]byte(rec))
		return 0, true
	case EntryDeleteKey:
		var id cryptobyte.String
		s.ReadUint8LengthPrefixed(&id)
		if _, ok := m[string(id)]; !ok {
			return 0, false
		}
		delete(m, string(id))
		return 0, true
	case EntryReplaceKeys:
		var n uint16
		s.ReadUint16(&n)
		replaced := 0
		for range n {
			var id, old, nw cryptobyte.String
			s.ReadUint8LengthPrefixed(&id)
			s.ReadUint24LengthPrefixed(&old)
			s.ReadUint24LengthPrefixed(&nw)
			cur, ok := m[string(id)]
			if ok && bytes.Equal(cur, old) || !ok && len(old) == 0 {
				if len(nw) == 0 {
					delete(m, string(id))
				} else {
					m[string(id)] = bytes.Clone([]byte(nw))
				}
				replaced++
			}
		}
		return replaced, true
	}
	panic("model: not a key entry")
}

// randomKeyEntry draws a put, delete or replace batch over a few IDs and
// records, so that entries collide: replaced and stale compare-and-swaps,
// deletes of missing keys, one ID twice in a batch.
func randomKeyEntry(t *testing.T, rng *mrand.Rand) []byte {
	ids := []string{"k0", "k1", "k2", "k3"}
	recs := [][]byte{nil, []byte("a"), []byte("b"), []byte("c")}
	id := func() string { return ids[rng.IntN(len(ids))] }
	rec := func() []byte { return recs[rng.IntN(len(recs))] }
	var e []byte
	var err error
	switch rng.IntN(3) {
	case 0:
		e, err = PutKeyEntry(id(), rec())
	case 1:
		e, err = DeleteKeyEntry(id())
	default:
		rs := make([]Replacement, 1+rng.IntN(4))
		for i := range rs {
			rs[i] = Replacement{ID: id(), Old: rec(), New: rec()}
		}
		e, err = ReplaceKeysEntry(rs)
	}
	require.NoError(t, err)
	return e
}

// The FSM is a pure function of (state, entry): two FSMs given the same
// entries, one of them restored from a snapshot on the way, give the same
// results and byte-identical snapshots after every entry; step leaves its
// input untouched and decides the same change twice; and the key store
// agrees with the naive model.
func TestFSMStepProperty(t *testing.T) {
	c := newChain(t)
	garbage := [][]byte{nil, {0}, {EntryReplaceKeys + 1}, {EntryPutKey, 0}, append(entry(t, c.tokens[0]).Data, 1)}
	for seed := range uint64(20) {
		rng := mrand.New(mrand.NewPCG(seed, 0x7472656e74))
		a, b := NewFSM(), NewFSM()
		m := model{}
		next := 0 // the next domain token
		for i := range 150 {
			var e []byte
			isKey := false
			switch r := rng.IntN(20); {
			case r == 0 && next < len(c.tokens):
				e = entry(t, c.tokens[next]).Data
				next++
			case r == 1: // a stale or early token: refused
				e = entry(t, c.tokens[rng.IntN(len(c.tokens))]).Data
			case r == 2:
				e = garbage[rng.IntN(len(garbage))]
			default:
				e, isKey = randomKeyEntry(t, rng), true
			}

			before := snap(t, a)
			ch1, err1 := step(&a.r, e)
			ch2, err2 := step(&a.r, e)
			require.Equal(t, before, snap(t, a), "seed %d entry %d: step changed its input", seed, i)
			require.Equal(t, ch1, ch2, "seed %d entry %d", seed, i)
			require.Equal(t, err1, err2, "seed %d entry %d", seed, i)

			l := &raft.Log{Type: raft.LogCommand, Data: e}
			ra, rb := a.Apply(l), b.Apply(l)
			require.Equal(t, fmt.Sprint(ra), fmt.Sprint(rb), "seed %d entry %d", seed, i)
			if err, refused := ra.(error); refused {
				require.ErrorIs(t, err, ErrEntry)
				require.Equal(t, before, snap(t, a), "seed %d entry %d: a refused entry changed the state", seed, i)
			}
			if isKey {
				replaced, ok := m.apply(e)
				_, refused := ra.(error)
				require.Equal(t, ok, !refused, "seed %d entry %d", seed, i)
				if ok {
					require.Equal(t, replaced, ra.(ApplyResult).Replaced, "seed %d entry %d", seed, i)
				}
			}
			require.Equal(t, snap(t, a), snap(t, b), "seed %d entry %d: snapshots differ", seed, i)

			if i == 75 { // b continues from a snapshot of itself
				s, err := b.Snapshot()
				require.NoError(t, err)
				sink := &memSink{}
				require.NoError(t, s.Persist(sink))
				b = NewFSM()
				require.NoError(t, b.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))))
			}
		}
		require.Equal(t, uint64(next), a.r.version(), "seed %d: every token in order applied", seed)
		require.Equal(t, slices.Sorted(maps.Keys(m)), a.Keys(), "seed %d", seed)
		for id, rec := range m {
			got, ok := a.Key(id)
			require.True(t, ok)
			require.Equal(t, string(rec), string(got), "seed %d key %s", seed, id)
		}
	}
}

// Every entry type has its step in the dispatch table, and no other byte
// does.
func TestFSMDispatchTable(t *testing.T) {
	for typ := range 256 {
		known := typ == int(EntryDomain) || typ == int(EntryPutKey) || typ == int(EntryDeleteKey) || typ == int(EntryReplaceKeys)
		has := typ < len(entrySteps) && entrySteps[typ] != nil
		assert.Equal(t, known, has, "entry type %d", typ)
		if !known {
			_, err := step(&replica{keys: map[string][]byte{}}, []byte{byte(typ)})
			assert.ErrorIs(t, err, ErrMalformed, "entry type %d", typ)
		}
	}
}

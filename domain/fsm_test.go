package domain

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	b, err := f.marshal()
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

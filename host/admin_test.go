package host_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

// genesisToken makes a domain with one HSM (then closed: hosts without HSMs
// still replicate the domain) and the given operators.
func genesisToken(t *testing.T, ops ...*opKey) []byte {
	store := softhsmtest.NewStore(t)
	_, err := node.Init(node.InitOptions{Dir: store.Dir, Label: "hsm-1"})
	require.NoError(t, err)
	n, err := node.Open(node.Options{Dir: store.Dir, Label: "hsm-1"})
	require.NoError(t, err)
	defer n.Close()
	id := n.Identity()
	gen := &domain.State{Name: "prod", Rules: quorum.DefaultRules(), Retention: domain.DefaultRetention,
		Members: []session.Member{{ID: n.ID(), Signing: id.Signing.PublicKey(), Agreement: id.Agreement.PublicKey()}}}
	var kms []*opKey
	for _, o := range ops {
		gen.Operators = append(gen.Operators, o.op)
		if o.op.Role == quorum.RoleKMSOperator {
			kms = append(kms, o)
		}
	}
	slices.SortFunc(gen.Operators, func(a, b quorum.Operator) int { return strings.Compare(a.ID, b.ID) })
	params, err := domain.ParamsGenesis(gen)
	require.NoError(t, err)
	sc, _, err := quorum.ParseSignedCommand(signed(t, "prod", 0, quorum.CreateDomain, params, kms...))
	require.NoError(t, err)
	tok, err := n.CreateDomain(sc, time.Now())
	require.NoError(t, err)
	return tok
}

func startCluster(t *testing.T, genesis []byte, keys ...*opKey) []*host.Host {
	var hosts []*host.Host
	for _, k := range keys {
		h, err := host.Start(host.Config{ID: k.id, Signer: k.k, Dir: t.TempDir(), RaftAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0"})
		require.NoError(t, err)
		t.Cleanup(func() { h.Close() })
		hosts = append(hosts, h)
	}
	for _, a := range hosts {
		for _, b := range hosts {
			a.SetPeer(b.ID(), b.APIURL())
		}
	}
	require.NoError(t, hosts[0].Bootstrap(genesis))
	for _, h := range hosts[1:] {
		require.NoError(t, h.Join(context.Background(), hosts[0].APIURL()))
	}
	return hosts
}

func TestRaftOperations(t *testing.T) {
	alice, bob := newOp(t, "alice", quorum.RoleKMSOperator), newOp(t, "bob", quorum.RoleKMSOperator)
	hk := []*opKey{newOp(t, "host-1", quorum.RoleServiceHost), newOp(t, "host-2", quorum.RoleServiceHost), newOp(t, "host-3", quorum.RoleServiceHost)}
	genesis := genesisToken(t, alice, bob, hk[0], hk[1], hk[2])
	hosts := startCluster(t, genesis, hk...)
	ctx := context.Background()

	peers, err := host.FetchPeers(ctx, hosts[1].APIURL())
	require.NoError(t, err)
	require.Len(t, peers, 3)
	leaders := 0
	for _, p := range peers {
		if p.Leader {
			leaders++
		}
		assert.True(t, p.Voter)
	}
	assert.Equal(t, 1, leaders)

	// Key records, then a snapshot.
	for i := range 3 {
		e, err := domain.PutKeyEntry(fmt.Sprintf("key-%d", i), []byte("record"))
		require.NoError(t, err)
		require.NoError(t, leader(t, hosts).ApplyForTest(e))
	}
	snapshot, err := host.FetchSnapshot(ctx, hosts[2].APIURL())
	require.NoError(t, err)
	again, err := host.FetchSnapshot(ctx, hosts[0].APIURL())
	require.NoError(t, err, "a second save with nothing new")
	assert.Equal(t, snapshotState(t, snapshot), snapshotState(t, again))

	// Removing a peer takes an operator's signature.
	forged, err := host.SignAdmin(host.OpRemovePeer, "alice", bob.k, []byte("host-3"), time.Now())
	require.NoError(t, err)
	require.ErrorContains(t, host.Admin(ctx, hosts[1].APIURL(), host.OpRemovePeer, forged), "signature does not verify")
	stale, err := host.SignAdmin(host.OpRemovePeer, "alice", alice.k, []byte("host-3"), time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.ErrorContains(t, host.Admin(ctx, hosts[1].APIURL(), host.OpRemovePeer, stale), "request time")
	wrongOp, err := host.SignAdmin(host.OpRestore, "alice", alice.k, []byte("host-3"), time.Now())
	require.NoError(t, err)
	require.ErrorContains(t, host.Admin(ctx, hosts[1].APIURL(), host.OpRemovePeer, wrongOp), "another operation")
	rm, err := host.SignAdmin(host.OpRemovePeer, "alice", alice.k, []byte("host-3"), time.Now())
	require.NoError(t, err)
	require.NoError(t, host.Admin(ctx, hosts[1].APIURL(), host.OpRemovePeer, rm))
	peers, err = host.FetchPeers(ctx, hosts[0].APIURL())
	require.NoError(t, err)
	assert.Len(t, peers, 2)

	// Save, wipe, restore: a new cluster from the genesis token, restored
	// from the snapshot, holds the same state version and key store.
	fresh := startCluster(t, genesis, hk[0])
	restore, err := host.SignAdmin(host.OpRestore, "alice", alice.k, snapshot, time.Now())
	require.NoError(t, err)
	require.NoError(t, host.Admin(ctx, fresh[0].APIURL(), host.OpRestore, restore))
	st, _ := fresh[0].FSM().State()
	want, _ := hosts[0].FSM().State()
	assert.Equal(t, want.Version, st.Version)
	assert.Equal(t, []string{"key-0", "key-1", "key-2"}, fresh[0].FSM().Keys())

	// A damaged snapshot is refused before raft sees it.
	bad, err := host.SignAdmin(host.OpRestore, "alice", alice.k, snapshot[:len(snapshot)-1], time.Now())
	require.NoError(t, err)
	require.Error(t, host.Admin(ctx, fresh[0].APIURL(), host.OpRestore, bad))
}

func leader(t *testing.T, hosts []*host.Host) *host.Host {
	var l *host.Host
	require.Eventually(t, func() bool {
		for _, h := range hosts {
			if h.IsLeader() {
				l = h
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	return l
}

func snapshotState(t *testing.T, data []byte) []string {
	f := domain.NewFSM()
	require.NoError(t, f.Restore(io.NopCloser(bytes.NewReader(data))))
	st, _ := f.State()
	return append(f.Keys(), fmt.Sprint(st.Version))
}

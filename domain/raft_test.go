package domain

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The FSM under real raft: three voters over TCP on loopback, with
// raft-boltdb log and stable stores and file snapshots.

type raftNode struct {
	id    string
	addr  string
	dir   string
	fsm   *FSM
	r     *raft.Raft
	store *raftboltdb.BoltStore
}

func raftConfig(id string) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(id)
	c.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.SnapshotThreshold = 4 // snapshots happen during the test
	c.TrailingLogs = 2
	return c
}

func startTCPNode(t *testing.T, id, addr, dir string) *raftNode {
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	require.NoError(t, err)
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	require.NoError(t, err)
	trans, err := raft.NewTCPTransport(addr, nil, 3, 2*time.Second, io.Discard)
	require.NoError(t, err)
	n := &raftNode{id: id, addr: string(trans.LocalAddr()), dir: dir, fsm: NewFSM(), store: store}
	n.r, err = raft.NewRaft(raftConfig(id), n.fsm, store, store, snaps, trans)
	require.NoError(t, err)
	return n
}

func (n *raftNode) stop(t *testing.T) {
	require.NoError(t, n.r.Shutdown().Error())
	require.NoError(t, n.store.Close())
}

func leaderOf(t *testing.T, nodes []*raftNode) *raftNode {
	var leader *raftNode
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if n.r.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "a leader is elected")
	return leader
}

// propose applies data through the leader of nodes, retrying while the
// node asked has just lost leadership (ErrNotLeader: nothing was appended,
// so a retry cannot apply the entry twice).
func propose(t *testing.T, nodes []*raftNode, data []byte) any {
	deadline := time.Now().Add(15 * time.Second)
	for {
		f := leaderOf(t, nodes).r.Apply(data, 5*time.Second)
		err := f.Error()
		if err == nil {
			return f.Response()
		}
		if !errors.Is(err, raft.ErrNotLeader) || time.Now().After(deadline) {
			require.NoError(t, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func versionOf(f *FSM) uint64 {
	st, _ := f.State()
	if st == nil {
		return 0
	}
	return st.Version
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func TestRaftClusterOverTCP(t *testing.T) {
	c := newChain(t)
	var nodes []*raftNode
	var servers []raft.Server
	for i := 1; i <= 3; i++ {
		n := startTCPNode(t, fmt.Sprintf("host-%d", i), freeAddr(t), t.TempDir())
		nodes = append(nodes, n)
		servers = append(servers, raft.Server{ID: raft.ServerID(n.id), Address: raft.ServerAddress(n.addr)})
	}
	defer func() {
		for _, n := range nodes {
			if n.r.State() != raft.Shutdown {
				n.stop(t)
			}
		}
	}()
	require.NoError(t, nodes[0].r.BootstrapCluster(raft.Configuration{Servers: servers}).Error())

	res := propose(t, nodes, entry(t, c.tokens[0]).Data)
	assert.Equal(t, ApplyResult{Version: 1}, res)
	for i := range 5 {
		put, _ := PutKeyEntry(fmt.Sprintf("key-%d", i), []byte("record"))
		propose(t, nodes, put)
	}
	res = propose(t, nodes, entry(t, c.tokens[1]).Data)
	assert.Equal(t, ApplyResult{Version: 2}, res)
	// A forged entry proposed directly is committed by raft but refused by
	// every FSM.
	res = propose(t, nodes, entry(t, c.tokens[0]).Data)
	require.ErrorIs(t, res.(error), ErrStale)

	// Kill the leader; the others elect a new one and go on.
	leader := leaderOf(t, nodes)
	leader.stop(t)
	var rest []*raftNode
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	res = propose(t, rest, entry(t, c.tokens[2]).Data)
	assert.Equal(t, ApplyResult{Version: 3}, res)

	// The old leader restarts from its stores and catches up.
	restarted := startTCPNode(t, leader.id, leader.addr, leader.dir)
	for i, n := range nodes {
		if n == leader {
			nodes[i] = restarted
		}
	}
	for _, n := range nodes {
		require.Eventually(t, func() bool { return versionOf(n.fsm) == 3 && len(n.fsm.Keys()) == 5 },
			10*time.Second, 10*time.Millisecond, "%s converges", n.id)
	}
	want := snap(t, nodes[0].fsm)
	for _, n := range nodes[1:] {
		assert.Equal(t, want, snap(t, n.fsm), "%s holds the same state", n.id)
	}
}

// Partitions, with raft's InmemTransport: a leader cut off from the
// majority cannot commit; the majority elects another and commits; after
// healing everyone converges and nothing acknowledged is lost.
func TestRaftPartition(t *testing.T) {
	c := newChain(t)
	var nodes []*raftNode
	var trans []*raft.InmemTransport
	var servers []raft.Server
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("host-%d", i)
		addr, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		n := &raftNode{id: id, addr: string(addr), fsm: NewFSM()}
		store := raft.NewInmemStore()
		var err error
		n.r, err = raft.NewRaft(raftConfig(id), n.fsm, store, store, raft.NewInmemSnapshotStore(), tr)
		require.NoError(t, err)
		nodes, trans = append(nodes, n), append(trans, tr)
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: addr})
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(trans[j].LocalAddr(), trans[j])
			}
		}
	}
	defer func() {
		for _, n := range nodes {
			n.r.Shutdown()
		}
	}()
	require.NoError(t, nodes[0].r.BootstrapCluster(raft.Configuration{Servers: servers}).Error())
	assert.Equal(t, ApplyResult{Version: 1}, propose(t, nodes, entry(t, c.tokens[0]).Data))

	// Cut the leader off.
	leader := leaderOf(t, nodes)
	li := 0
	for i, n := range nodes {
		if n == leader {
			li = i
		}
	}
	for i := range trans {
		if i != li {
			trans[li].Disconnect(trans[i].LocalAddr())
			trans[i].Disconnect(trans[li].LocalAddr())
		}
	}
	f := leader.r.Apply(entry(t, c.tokens[1]).Data, 500*time.Millisecond)
	require.Error(t, f.Error(), "a minority leader cannot commit")

	var rest []*raftNode
	for i, n := range nodes {
		if i != li {
			rest = append(rest, n)
		}
	}
	assert.Equal(t, ApplyResult{Version: 2}, propose(t, rest, entry(t, c.tokens[1]).Data))
	assert.Equal(t, ApplyResult{Version: 3}, propose(t, rest, entry(t, c.tokens[2]).Data))

	// Heal: the old leader converges on the majority's log.
	for i := range trans {
		if i != li {
			trans[li].Connect(trans[i].LocalAddr(), trans[i])
			trans[i].Connect(trans[li].LocalAddr(), trans[li])
		}
	}
	for _, n := range nodes {
		require.Eventually(t, func() bool { return versionOf(n.fsm) == 3 }, 10*time.Second, 10*time.Millisecond, n.id)
	}
	for _, n := range nodes {
		h := n.fsm.History()
		require.Len(t, h, 3, n.id)
	}
}

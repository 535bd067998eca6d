package host_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/softhsm/softhsmtest"
)

type opKey struct {
	id string
	k  *ecdsa.PrivateKey
	op quorum.Operator
}

func newOp(t testing.TB, id, role string) *opKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	pk, err := quorum.NewECDSAKey(&k.PublicKey)
	require.NoError(t, err)
	return &opKey{id: id, k: k, op: quorum.Operator{ID: id, Role: role, Key: pk}}
}

func signed(t testing.TB, domainName string, version uint64, typ quorum.CommandType, params []byte, by ...*opKey) []byte {
	c, err := quorum.NewCommand(domainName, version, typ, params, time.Now(), 0, func(b []byte) error { _, err := rand.Read(b); return err })
	require.NoError(t, err)
	raw, err := c.Marshal()
	require.NoError(t, err)
	sc := &quorum.SignedCommand{Command: raw}
	for _, o := range by {
		sig, err := quorum.SignECDSA(o.id, o.k, raw)
		require.NoError(t, err)
		require.NoError(t, sc.Add(sig))
	}
	out, err := sc.Marshal()
	require.NoError(t, err)
	return out
}

type hsmProc struct {
	n       *node.Node
	addr    string
	cancel  context.CancelFunc
	done    chan error
	stopped sync.Once
}

func startHSM(t testing.TB, dir, label, addr string) *hsmProc {
	n, err := node.Open(node.Options{Dir: dir, Label: label})
	require.NoError(t, err)
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	p := &hsmProc{n: n, addr: l.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- n.Serve(ctx, l) }()
	return p
}

func (p *hsmProc) stop(t testing.TB) {
	p.stopped.Do(func() {
		p.cancel()
		require.NoError(t, <-p.done)
		require.NoError(t, p.n.Close())
	})
}

func TestClusterFourStepChange(t *testing.T) {
	store := softhsmtest.NewStore(t)
	var hsms []*hsmProc
	for _, label := range []string{"hsm-1", "hsm-2", "hsm-3"} {
		_, err := node.Init(node.InitOptions{Dir: store.Dir, Label: label})
		require.NoError(t, err)
		hsms = append(hsms, startHSM(t, store.Dir, label, "127.0.0.1:0"))
	}
	defer func() {
		for _, p := range hsms {
			if p != nil {
				p.stop(t)
			}
		}
	}()
	alice, bob := newOp(t, "alice", quorum.RoleKMSOperator), newOp(t, "bob", quorum.RoleKMSOperator)
	hostKeys := []*opKey{newOp(t, "host-1", quorum.RoleServiceHost), newOp(t, "host-2", quorum.RoleServiceHost), newOp(t, "host-3", quorum.RoleServiceHost)}

	// Genesis on hsm-1 (trent domain create).
	gen := &domain.State{Name: "prod", Rules: quorum.DefaultRules(), Retention: domain.DefaultRetention,
		Operators: []quorum.Operator{alice.op, bob.op}}
	for _, h := range hostKeys {
		gen.Operators = append(gen.Operators, h.op)
	}
	slices.SortFunc(gen.Operators, func(a, b quorum.Operator) int { return strings.Compare(a.ID, b.ID) })
	for _, p := range hsms[:2] { // hsm-3 joins the domain later, by AddMember
		id := p.n.Identity()
		gen.Members = append(gen.Members, session.Member{ID: p.n.ID(), Signing: id.Signing.PublicKey(), Agreement: id.Agreement.PublicKey()})
	}
	slices.SortFunc(gen.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
	params, err := domain.ParamsGenesis(gen)
	require.NoError(t, err)
	sc, _, err := quorum.ParseSignedCommand(signed(t, "prod", 0, quorum.CreateDomain, params, alice, bob))
	require.NoError(t, err)
	genesis, err := hsms[0].n.CreateDomain(sc, time.Now())
	require.NoError(t, err)

	var urls []string
	for _, p := range hsms {
		urls = append(urls, "http://"+p.addr)
	}
	var hosts []*host.Host
	for _, k := range hostKeys {
		h, err := host.Start(host.Config{ID: k.id, Signer: k.k, Dir: t.TempDir(), RaftAddr: "127.0.0.1:0",
			APIAddr: "127.0.0.1:0", HSMs: urls, ResyncEvery: 200 * time.Millisecond})
		require.NoError(t, err)
		hosts = append(hosts, h)
	}
	defer func() {
		for _, h := range hosts {
			if h != nil {
				h.Close()
			}
		}
	}()
	for _, a := range hosts {
		for _, b := range hosts {
			a.SetPeer(b.ID(), b.APIURL())
		}
	}
	require.NoError(t, hosts[0].Bootstrap(genesis))
	ctx := context.Background()
	require.NoError(t, hosts[1].Join(ctx, hosts[0].APIURL()))
	require.NoError(t, hosts[2].Join(ctx, hosts[1].APIURL()), "a follower forwards the join to the leader")

	// Joins are checked: a host the domain does not list, and one that
	// names a listed host but signs with another key.
	mallory, err := host.Start(host.Config{ID: "mallory", Signer: alice.k, Dir: t.TempDir(), RaftAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer mallory.Close()
	require.ErrorContains(t, mallory.Join(ctx, hosts[0].APIURL()), "not a service host")
	impostor, err := host.Start(host.Config{ID: "host-2", Signer: bob.k, Dir: t.TempDir(), RaftAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer impostor.Close()
	require.ErrorContains(t, impostor.Join(ctx, hosts[0].APIURL()), "signature does not verify")

	waitAll := func(version uint64, live []*host.Host) {
		t.Helper()
		for _, h := range live {
			require.Eventually(t, func() bool {
				st, _ := h.FSM().State()
				return st != nil && st.Version == version
			}, 10*time.Second, 10*time.Millisecond, "%s reaches version %d", h.ID(), version)
		}
		require.Eventually(t, func() bool {
			for _, v := range live[0].HSMVersions(ctx) {
				if v != version {
					return false
				}
			}
			return true
		}, 10*time.Second, 20*time.Millisecond, "every HSM reaches version %d", version)
	}

	// Add a member: hsm-3 gets the token from the hosts as soon as the
	// change commits.
	id3 := hsms[2].n.Identity()
	addMember, err := domain.ParamsMember(session.Member{ID: hsms[2].n.ID(), Signing: id3.Signing.PublicKey(), Agreement: id3.Agreement.PublicKey()})
	require.NoError(t, err)
	v, err := hosts[0].Submit(ctx, signed(t, "prod", 1, quorum.AddMember, addMember, alice, bob))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), v)
	waitAll(2, hosts)

	// The four-step change, submitted to a follower.
	carol := newOp(t, "carol", quorum.RoleKMSOperator)
	add, err := domain.ParamsOperator(carol.op)
	require.NoError(t, err)
	v, err = hosts[2].Submit(ctx, signed(t, "prod", 2, quorum.AddOperator, add, alice, bob))
	require.NoError(t, err)
	assert.Equal(t, uint64(3), v)
	waitAll(3, hosts)

	// One operator alone: refused, nothing changes.
	_, err = hosts[1].Submit(ctx, signed(t, "prod", 3, quorum.RemoveOperator, mustID(t, "carol"), alice))
	require.ErrorContains(t, err, "need 1 more kms-operator")

	// A host rotates with its own service-host key.
	v, err = hosts[1].Submit(ctx, signed(t, "prod", 3, quorum.RotateDomainKeys, nil, hostKeys[1]))
	require.NoError(t, err)
	assert.Equal(t, uint64(4), v)
	waitAll(4, hosts)

	// Kill the leader; the others go on.
	var live []*host.Host
	for i, h := range hosts {
		if h.IsLeader() {
			require.NoError(t, h.Close())
			hosts[i] = nil
			continue
		}
		live = append(live, h)
	}
	require.Len(t, live, 2)
	ret, err := domain.ParamsRetention(3)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, err = live[0].Submit(ctx, signed(t, "prod", 4, quorum.SetRetention, ret, alice, carol))
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
	assert.Equal(t, uint64(5), v)
	waitAll(5, live)

	// An HSM restarts (its domain keys were session objects): the hosts
	// give it the latest token.
	addr := hsms[1].addr
	hsms[1].stop(t)
	hsms[1] = startHSM(t, store.Dir, "hsm-2", addr)
	st, _ := hsms[1].n.DomainState()
	assert.Nil(t, st)
	waitAll(5, live)

	for _, h := range live {
		assert.Len(t, h.FSM().History(), 5, h.ID())
	}
}

func mustID(t *testing.T, id string) []byte {
	p, err := domain.ParamsID(id)
	require.NoError(t, err)
	return p
}

// Domain keys rotate on the leader's schedule, and the HSMs follow.
func TestScheduledRotation(t *testing.T) {
	store := softhsmtest.NewStore(t)
	_, err := node.Init(node.InitOptions{Dir: store.Dir, Label: "hsm-1"})
	require.NoError(t, err)
	p := startHSM(t, store.Dir, "hsm-1", "127.0.0.1:0")
	defer p.stop(t)
	alice, bob, h1 := newOp(t, "alice", quorum.RoleKMSOperator), newOp(t, "bob", quorum.RoleKMSOperator), newOp(t, "host-1", quorum.RoleServiceHost)
	id := p.n.Identity()
	gen := &domain.State{Name: "prod", Rules: quorum.DefaultRules(), Retention: 2,
		Operators: []quorum.Operator{alice.op, bob.op, h1.op},
		Members:   []session.Member{{ID: p.n.ID(), Signing: id.Signing.PublicKey(), Agreement: id.Agreement.PublicKey()}}}
	params, err := domain.ParamsGenesis(gen)
	require.NoError(t, err)
	sc, _, err := quorum.ParseSignedCommand(signed(t, "prod", 0, quorum.CreateDomain, params, alice, bob))
	require.NoError(t, err)
	genesis, err := p.n.CreateDomain(sc, time.Now().Add(-time.Minute))
	require.NoError(t, err)

	h, err := host.Start(host.Config{ID: "host-1", Signer: h1.k, Dir: t.TempDir(), RaftAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0",
		HSMs: []string{"http://" + p.addr}, RotationInterval: 2 * time.Second, ResyncEvery: 100 * time.Millisecond,
		SessionValidity: time.Second})
	require.NoError(t, err)
	defer h.Close()
	require.NoError(t, h.Bootstrap(genesis))
	require.Eventually(t, func() bool {
		st, _ := h.FSM().State()
		return st.Version >= 3
	}, 20*time.Second, 50*time.Millisecond, "two scheduled rotations")
	hist := h.FSM().History()
	assert.Equal(t, quorum.RotateDomainKeys, hist[1].Type)
	assert.Equal(t, []string{"host-1"}, hist[1].Signers)
	require.Eventually(t, func() bool {
		st, _ := h.FSM().State()
		return h.HSMVersions(context.Background())[0] >= st.Version-1
	}, 10*time.Second, 50*time.Millisecond, "the HSM follows")
}

// testCluster is a domain of nHSMs HSMs and nHosts service hosts over TCP
// on loopback, bootstrapped from a genesis signed by alice and bob.
type testCluster struct {
	hosts      []*host.Host
	hsms       []*hsmProc
	alice, bob *opKey
	hostKeys   []*opKey
	hsmDir     string // the HSMs' SoftHSM data dir
}

func newTestCluster(t testing.TB, nHosts, nHSMs int) *testCluster {
	return newTestClusterWith(t, nHosts, nHSMs, nil)
}

// newTestClusterWith is newTestCluster with each host's configuration
// adjusted by cfg (nil for none).
func newTestClusterWith(t testing.TB, nHosts, nHSMs int, cfg func(*host.Config)) *testCluster {
	return newNamedCluster(t, softhsmtest.NewStore(t).Dir, "prod", "hsm", nHosts, nHSMs, cfg)
}

// newNamedCluster is newTestClusterWith for the domain name, its HSMs
// labelled prefix-1… in the SoftHSM data dir hsmDir (clusters of one
// process share one: a module is configured once per process).
func newNamedCluster(t testing.TB, hsmDir, name, prefix string, nHosts, nHSMs int, cfg func(*host.Config)) *testCluster {
	c := &testCluster{alice: newOp(t, "alice", quorum.RoleKMSOperator), bob: newOp(t, "bob", quorum.RoleKMSOperator), hsmDir: hsmDir}
	gen := &domain.State{Name: name, Rules: quorum.DefaultRules(), Retention: domain.DefaultRetention,
		Operators: []quorum.Operator{c.alice.op, c.bob.op}}
	for i := 1; i <= nHosts; i++ {
		k := newOp(t, fmt.Sprintf("host-%d", i), quorum.RoleServiceHost)
		c.hostKeys = append(c.hostKeys, k)
		gen.Operators = append(gen.Operators, k.op)
	}
	slices.SortFunc(gen.Operators, func(a, b quorum.Operator) int { return strings.Compare(a.ID, b.ID) })
	var urls []string
	for i := 1; i <= nHSMs; i++ {
		label := fmt.Sprintf("%s-%d", prefix, i)
		_, err := node.Init(node.InitOptions{Dir: hsmDir, Label: label})
		require.NoError(t, err)
		p := startHSM(t, hsmDir, label, "127.0.0.1:0")
		t.Cleanup(func() { p.stop(t) })
		c.hsms = append(c.hsms, p)
		id := p.n.Identity()
		gen.Members = append(gen.Members, session.Member{ID: p.n.ID(), Signing: id.Signing.PublicKey(), Agreement: id.Agreement.PublicKey()})
		urls = append(urls, "http://"+p.addr)
	}
	slices.SortFunc(gen.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })
	params, err := domain.ParamsGenesis(gen)
	require.NoError(t, err)
	sc, _, err := quorum.ParseSignedCommand(signed(t, name, 0, quorum.CreateDomain, params, c.alice, c.bob))
	require.NoError(t, err)
	genesis, err := c.hsms[0].n.CreateDomain(sc, time.Now())
	require.NoError(t, err)
	for _, k := range c.hostKeys {
		hc := host.Config{ID: k.id, Signer: k.k, Dir: t.TempDir(), RaftAddr: "127.0.0.1:0",
			APIAddr: "127.0.0.1:0", HSMs: urls, ResyncEvery: 100 * time.Millisecond, RotationInterval: -1}
		if cfg != nil {
			cfg(&hc)
		}
		h, err := host.Start(hc)
		require.NoError(t, err)
		t.Cleanup(func() { h.Close() })
		c.hosts = append(c.hosts, h)
	}
	for _, a := range c.hosts {
		for _, b := range c.hosts {
			a.SetPeer(b.ID(), b.APIURL())
		}
	}
	require.NoError(t, c.hosts[0].Bootstrap(genesis))
	for _, h := range c.hosts[1:] {
		require.NoError(t, h.Join(context.Background(), c.hosts[0].APIURL()))
	}
	return c
}

// Kill the raft leader during a stream of quorum commands: afterwards every
// acknowledged command is on every live host, and every HSM reaches the
// same state version.
func TestLeaderKilledDuringStream(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	alice, bob, hosts := c.alice, c.bob, c.hosts
	ctx := context.Background()

	// The stream: SetRetention commands, each for the current version,
	// sent to a live host; the leader dies after the fifth acknowledgement.
	var acked []uint64
	killed := false
	live := slices.Clone(hosts)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; len(acked) < 12 && time.Now().Before(deadline); i++ {
		h := live[i%len(live)]
		st, _ := h.FSM().State()
		ret, _ := domain.ParamsRetention(3 + len(acked)%2)
		v, err := h.Submit(ctx, signed(t, "prod", st.Version, quorum.SetRetention, ret, alice, bob))
		if err == nil {
			acked = append(acked, v)
		} else {
			time.Sleep(50 * time.Millisecond) // a client backs off while the cluster elects
		}
		if len(acked) == 5 && !killed {
			for j, x := range live {
				if x.IsLeader() {
					require.NoError(t, x.Close())
					live = slices.Delete(live, j, j+1)
					killed = true
					break
				}
			}
		}
	}
	require.True(t, killed)
	require.Len(t, acked, 12)
	last := acked[len(acked)-1]
	for _, h := range live {
		require.Eventually(t, func() bool {
			st, _ := h.FSM().State()
			return st.Version == last
		}, 10*time.Second, 10*time.Millisecond, h.ID())
		versions := map[uint64]bool{}
		for _, r := range h.FSM().History() {
			versions[r.Version] = true
		}
		for _, v := range acked {
			assert.True(t, versions[v], "%s has acknowledged version %d", h.ID(), v)
		}
	}
	require.Eventually(t, func() bool {
		for _, v := range live[0].HSMVersions(ctx) {
			if v != last {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "every HSM at version %d", last)
}

// A Start that fails part way releases what it opened: the same data dir
// (whose raft store is locked while open) starts again at once.
func TestStartFailureReleases(t *testing.T) {
	k := newOp(t, "host-1", quorum.RoleServiceHost)
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	creds := &kmsapi.Credentials{Region: "eu-west-1"}
	cfg := host.Config{ID: k.id, Signer: k.k, Dir: dir, RaftAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0",
		KMSAddr: busy.Addr().String(), Credentials: creds}
	_, err = host.Start(cfg)
	require.ErrorContains(t, err, "address already in use")

	cfg.KMSAddr = "127.0.0.1:0"
	done := make(chan error, 1)
	go func() {
		h, err := host.Start(cfg)
		if err == nil {
			err = h.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the failed Start kept the raft store locked")
	}
}

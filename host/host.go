package host

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/trentkms/trent/audit"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/kms"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// Errors.
var (
	ErrNotServiceHost = errors.New("host: not a service host of the domain")
	ErrNoDomain       = errors.New("host: no domain yet")
	ErrNoLeader       = errors.New("host: no raft leader known")
)

// Config configures a service host.
type Config struct {
	ID       string        // the host's operator ID in the domain (role service-host)
	Signer   crypto.Signer // its identity key: a token key, or a PEM key in dev mode
	Dir      string        // raft data: raft.db (log and stable store), snapshots/
	RaftAddr string        // raft TCP address to bind, "127.0.0.1:0" for any port
	APIAddr  string        // the host's HTTP address (submit, join), "127.0.0.1:0" for any port
	HSMs     []string      // URLs of the HSMs this host serves
	// Peers maps the other hosts' IDs to their API URLs, for forwarding to
	// the leader; hosts that join later are learnt from their join.
	Peers map[string]string
	// ResyncEvery is how often the latest token is offered to every HSM (a
	// restarted one has none); 2 s if zero.
	ResyncEvery time.Duration
	// KMSAddr, if set, serves the AWS KMS JSON API there, authenticating
	// requests against Credentials.
	KMSAddr     string
	Credentials *kmsapi.Credentials
	// AuditFile receives one audit event (JSON line) per KMS API request;
	// Dir/audit.jsonl if empty.
	AuditFile string
	// RaftTLS, if set, carries raft traffic over mutual TLS (LoadRaftTLS);
	// plain TCP otherwise.
	RaftTLS *tls.Config
	// SessionValidity is the HSMs' session validity (session.DefaultValidity
	// if zero): a scheduled rotation does not drop a domain key while a
	// session made under it may still live.
	SessionValidity time.Duration
	// RotationInterval is how old the active domain key may grow before
	// the leader proposes RotateDomainKeys, signed by its own service-host
	// key; DefaultRotationInterval if zero, never if negative.
	RotationInterval time.Duration
	// HSMBatchWorkers is how many batches of hierarchy commands may be in
	// flight to the HSMs at once (DefaultHSMBatchWorkers if zero). Fewer
	// make larger batches; more keep more HSMs busy.
	HSMBatchWorkers int
	// HybridSessions makes every session hybrid (ML-KEM-1024 + P-384),
	// even while the domain's policy allows classical ones.
	HybridSessions bool
	// KeyMaintenanceEvery is how often the leader deletes keys whose
	// pending window has passed and rotates keys whose rotation is due;
	// one minute if zero.
	KeyMaintenanceEvery time.Duration
	// UsageEvery is how often the leader gathers the hosts' key usages
	// for GetKeyLastUsage (DefaultUsageEvery if zero).
	UsageEvery time.Duration
	// AttestationTime, if set, is the time Recipient attestation
	// documents are verified at instead of the clock (conformance runs).
	AttestationTime func() time.Time
	// Clock is the host's clock for key dates (time.Now if nil; tests
	// move it forward).
	Clock func() time.Time
	Log   *slog.Logger
	// KeyStores connects the host to PKCS#11 custom key stores (package
	// p11store); nil if it serves none.
	KeyStores kms.KeyStores
	// XKS reaches the XKS proxies of external key stores (package
	// xksstore); nil if the host serves none.
	XKS kms.XKSProxies
	// PeerRegions maps each peer region of multi-Region keys to its
	// hosts' peer-region URLs (https://…, tried in order until the
	// region's leader answers); RegionTLS is the mutual-TLS
	// configuration of that traffic (LoadRegionTLS), and RegionAddr, if
	// set, where this host serves the peer regions (regions.go). With
	// RegionTLS, the peer regions may also be set later (SetPeerRegion).
	PeerRegions map[string][]string
	RegionTLS   *tls.Config
	RegionAddr  string
}

// DefaultHSMBatchWorkers is how many batches may be in flight by default:
// the best measured on trent dev (docs/benchmarks.md, "how many batches
// may be in flight"), and again with every HSM in its own process
// (docs/benchmarks.md, "Cuts of the hot path": 2, 3, 4 and 6 workers, 2
// the cheapest per request on 2 cores among those). HSMs on machines of
// their own may warrant more; trent dev, whose HSMs share the host's
// cores, passes its own (dev's sharedShape: 1 on 2 cores).
const DefaultHSMBatchWorkers = 2

// Host is a running service host.
type Host struct {
	cfg   Config
	fsm   *domain.FSM
	raft  *raft.Raft
	store *raftboltdb.BoltStore
	snaps *raft.FileSnapshotStore
	trans *raft.NetworkTransport
	api   *http.Server
	apiLn net.Listener
	kms   *http.Server
	// kmsServer serves the KMS API (nil without credentials).
	kmsServer *kmsapi.Server
	audit     *audit.Log
	kmsLn     net.Listener
	region    *http.Server // the peer-region API (nil without RegionAddr)
	regionLn  net.Listener
	regionMu  sync.RWMutex
	peerURLs  map[string][]string // peer region → its hosts' URLs (Config.PeerRegions, SetPeerRegion)
	hsms      *session.Client
	log       *slog.Logger

	mu    sync.Mutex
	peers map[string]string // host ID → API URL
	// deliveries is the last logged outcome of token delivery per HSM.
	deliveries map[int]delivery

	fsmIndex *indexedFSM
	reads    rounds     // read-index rounds (consistency.go)
	readMu   sync.Mutex // guards readTerm and membership
	readTerm uint64     // the raft term whose first read has had its barrier
	// membership counts the configuration changes this host has in
	// flight (AddVoter, RemoveServer, Restore); sole is set, for a term,
	// only while none is (consistency.go, soleVoter).
	membership int
	sole       atomic.Pointer[soleTerm]
	// readsThrough is the highest index a read barrier found the FSM to
	// hold everything through (entries after the FSM's last never reach it).
	readsThrough atomic.Uint64

	ready readyCache // Ready's shared, single-flight check (consistency.go)

	delivered chan struct{} // poked when a new domain version commits
	resyncMu  sync.Mutex
	resyncing chan struct{} // closed when the resync in flight ends (hsmDo)
	metrics   *hostMetrics
	service   *kms.Service // the KMS API
	batch     *batcher
	stop      context.CancelFunc
	wg        sync.WaitGroup
}

// Start opens the raft stores and transport, starts raft, the API server
// and the token delivery loop. A first host then calls Bootstrap; others
// ask a member to Join.
func Start(cfg Config) (*Host, error) {
	if cfg.ID == "" || cfg.Signer == nil || cfg.Dir == "" {
		return nil, errors.New("host: incomplete configuration")
	}
	if cfg.KMSAddr != "" && cfg.Credentials == nil {
		return nil, errors.New("host: the KMS API needs credentials")
	}
	if cfg.HSMBatchWorkers == 0 {
		cfg.HSMBatchWorkers = DefaultHSMBatchWorkers
	}
	if cfg.ResyncEvery == 0 {
		cfg.ResyncEvery = 2 * time.Second
	}
	if cfg.RotationInterval == 0 {
		cfg.RotationInterval = DefaultRotationInterval
	}
	if cfg.SessionValidity == 0 {
		cfg.SessionValidity = session.DefaultValidity
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	h := &Host{cfg: cfg, fsm: domain.NewFSM(), log: log, peers: map[string]string{}, deliveries: map[int]delivery{}, delivered: make(chan struct{}, 1)}
	h.metrics = newHostMetrics(h)
	h.reads.fetch = h.readIndex
	h.ready.check = h.checkReady
	h.batch = newBatcher()
	started := false
	defer func() {
		if !started {
			h.Close() // whatever was opened before the failure
		}
	}()
	for id, u := range cfg.Peers {
		h.peers[id] = u
	}
	h.peerURLs = map[string][]string{}
	for r, us := range cfg.PeerRegions {
		h.peerURLs[r] = slices.Clone(us)
	}
	var err error
	if h.store, err = raftboltdb.NewBoltStore(filepath.Join(cfg.Dir, "raft.db")); err != nil {
		return nil, fmt.Errorf("host: raft store: %w", err)
	}
	if h.snaps, err = raft.NewFileSnapshotStore(cfg.Dir, 3, io.Discard); err != nil {
		return nil, fmt.Errorf("host: snapshots: %w", err)
	}
	if cfg.RaftTLS != nil {
		h.trans, err = newTLSTransport(cfg.RaftAddr, cfg.RaftTLS)
	} else {
		h.trans, err = raft.NewTCPTransport(cfg.RaftAddr, nil, 3, 5*time.Second, io.Discard)
	}
	if err != nil {
		return nil, fmt.Errorf("host: raft transport: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	rc.HeartbeatTimeout, rc.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
	rc.LeaderLeaseTimeout, rc.CommitTimeout = 250*time.Millisecond, 5*time.Millisecond
	h.fsmIndex = &indexedFSM{FSM: h.fsm, snaps: h.snaps}
	if h.raft, err = raft.NewRaft(rc, h.fsmIndex, h.store, h.store, h.snaps, h.trans); err != nil {
		return nil, fmt.Errorf("host: raft: %w", err)
	}
	if len(cfg.HSMs) > 0 {
		host := &session.Host{ID: cfg.ID, Signer: cfg.Signer, Dir: fsmDirectory{h.fsm}, Hybrid: h.hybridSessions}
		if h.hsms, err = session.NewClient(session.ClientConfig{Host: host, URLs: cfg.HSMs}); err != nil {
			return nil, err
		}
	}
	h.service = h.newService()
	if cfg.Credentials != nil {
		// The KMS API: on KMSAddr if set, and for requests other hosts
		// forward (key-store writes reach the leader this way).
		if cfg.AuditFile == "" {
			cfg.AuditFile = filepath.Join(cfg.Dir, "audit.jsonl")
			h.cfg.AuditFile = cfg.AuditFile
		}
		if h.audit, err = audit.Open(cfg.AuditFile); err != nil {
			return nil, err
		}
		h.kmsServer = &kmsapi.Server{
			Creds: cfg.Credentials, Operations: h.service.Operations(), Forward: h.forwardKMS,
			// Vouch for the clients of forwarded requests with the host's
			// identity key; believe only service hosts' vouchers.
			Peer: &kmsapi.Peer{ID: cfg.ID, Signer: cfg.Signer, HostKey: fsmDirectory{h.fsm}.HostKey},
			Record: func(e *audit.Event) error {
				// The audit trail is the record of requests; this line
				// repeats it for debugging only.
				// (Behind Enabled: the arguments would otherwise be
				// boxed on every request, debug or not.)
				if log.Enabled(context.Background(), slog.LevelDebug) {
					log.Debug("kms", "op", e.EventName, "request", e.RequestID, "error", e.ErrorCode)
				}
				h.metrics.kmsRequest(e.EventName, e.ErrorCode)
				return h.audit.Write(e)
			},
		}
	}
	if h.apiLn, err = net.Listen("tcp", cfg.APIAddr); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	h.api = &http.Server{Handler: h.handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	h.wg.Go(func() { h.api.Serve(h.apiLn) })
	if cfg.KMSAddr != "" {
		if h.kmsLn, err = net.Listen("tcp", cfg.KMSAddr); err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		h.kms = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: h.kmsServer}
		h.wg.Go(func() { h.kms.Serve(h.kmsLn) })
	}
	if err := h.startRegions(); err != nil {
		return nil, err
	}
	h.wg.Go(func() { h.deliverLoop(ctx) })
	h.wg.Go(func() { h.usageLoop(ctx) })
	if cfg.RotationInterval > 0 {
		h.wg.Go(func() { h.rotationLoop(ctx) })
	}
	if len(cfg.HSMs) > 0 {
		h.batch.start(ctx, cfg.HSMBatchWorkers, h.runBatch)
		h.wg.Go(func() { h.jobLoop(ctx) })
		h.wg.Go(func() { h.maintenanceLoop(ctx) })
		h.wg.Go(func() { h.keyStoreLoop(ctx) })
	}
	started = true
	return h, nil
}

// Dir is the host's data dir.
func (h *Host) Dir() string { return h.cfg.Dir }

// AuditFile is where the host records KMS API requests ("" without the
// API).
func (h *Host) AuditFile() string { return h.cfg.AuditFile }

// ID is the host's ID.
func (h *Host) ID() string { return h.cfg.ID }

// RaftAddr is the bound raft address.
func (h *Host) RaftAddr() string { return string(h.trans.LocalAddr()) }

// KMSURL is the URL of the host's KMS API ("" if it serves none).
func (h *Host) KMSURL() string {
	if h.kmsLn == nil {
		return ""
	}
	return "http://" + h.kmsLn.Addr().String()
}

// APIURL is the host's API URL.
func (h *Host) APIURL() string { return "http://" + h.apiLn.Addr().String() }

// FSM is the host's replicated state.
func (h *Host) FSM() *domain.FSM { return h.fsm }

// IsLeader reports whether this host leads raft.
func (h *Host) IsLeader() bool { return h.raft.State() == raft.Leader }

// Bootstrap makes this host the first voter and commits the domain's
// genesis token (from `trent domain create`), after checking it lists
// this host as a service host.
func (h *Host) Bootstrap(genesis []byte) error {
	p, err := domain.ParseToken(genesis)
	if err != nil {
		return err
	}
	if !isServiceHost(p.State, h.cfg.ID) {
		return ErrNotServiceHost
	}
	cfg := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(h.cfg.ID), Address: h.trans.LocalAddr()}}}
	if err := h.raft.BootstrapCluster(cfg).Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return nil // a restart: the raft state is on disk already
		}
		return fmt.Errorf("host: bootstrap: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !h.IsLeader() {
		if time.Now().After(deadline) {
			return ErrNoLeader
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = h.commit(genesis)
	return err
}

func isServiceHost(st *domain.State, id string) bool {
	for _, o := range st.Operators {
		if o.ID == id && o.Role == quorum.RoleServiceHost {
			return true
		}
	}
	return false
}

// commit proposes a domain token to raft and waits until it is applied.
func (h *Host) commit(token []byte) (uint64, error) {
	entry, err := domain.DomainEntry(uint64(time.Now().Unix()), token)
	if err != nil {
		return 0, err
	}
	f := h.raft.Apply(entry, 10*time.Second)
	if err := f.Error(); err != nil {
		return 0, fmt.Errorf("host: raft: %w", err)
	}
	switch r := f.Response().(type) {
	case error:
		return 0, r
	case domain.ApplyResult:
		h.poke()
		return r.Version, nil
	}
	return 0, errors.New("host: unexpected raft response")
}

func (h *Host) poke() {
	select {
	case h.delivered <- struct{}{}:
	default:
	}
}

// Submit runs the four-step change for a signed quorum command: on the
// leader, one member HSM exports the next token without enacting it, raft
// commits {command, token} (every host's FSM re-checks it), and the token
// is delivered to the HSMs; a follower forwards the command to the leader.
// It returns the new state version.
func (h *Host) Submit(ctx context.Context, signed []byte) (uint64, error) {
	if !h.IsLeader() {
		if _, self := h.raft.LeaderWithID(); string(self) != h.cfg.ID {
			return h.forward(ctx, signed)
		}
	}
	if st, _ := h.fsm.State(); st == nil {
		// Perhaps a new leader that has not applied the log yet.
		if err := h.raft.Barrier(10 * time.Second).Error(); err != nil {
			return 0, fmt.Errorf("host: barrier: %w", err)
		}
		if st, _ := h.fsm.State(); st == nil {
			return 0, ErrNoDomain
		}
	}
	if h.hsms == nil {
		return 0, errors.New("host: no HSM to export the token")
	}
	if _, _, err := quorum.ParseSignedCommand(signed); err != nil {
		return 0, err
	}
	// The HSM may not have the latest token yet (delivery is
	// asynchronous): hsmDo delivers it and asks once more. A command
	// refused for its own sake is refused again.
	exp, err := hsmcmd.Call(ctx, h.hsmDo, hsmcmd.ExportRequest{SignedCommand: signed}, hsmcmd.ParseExportResponse)
	if err != nil {
		return 0, err
	}
	v, err := h.commit(exp.Token)
	if errors.Is(err, raft.ErrNotLeader) {
		// Leadership moved before the entry was appended: nothing was
		// committed, so the new leader takes the command.
		return h.forward(ctx, signed)
	}
	return v, err
}

// forward sends a command to the leader's API.
func (h *Host) forward(ctx context.Context, signed []byte) (uint64, error) {
	u, err := h.leaderURL(ctx)
	if err != nil {
		return 0, err
	}
	return postVersion(ctx, u+pathSubmit, signed)
}

// leaderURL returns the leader's API URL, waiting up to LeaderWait for a
// leader to be known (a host that just joined, or an election).
func (h *Host) leaderURL(ctx context.Context) (string, error) {
	deadline := time.Now().Add(LeaderWait)
	for {
		_, id := h.raft.LeaderWithID()
		if string(id) == h.cfg.ID {
			return h.APIURL(), nil // elected meanwhile: our own API handles it
		}
		h.mu.Lock()
		u := h.peers[string(id)]
		h.mu.Unlock()
		if id != "" && u != "" {
			return u, nil
		}
		if time.Now().After(deadline) {
			return "", ErrNoLeader
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// LeaderWait is how long a follower waits to learn the leader before
// refusing to forward.
const LeaderWait = 5 * time.Second

// Join asks the host at apiURL (any member; followers forward) to add this
// host as a raft voter. The leader adds it only if the domain lists it as
// a service host.
func (h *Host) Join(ctx context.Context, apiURL string) error {
	body, err := h.joinRequest(time.Now())
	if err != nil {
		return err
	}
	_, err = postVersion(ctx, apiURL+pathJoin, body)
	return err
}

func (h *Host) addVoter(j *join) error {
	// A newly elected leader may not have applied the log yet: judge the
	// join against everything committed.
	if err := h.raft.Barrier(10 * time.Second).Error(); err != nil {
		return fmt.Errorf("host: barrier: %w", err)
	}
	st, _ := h.fsm.State()
	if st == nil {
		return ErrNoDomain
	}
	if err := j.check(st, time.Now()); err != nil {
		return err
	}
	h.beginMembership()
	err := h.raft.AddVoter(raft.ServerID(j.id), raft.ServerAddress(j.raftAddr), 0, 10*time.Second).Error()
	h.endMembership()
	if err != nil {
		return fmt.Errorf("host: add voter: %w", err)
	}
	h.mu.Lock()
	h.peers[j.id] = j.apiURL
	h.mu.Unlock()
	return nil
}

// deliverLoop offers the latest token to every HSM whenever a new version
// commits and every ResyncEvery: a restarted HSM (no domain keys) or a new
// member gets it as soon as it is reachable. "Not newer" answers are the
// normal case and are ignored.
func (h *Host) deliverLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.ResyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.delivered:
		}
		h.Deliver(ctx)
	}
}

// Deliver offers the latest token to every HSM now.
func (h *Host) Deliver(ctx context.Context) {
	_, token := h.fsm.State()
	if token == nil || h.hsms == nil {
		return
	}
	var wg sync.WaitGroup
	for i := range h.cfg.HSMs {
		wg.Go(func() {
			_, err := h.hsms.Post(ctx, i, hsmcmd.PathToken, token, 16)
			h.deliveryOutcome(i, err)
		})
	}
	wg.Wait()
}

// HSMVersions asks each HSM for its domain state version (0: none).
func (h *Host) HSMVersions(ctx context.Context) []uint64 {
	out := make([]uint64, len(h.cfg.HSMs))
	if h.hsms == nil {
		return out
	}
	for i := range h.cfg.HSMs {
		on := func(ctx context.Context, typ uint16, cmd []byte) ([]byte, error) {
			return h.hsms.DoOn(ctx, i, typ, cmd)
		}
		res, err := hsmcmd.Call(ctx, on, hsmcmd.DomainStatusRequest{}, hsmcmd.ParseDomainStatusResponse)
		if err != nil || len(res.State) == 0 {
			continue
		}
		if st, err := domain.ParseState(res.State); err == nil {
			out[i] = st.Version
		}
	}
	return out
}

// HSMSessionHybrid reports whether the host's current session with its
// HSMs is hybrid (ML-KEM-1024 + P-384); false if it has none.
func (h *Host) HSMSessionHybrid() bool { return h.hsms != nil && h.hsms.Hybrid() }

// Close stops the host: API, delivery loop, sessions, raft. It also
// releases a host that Start left half made.
func (h *Host) Close() error {
	if h.stop != nil {
		h.stop()
	}
	if h.api != nil {
		h.api.Close()
	}
	if h.kms != nil {
		h.kms.Close()
	}
	if h.region != nil {
		h.region.Close()
	}
	h.wg.Wait()
	if h.service != nil {
		h.service.CloseKeyStores()
	}
	if h.audit != nil {
		h.audit.Close()
	}
	if h.hsms != nil {
		h.hsms.Close()
	}
	var errs []error
	if h.raft != nil {
		errs = append(errs, h.raft.Shutdown().Error())
	}
	if h.trans != nil {
		errs = append(errs, h.trans.Close())
	}
	if h.store != nil {
		errs = append(errs, h.store.Close())
	}
	return errors.Join(errs...)
}

// hybridSessions says whether the host's Hellos are hybrid (ML-KEM-1024 +
// P-384): when its configuration asks for it, or the replicated domain's
// policy requires it (SetSessionPolicy).
func (h *Host) hybridSessions() bool {
	if h.cfg.HybridSessions {
		return true
	}
	st, _ := h.fsm.State()
	return st != nil && st.HybridRequired
}

// fsmDirectory is the session protocol's view of the replicated domain.
type fsmDirectory struct{ f *domain.FSM }

func (d fsmDirectory) dir() (*session.StaticDirectory, error) {
	st, _ := d.f.State()
	if st == nil {
		return nil, ErrNoDomain
	}
	return st.Directory()
}

func (d fsmDirectory) Domain() (string, uint64) {
	dir, err := d.dir()
	if err != nil {
		return "none", 0
	}
	return dir.Domain()
}

func (d fsmDirectory) HostKey(id string) (*ecdsa.PublicKey, error) {
	dir, err := d.dir()
	if err != nil {
		return nil, err
	}
	return dir.HostKey(id)
}

func (d fsmDirectory) Member(id string) (*ecdsa.PublicKey, *ecdh.PublicKey, error) {
	dir, err := d.dir()
	if err != nil {
		return nil, nil, err
	}
	return dir.Member(id)
}

// The host API (internal to the cluster; the KMS API has its own listener).
const (
	pathSubmit = "/trent/v1/host/submit"
	pathJoin   = "/trent/v1/host/join"
	pathStatus = "/trent/v1/host/status"
	maxBody    = 1 << 20
)

func (h *Host) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathSubmit, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		v, err := h.Submit(r.Context(), body)
		h.metrics.submitted(err)
		writeVersion(w, v, err)
	})
	mux.Handle("GET "+pathMetrics, h.metrics.handler())
	h.adminHandlers(mux)
	h.tokenHandlers(mux)
	h.consistencyHandlers(mux)
	h.usageHandlers(mux)
	mux.HandleFunc("POST "+pathReencrypt, h.reencryptHandler)
	if h.kmsServer != nil {
		mux.HandleFunc("POST "+kmsapi.ForwardPath, h.kmsServer.ServeForwarded)
	}
	mux.HandleFunc("GET "+pathStatus, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(h.Status(r.Context()))
	})
	mux.HandleFunc("POST "+pathJoin, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		j, err := parseJoin(body)
		if err == nil {
			if h.IsLeader() {
				err = h.addVoter(j)
			} else {
				var u string
				if u, err = h.leaderURL(r.Context()); err == nil {
					_, err = postVersion(r.Context(), u+pathJoin, body)
				}
			}
		}
		writeVersion(w, 0, err)
	})
	return mux
}

func writeVersion(w http.ResponseWriter, v uint64, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	w.Write(binary.BigEndian.AppendUint64(nil, v))
}

func postVersion(ctx context.Context, url string, body []byte) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("host: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, fmt.Errorf("host: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("host: %s: %s", url, bytes.TrimSpace(out))
	}
	if len(out) != 8 {
		return 0, errors.New("host: malformed answer")
	}
	return binary.BigEndian.Uint64(out), nil
}

// SetPeer records another host's API URL, for forwarding to the leader.
func (h *Host) SetPeer(id, apiURL string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.peers[id] = apiURL
}

// Status is what `trent domain status` shows of a host.
type Status struct {
	ID           string      `json:"id"`
	Leader       string      `json:"leader"`
	Term         string      `json:"term"`
	Peers        []string    `json:"peers"`
	Domain       string      `json:"domain"`
	StateVersion uint64      `json:"state_version"`
	Members      []string    `json:"members"`
	HSMs         []HSMStatus `json:"hsms"`
	Keys         []KeyStatus `json:"domain_keys"`
	EKTs         int         `json:"ekts"`
	EKTsOutdated int         `json:"ekts_outdated"`
	NextRotation *time.Time  `json:"next_rotation,omitempty"`
	// Ready says whether the host serves KMS requests truthfully now;
	// until it does (Ready.CaughtUp false), the fields above are this
	// host's view, which may trail the cluster's.
	Ready Readiness `json:"ready"`
}

// HSMStatus is one HSM's state version as this host sees it (0: none).
type HSMStatus struct {
	URL          string `json:"url"`
	StateVersion uint64 `json:"state_version"`
}

// KeyStatus is a domain key's record.
type KeyStatus struct {
	ID      string    `json:"id"`
	Active  bool      `json:"active"`
	Created time.Time `json:"created"`
}

// Status reports the host's view: raft leader, term and peers, the domain
// state, each HSM's state version, the domain keys.
func (h *Host) Status(ctx context.Context) Status {
	// Readiness first: its read barrier makes what follows the cluster's
	// state, not a half-replayed log's.
	s := Status{ID: h.cfg.ID, Term: h.raft.Stats()["term"], Ready: h.Ready(ctx)}
	_, leader := h.raft.LeaderWithID()
	s.Leader = string(leader)
	if f := h.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			s.Peers = append(s.Peers, string(srv.ID))
		}
	}
	if st, _ := h.fsm.State(); st != nil {
		s.Domain, s.StateVersion = st.Name, st.Version
		for _, m := range st.Members {
			s.Members = append(s.Members, m.ID)
		}
		for _, k := range st.Keys {
			s.Keys = append(s.Keys, KeyStatus{ID: hex.EncodeToString(k.ID[:]), Active: k.Active, Created: time.Unix(int64(k.Created), 0).UTC()})
			if k.Active && h.cfg.RotationInterval > 0 {
				next := time.Unix(int64(k.Created), 0).Add(h.cfg.RotationInterval).UTC()
				s.NextRotation = &next
			}
		}
	}
	for i, v := range h.HSMVersions(ctx) {
		s.HSMs = append(s.HSMs, HSMStatus{URL: h.cfg.HSMs[i], StateVersion: v})
	}
	s.EKTsOutdated, s.EKTs = h.EKTProgress()
	return s
}

// SubmitTo submits a signed quorum command to the host at apiURL and
// returns the state version it made.
func SubmitTo(ctx context.Context, apiURL string, signed []byte) (uint64, error) {
	return postVersion(ctx, apiURL+pathSubmit, signed)
}

// GetStatus fetches the status of the host at apiURL.
func GetStatus(ctx context.Context, apiURL string) (*Status, error) {
	var s Status
	if err := getJSON(ctx, apiURL+pathStatus, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// get fetches url (a host API) and returns at most limit bytes of a 200
// answer.
func get(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("host: %s: answer over %d bytes", url, limit)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("host: %s: %s", url, bytes.TrimSpace(data))
	}
	return data, nil
}

// getJSON fetches url and decodes its JSON answer strictly into v.
func getJSON(ctx context.Context, url string, v any) error {
	data, err := get(ctx, url, maxBody)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("host: %s: %w", url, err)
	}
	return nil
}

// DefaultRotationInterval is how often domain keys rotate by default.
const DefaultRotationInterval = 24 * time.Hour

// rotationLoop, on the leader, proposes RotateDomainKeys once the active
// domain key is RotationInterval old. A failed attempt is retried at the
// next tick.
func (h *Host) rotationLoop(ctx context.Context) {
	tick := min(max(h.cfg.RotationInterval/10, 100*time.Millisecond), time.Minute)
	h.onLeader(ctx, tick, func() { h.maybeRotate(ctx) })
}

// onLeader calls f every interval while this host leads, until ctx ends.
func (h *Host) onLeader(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if h.IsLeader() {
			f()
		}
	}
}

// maybeRotate proposes a rotation if one is due and nothing holds it back.
func (h *Host) maybeRotate(ctx context.Context) {
	st, _ := h.fsm.State()
	if st == nil {
		return
	}
	k, _ := st.ActiveKey()
	if time.Since(time.Unix(int64(k.Created), 0)) < h.cfg.RotationInterval {
		return
	}
	drop, deactivated := wouldDrop(st)
	if h.outdatedUnder(drop) {
		h.log.Info("scheduled rotation waits: EKTs are still under the domain key it would drop")
		return
	}
	if len(drop) > 0 && time.Since(deactivated) < h.cfg.SessionValidity {
		h.log.Info("scheduled rotation waits: sessions may still live under the domain key it would drop")
		return
	}
	if v, err := h.RotateNow(ctx, st); err != nil {
		h.log.Info("scheduled rotation", "err", err)
	} else {
		h.log.Info("scheduled rotation", "version", v)
	}
}

// RotateNow proposes RotateDomainKeys for the state st, signed by this
// host as a service host, through the four-step change.
func (h *Host) RotateNow(ctx context.Context, st *domain.State) (uint64, error) {
	c, err := quorum.NewCommand(st.Name, st.Version, quorum.RotateDomainKeys, nil, time.Now(), 0,
		func(b []byte) error { _, err := rand.Read(b); return err })
	if err != nil {
		return 0, err
	}
	raw, err := c.Marshal()
	if err != nil {
		return 0, err
	}
	sig, err := quorum.SignECDSA(h.cfg.ID, h.cfg.Signer, raw)
	if err != nil {
		return 0, err
	}
	sc := &quorum.SignedCommand{Command: raw, Signatures: []quorum.Signature{sig}}
	signed, err := sc.Marshal()
	if err != nil {
		return 0, err
	}
	return h.Submit(ctx, signed)
}

// Package dev runs the local development cluster behind `trent dev` and
// `make run`, on SoftHSM2 tokens (or NSS softoken tokens, Options.HSMModule)
// in one data dir: the HSM
// nodes (one token each, identity keys), dev operator and service-host keys,
// the domain made by a real genesis ceremony (a CreateDomain command signed
// by two dev operators, executed on the first HSM, its token imported by the
// others), the HSM protocol servers on loopback, and the service hosts:
// raft voters holding the domain and the key store, host-1 serving the
// AWS KMS API (with its audit trail and credentials file), and a simulated
// Nitro Secure Module whose root the domain trusts.
//
// # Processes
//
// With Options.Exec (trent dev's default), each HSM node and each service
// host runs as a process of that binary (trent hsm serve, trent host
// serve), as in production, with its output in DIR/logs/; Cluster.Procs
// and Proc give them to a supervisor (Options.Supervise: one that exits on
// its own is started again) or to the fault-injection suite, which kills,
// pauses and restarts them itself. Provisioning and the genesis ceremony
// run in this process first. Without Exec, everything runs in this
// process (the conformance mutation tests need that, to switch mutations
// on in the code they test).
package dev

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/internal/gctune"
	"github.com/trentkms/trent/kms/kmsapi"
	"github.com/trentkms/trent/nitro"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/tokenstore"
)

// Defaults.
const (
	DefaultHSMs   = 3
	DefaultListen = "127.0.0.1:7301"
	// DefaultKMSListen is where the dev cluster serves the KMS API.
	DefaultKMSListen = "127.0.0.1:4599"
	// DevRegion is the dev cluster's AWS region.
	DevRegion  = "us-east-1"
	DomainName = "dev"
	HostID     = "host-1"
)

// Options configure a dev cluster.
type Options struct {
	Dir    string // data dir; the HSMs' tokens are in Dir/softhsm (Dir/nss with HSMModule NSS)
	HSMs   int    // number of HSM nodes; DefaultHSMs if zero
	Hosts  int    // number of service hosts (raft voters), 0 to 5
	Listen string // address of the first HSM; the others take the next ports (port 0: any free port each)
	// KMSListen is where host-1 serves the AWS KMS JSON API
	// (DefaultKMSListen if empty; no API without hosts).
	KMSListen string
	// RotationInterval is the hosts' domain-key rotation interval
	// (host.DefaultRotationInterval if zero, never if negative).
	RotationInterval time.Duration
	// Hybrid makes the genesis domain require hybrid (ML-KEM-1024 +
	// P-384) key establishment: every session and every domain-key
	// transport is hybrid. The members' ML-KEM keys are in the genesis
	// state either way.
	Hybrid bool
	// AttestationTime, if set, is when HSMs and hosts verify attestation
	// documents instead of the clock (conformance runs only).
	AttestationTime func() time.Time
	// Exec, if set, is the trent binary that runs each HSM node and each
	// service host as a process of its own (trent hsm serve, trent host
	// serve), as in production; if empty, they all run in this process
	// (the conformance mutation tests need that).
	Exec string
	// Supervise restarts a process that exits on its own (trent dev); the
	// fault-injection suite leaves it off and restarts what it kills.
	Supervise bool
	// HostIPs, if set (Exec only), is the IP address service host i
	// listens on (raft, host API, KMS API) instead of Listen's: the
	// fault-injection suite gives each host a network namespace of its
	// own. One per host.
	HostIPs []string
	// Wrap, if set (Exec only), returns the command line that runs the
	// named process's trent command after it ("ip netns exec NS" for a
	// host in its namespace); nil: none. The wrapper must exec trent in
	// its place, so that signals reach it.
	Wrap func(name string) []string
	// KMSOnEveryHost (Exec only) has every service host serve the KMS
	// API (HostInfo.KMS), not only host-1.
	KMSOnEveryHost bool
	// XKSCAFile, if set, is a PEM file of CA certificates the hosts trust
	// for XKS proxies besides the system roots (trent host serve --xks-ca).
	XKSCAFile string
	// PprofBase, if not zero (and with Exec), gives each process a pprof
	// listener on loopback (--pprof): HSM i (from 0) on port PprofBase+i,
	// host j on PprofBase+HSMs+j.
	PprofBase int
	Log       *slog.Logger
	// Region is the cluster's AWS region (DevRegion if empty) and Domain
	// its domain's name (DomainName if empty): StartRegions runs one
	// cluster per region, each with a domain of its own.
	Region, Domain string
	// PeerRegions (Exec only), if set, are the other regions' clusters
	// for multi-Region keys: each region's hosts' peer-region URLs. The
	// hosts serve the peer regions on RegionListen (one address per
	// host) with the TLS identity in RegionTLS.
	PeerRegions  map[string][]string
	RegionTLS    RegionFiles
	RegionListen []string
	// HSMModule is the PKCS#11 module of the HSMs' tokens: SoftHSM2 (the
	// default) or NSS's softoken. A data dir keeps the module it started
	// with.
	HSMModule tokenstore.Kind
}

// RegionFiles are a region's peer-region TLS files: its certificate and
// key (PEM) and the CAs of its peer regions.
type RegionFiles struct{ Cert, Key, CA string }

// Cluster is a running dev cluster.
type Cluster struct {
	Dir         string     `json:"dir"`
	Domain      string     `json:"domain"`
	Region      string     `json:"region"`
	HostID      string     `json:"host_id"`
	HostKeyFile string     `json:"host_key_file"`
	TokenFile   string     `json:"domain_token_file"`
	HSMDir      string     `json:"hsm_dir"` // the HSMs' data dir (trent hsm serve --dir)
	HSMModule   string     `json:"hsm_module"`
	HSMs        []HSMNode  `json:"hsms"`
	Hosts       []HostInfo `json:"hosts"`
	KMSURL      string     `json:"kms_url,omitempty"`
	EnvFile     string     `json:"env_file,omitempty"`
	// SimNSMFile is the simulated NSM (nitro.SimCA) whose root the domain
	// trusts beside the AWS Nitro root: `trent enclave attest` and
	// `trent enclave run` sign attestation documents with it.
	SimNSMFile string         `json:"sim_nsm_file"`
	Operators  []OperatorInfo `json:"operators"`

	host   *session.Host
	nodes  []*node.Node
	hosts  []*host.Host
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error

	procs    []*Proc       // Options.Exec: the processes
	pool     []int         // Options.Exec with port 0: free ports to use
	stopping bool          // Stop has begun (no more restarts)
	state    *domain.State // Options.Exec: the domain state at start
	token    []byte
}

// HostInfo describes a service host of the cluster.
type HostInfo struct {
	ID      string `json:"id"`
	Raft    string `json:"raft"`
	API     string `json:"api"`
	KeyFile string `json:"key_file"`
	// KMS is the URL of the host's KMS API (Options.KMSOnEveryHost).
	KMS string `json:"kms,omitempty"`
}

// OperatorInfo describes a dev operator and its key file.
type OperatorInfo struct {
	ID      string `json:"id"`
	Role    string `json:"role"`
	KeyFile string `json:"key_file"`
}

// SimNSMFile is the simulated NSM's file name under Dir/nitro.
const SimNSMFile = "sim-nsm.pem"

// MaxHosts bounds Options.Hosts.
const MaxHosts = 5

// HSMNode describes one node of the cluster.
type HSMNode struct {
	node.Result
	URL string `json:"url"`
}

// Start provisions (or reuses) the cluster in opts.Dir and starts it,
// calling progress (if not nil) before each step.
func Start(opts Options, progress func(step string)) (*Cluster, error) {
	say := func(format string, a ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, a...))
		}
	}
	if opts.Dir == "" {
		return nil, errors.New("dev: no data dir")
	}
	gctune.Servers() // the whole cluster is this process
	n := opts.HSMs
	if n == 0 {
		n = DefaultHSMs
	}
	if n < 1 || n > 16 {
		return nil, fmt.Errorf("dev: %d HSMs: want 1 to 16", n)
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	ip, port0, err := splitListen(opts.Listen)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	if opts.Region == "" {
		opts.Region = DevRegion
	}
	if opts.Domain == "" {
		opts.Domain = DomainName
	}
	if opts.PeerRegions != nil && (opts.Exec == "" || len(opts.RegionListen) != opts.Hosts) {
		return nil, errors.New("dev: peer regions need Exec and a region address per host")
	}
	c := &Cluster{Dir: opts.Dir, Domain: opts.Domain, Region: opts.Region, HostID: HostID,
		HostKeyFile: filepath.Join(opts.Dir, "operators", HostID+".pem"), TokenFile: filepath.Join(opts.Dir, "domain-token.bin")}
	if opts.Hosts < 0 || opts.Hosts > MaxHosts {
		return nil, fmt.Errorf("dev: %d hosts: want 0 to %d", opts.Hosts, MaxHosts)
	}
	if opts.Exec == "" && (opts.HostIPs != nil || opts.Wrap != nil || opts.KMSOnEveryHost) {
		return nil, errors.New("dev: HostIPs, Wrap and KMSOnEveryHost need Exec")
	}
	if opts.HostIPs != nil && len(opts.HostIPs) != opts.Hosts {
		return nil, fmt.Errorf("dev: %d host IPs for %d hosts", len(opts.HostIPs), opts.Hosts)
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "operators"), 0o700); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()

	// One data dir of tokens, one token per HSM node, in one module.
	kind := opts.HSMModule
	if kind == "" {
		kind = tokenstore.SoftHSM
	}
	for _, other := range tokenstore.Kinds {
		if other != kind && fileExists(filepath.Join(opts.Dir, string(other))) {
			return nil, fmt.Errorf("dev: %s holds HSM tokens in %s (%s): its domain's HSMs are there; use another data dir for %s", opts.Dir, filepath.Join(opts.Dir, string(other)), other, kind)
		}
	}
	store, err := tokenstore.Create(kind, filepath.Join(opts.Dir, string(kind)), "")
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	softDir := store.Dir()
	c.HSMDir, c.HSMModule = softDir, string(kind)
	tokenOf := func(label string) node.Options {
		return node.Options{Dir: softDir, Kind: kind, Label: label, PINFile: filepath.Join(softDir, node.UserPINFile)}
	}
	for i := 1; i <= n; i++ {
		label := fmt.Sprintf("hsm-%d", i)
		say("[%d/%d] HSM node %s: token and identity keys", i, n, label)
		r, err := node.Init(node.InitOptions{Dir: softDir, Label: label, Module: string(kind)})
		if err != nil {
			return nil, fmt.Errorf("dev: %s: %w", label, err)
		}
		c.HSMs = append(c.HSMs, HSMNode{Result: *r})
	}

	hostIDs := []string{HostID}
	for i := 2; i <= opts.Hosts; i++ {
		hostIDs = append(hostIDs, fmt.Sprintf("host-%d", i))
	}
	say("dev operators %s and service hosts %s: keys in %s (dev mode: PEM files)",
		strings.Join(devOperators, ", "), strings.Join(hostIDs, ", "), filepath.Join(opts.Dir, "operators"))
	genesis := &domain.State{Name: opts.Domain, Rules: quorum.DefaultRules(), Retention: domain.DefaultRetention}
	c.SimNSMFile = filepath.Join(opts.Dir, "nitro", SimNSMFile)
	sim, created, err := nitro.OpenSimCA(c.SimNSMFile)
	if err != nil {
		return nil, fmt.Errorf("dev: simulated NSM: %w", err)
	}
	if created {
		say("simulated Nitro Secure Module: a CA hierarchy in %s; the domain trusts its root and the AWS Nitro root", c.SimNSMFile)
	}
	genesis.Roots = [][]byte{sim.Root.Raw}
	hostKeys := map[string]*ecdsa.PrivateKey{}
	for _, id := range hostIDs {
		file := filepath.Join(opts.Dir, "operators", id+".pem")
		k, err := loadOrMakeKey(file)
		if err != nil {
			return nil, err
		}
		pk, err := quorum.NewECDSAKey(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		hostKeys[id] = k
		genesis.Operators = append(genesis.Operators, quorum.Operator{ID: id, Role: quorum.RoleServiceHost, Key: pk})
		c.Operators = append(c.Operators, OperatorInfo{ID: id, Role: quorum.RoleServiceHost, KeyFile: file})
	}
	hostKey := hostKeys[HostID]
	var opKeys []*ecdsa.PrivateKey
	for _, id := range devOperators {
		file := filepath.Join(opts.Dir, "operators", id+".pem")
		k, err := loadOrMakeKey(file)
		if err != nil {
			return nil, err
		}
		c.Operators = append(c.Operators, OperatorInfo{ID: id, Role: quorum.RoleKMSOperator, KeyFile: file})
		pk, err := quorum.NewECDSAKey(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		genesis.Operators = append(genesis.Operators, quorum.Operator{ID: id, Role: quorum.RoleKMSOperator, Key: pk})
		opKeys = append(opKeys, k)
	}
	slices.SortFunc(genesis.Operators, func(a, b quorum.Operator) int { return strings.Compare(a.ID, b.ID) })
	for _, h := range c.HSMs {
		m, err := domain.ParseMember(h.HSMID, h.SigningPublicKey, h.AgreementPublicKey)
		if err != nil {
			return nil, err
		}
		m.KEM = h.KEMPublicKey
		genesis.Members = append(genesis.Members, m)
	}
	genesis.HybridRequired = opts.Hybrid
	slices.SortFunc(genesis.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })

	// The domain: with hosts, their raft state holds it (a restart resumes
	// it and the hosts resync the HSMs); without, the saved token does.
	resume := opts.Hosts > 0 && fileExists(filepath.Join(opts.Dir, "hosts", HostID, "raft.db"))
	token, err := savedToken(c.TokenFile, genesis.Members, opts.Hybrid)
	if err != nil {
		return nil, err
	}
	if !resume && (token == nil || opts.Hosts > 0) {
		// A new genesis: this dev cluster makes a new domain for its HSMs,
		// so, as their operator, it clears the domain anchors a previous
		// run left in their tokens (an anchored token refuses genesis and
		// another domain's tokens).
		for _, h := range c.HSMs {
			r, err := node.ResetAnchor(tokenOf(h.TokenLabel))
			if err != nil {
				return nil, fmt.Errorf("dev: %s: %w", h.TokenLabel, err)
			}
			if r.Removed {
				say("HSM %s: cleared the domain anchor of a previous run", h.TokenLabel)
			}
		}
	}
	for _, h := range c.HSMs {
		o := tokenOf(h.TokenLabel)
		o.Log, o.AttestationTime = opts.Log, opts.AttestationTime
		nd, err := node.Open(o)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	switch {
	case resume:
		say("domain %q: resumed from the hosts' raft state; the hosts give every HSM the latest token", opts.Domain)
	case token != nil && opts.Hosts == 0:
		say("domain %q: the saved token %s, imported by every HSM (their domain keys were session objects)", opts.Domain, c.TokenFile)
	default:
		say("genesis: CreateDomain %q signed by %s, executed on %s",
			opts.Domain, strings.Join(devOperators, " and "), c.HSMs[0].TokenLabel)
		sc, err := genesisCommand(genesis, devOperators, opKeys)
		if err != nil {
			return nil, err
		}
		if token, err = c.nodes[0].CreateDomain(sc, time.Now()); err != nil {
			return nil, fmt.Errorf("dev: genesis: %w", err)
		}
		if err := os.WriteFile(c.TokenFile, token, 0o644); err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
	}
	if opts.Hosts == 0 && opts.Exec == "" {
		for _, nd := range c.nodes {
			if st, _ := nd.DomainState(); st != nil {
				continue // the genesis HSM
			}
			if err := nd.Import(token, time.Now()); err != nil {
				return nil, fmt.Errorf("dev: %s: %w", nd.ID(), err)
			}
		}
	}
	if opts.Exec != "" {
		// The processes take the HSMs' tokens from here on.
		for _, nd := range c.nodes {
			nd.Close()
		}
		c.nodes = nil
		if err := c.startProcs(opts, ip, port0, hostIDs, hostKey, say); err != nil {
			return nil, err
		}
		if err := c.writeClusterFile(); err != nil {
			return nil, err
		}
		ok = true
		return c, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	for i, nd := range c.nodes {
		port := 0
		if port0 != 0 {
			port = port0 + i
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		c.HSMs[i].URL = "http://" + l.Addr().String()
		say("HSM %s (%s): serving the session protocol on %s", c.HSMs[i].TokenLabel, nd.ID(), l.Addr())
		c.wg.Go(func() {
			if err := nd.Serve(ctx, l); err != nil {
				c.mu.Lock()
				c.errs = append(c.errs, err)
				c.mu.Unlock()
			}
		})
	}
	if err := c.startHosts(opts, ip, port0, hostIDs, hostKeys, token, resume, say); err != nil {
		return nil, err
	}
	// Every HSM holds the domain (from the hosts, after a restart).
	deadline := time.Now().Add(30 * time.Second)
	for _, nd := range c.nodes {
		for {
			if st, _ := nd.DomainState(); st != nil {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("dev: %s got no domain token from the hosts", nd.ID())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	st, _ := c.nodes[0].DomainState()
	dir, err := st.Directory()
	if err != nil {
		return nil, err
	}
	c.host = &session.Host{ID: HostID, Signer: hostKey, Dir: dir, Hybrid: func() bool { return session.RequiresHybrid(dir) }}
	if err := c.writeClusterFile(); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// startHosts starts the service hosts: the first bootstraps raft with the
// genesis token (or resumes), the others join it.
func (c *Cluster) startHosts(opts Options, ip string, port0 int, ids []string, keys map[string]*ecdsa.PrivateKey, genesis []byte, resume bool, say func(string, ...any)) error {
	if opts.Hosts == 0 {
		return nil
	}
	var urls []string
	for _, h := range c.HSMs {
		urls = append(urls, h.URL)
	}
	addrs, err := c.hostAddrs(opts, ip, port0, ids)
	if err != nil {
		return err
	}
	had := map[string]bool{} // hosts with raft state from an earlier start
	for _, id := range ids {
		had[id] = fileExists(filepath.Join(opts.Dir, "hosts", id, "raft.db"))
	}
	creds, kmsAddr, err := c.credentials(opts)
	if err != nil {
		return err
	}
	ks, err := keyStores(c.HSMDir)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	xp, err := xksProxies(creds.Region, opts.XKSCAFile)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	for i, id := range ids {
		raftAddr, apiAddr := addrs[i].Raft, strings.TrimPrefix(addrs[i].API, "http://")
		cfg := host.Config{ID: id, Signer: keys[id], Dir: filepath.Join(opts.Dir, "hosts", id),
			RaftAddr: raftAddr, APIAddr: apiAddr, HSMs: urls,
			ResyncEvery: 250 * time.Millisecond, RotationInterval: opts.RotationInterval, Log: opts.Log,
			Credentials: creds, AttestationTime: opts.AttestationTime, // every host verifies requests forwarded to it as leader
			KeyStores: ks, XKS: xp}
		if i == 0 {
			cfg.KMSAddr, cfg.AuditFile = kmsAddr, filepath.Join(opts.Dir, "audit.jsonl")
		}
		h, err := host.Start(cfg)
		if err != nil {
			return fmt.Errorf("dev: %s: %w", id, err)
		}
		c.hosts = append(c.hosts, h)
		c.Hosts = append(c.Hosts, HostInfo{ID: id, Raft: h.RaftAddr(), API: h.APIURL(),
			KeyFile: filepath.Join(opts.Dir, "operators", id+".pem")})
	}
	for _, a := range c.hosts {
		for _, b := range c.hosts {
			a.SetPeer(b.ID(), b.APIURL())
		}
	}
	c.KMSURL, c.EnvFile = c.hosts[0].KMSURL(), filepath.Join(opts.Dir, "env")
	if err := writeEnv(c.EnvFile, creds, c.KMSURL); err != nil {
		return err
	}
	say("service host %s: raft on %s, API on %s, AWS KMS API on %s (bootstraps the raft cluster, or resumes it)",
		ids[0], c.hosts[0].RaftAddr(), c.hosts[0].APIURL(), c.KMSURL)
	if err := c.hosts[0].Bootstrap(genesis); err != nil {
		return fmt.Errorf("dev: %s: %w", ids[0], err)
	}
	for _, h := range c.hosts[1:] {
		if resume && had[h.ID()] {
			say("service host %s: raft on %s, API on %s (resumes)", h.ID(), h.RaftAddr(), h.APIURL())
			continue
		}
		say("service host %s: raft on %s, API on %s (joins)", h.ID(), h.RaftAddr(), h.APIURL())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := h.Join(ctx, c.hosts[0].APIURL())
		cancel()
		if err != nil {
			return fmt.Errorf("dev: %s: %w", h.ID(), err)
		}
	}
	return nil
}

// hostAddrs gives each host its raft and API addresses: those of an
// earlier start if it left raft state (raft's configuration on disk names
// them), else port0+100+i and port0+200+i, or free ports if port0 is 0.
func (c *Cluster) hostAddrs(opts Options, ip string, port0 int, ids []string) ([]HostInfo, error) {
	previous := map[string]HostInfo{}
	if data, err := boundedio.ReadFile(filepath.Join(opts.Dir, "cluster.json"), 1<<20); err == nil {
		var old Cluster
		if json.Unmarshal(data, &old) == nil {
			for _, h := range old.Hosts {
				previous[h.ID] = h
			}
		}
	}
	addr := func(base, i int) string {
		port := 0
		switch {
		case port0 != 0:
			port = port0 + base + i
		case opts.Exec != "":
			// Processes cannot report a port back before their peers
			// need it: free ports chosen here.
			port = c.freePort()
		}
		hostIP := ip
		if opts.HostIPs != nil {
			hostIP = opts.HostIPs[i]
		}
		return net.JoinHostPort(hostIP, strconv.Itoa(port))
	}
	var out []HostInfo
	for i, id := range ids {
		h := HostInfo{ID: id, Raft: addr(100, i), API: "http://" + addr(200, i), KeyFile: filepath.Join(opts.Dir, "operators", id+".pem")}
		if opts.KMSOnEveryHost {
			h.KMS = "http://" + addr(300, i)
		}
		if p, ok := previous[id]; ok && fileExists(filepath.Join(opts.Dir, "hosts", id, "raft.db")) {
			h.Raft, h.API = p.Raft, p.API
			if p.KMS != "" && h.KMS != "" {
				h.KMS = p.KMS // clients keep their endpoints across a restart
			}
		}
		out = append(out, h)
	}
	return out, nil
}

// credentials are the dev cluster's KMS API credentials and address.
func (c *Cluster) credentials(opts Options) (*kmsapi.Credentials, string, error) {
	creds, err := devCredentials(filepath.Join(opts.Dir, "credentials.json"), opts.Region)
	if err != nil {
		return nil, "", err
	}
	kmsAddr := opts.KMSListen
	if kmsAddr == "" {
		kmsAddr = DefaultKMSListen
	}
	if ip, port, err := net.SplitHostPort(kmsAddr); err == nil && port == "0" && opts.Exec != "" {
		kmsAddr = net.JoinHostPort(ip, strconv.Itoa(c.freePort()))
	}
	return creds, kmsAddr, nil
}

// useState records the domain's latest state (from a token file or raw
// token) and the dev host's session view of it, for Check.
func (c *Cluster) useState(file string, raw []byte, hostKey *ecdsa.PrivateKey) error {
	if raw == nil {
		var err error
		if raw, err = boundedio.ReadFile(file, hsmcmd.MaxTokenSize); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
	}
	p, err := domain.ParseToken(raw)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	dir, err := p.State.Directory()
	if err != nil {
		return err
	}
	c.state, c.token = p.State, raw
	c.host = &session.Host{ID: HostID, Signer: hostKey, Dir: dir, Hybrid: func() bool { return session.RequiresHybrid(dir) }}
	return nil
}

// devCredentials reads the dev cluster's KMS API credentials, making them
// first if absent: one access key of a dev IAM user in account
// 000000000000, in region (mode 0600: dev mode only).
func devCredentials(path, region string) (*kmsapi.Credentials, error) {
	if fileExists(path) {
		return kmsapi.ReadCredentials(path)
	}
	raw := make([]byte, 40)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	akid := []byte("AKIA")
	for _, b := range raw[:16] {
		akid = append(akid, upper[int(b)%len(upper)])
	}
	c := &kmsapi.Credentials{Region: region, Credentials: []kmsapi.Credential{{
		AccessKeyID: string(akid), SecretAccessKey: base64.RawURLEncoding.EncodeToString(raw[16:]),
		AccountID: "000000000000", ARN: "arn:aws:iam::000000000000:user/dev"}}}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	return c, nil
}

// writeEnv writes the shell variables that point the AWS CLI and SDKs at
// the dev cluster (mode 0600: it holds the dev secret key).
func writeEnv(path string, c *kmsapi.Credentials, url string) error {
	cr := c.Credentials[0]
	env := fmt.Sprintf("export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\nexport AWS_REGION=%s\nexport AWS_DEFAULT_REGION=%s\nexport AWS_ENDPOINT_URL=%s\n",
		cr.AccessKeyID, cr.SecretAccessKey, c.Region, c.Region, url)
	if err := os.WriteFile(path, []byte(env), 0o600); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	return nil
}

// writeClusterFile writes DIR/cluster.json: addresses, key files, domain.
func (c *Cluster) writeClusterFile() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, "cluster.json"), append(data, '\n'), 0o644)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// savedToken returns the domain token saved by an earlier start if its
// members are exactly members and its session policy is hybrid's, else
// nil (a new genesis is then made).
func savedToken(path string, members []session.Member, hybrid bool) ([]byte, error) {
	data, err := boundedio.ReadFile(path, hsmcmd.MaxTokenSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	p, err := domain.ParseToken(data)
	if err != nil {
		return nil, fmt.Errorf("dev: %s: %w", path, err)
	}
	if !slices.EqualFunc(p.State.Members, members, func(a, b session.Member) bool { return a.ID == b.ID }) ||
		p.State.HybridRequired != hybrid {
		return nil, nil
	}
	return data, nil
}

// devOperators are the dev cluster's kms-operators: two, so that the
// default rules (two kms-operators) can be met.
var devOperators = []string{"dev-operator-1", "dev-operator-2"}

// genesisCommand is the CreateDomain command for st, signed by the dev
// operators.
func genesisCommand(st *domain.State, ids []string, keys []*ecdsa.PrivateKey) (*quorum.SignedCommand, error) {
	params, err := domain.ParamsGenesis(st)
	if err != nil {
		return nil, err
	}
	c, err := quorum.NewCommand(st.Name, 0, quorum.CreateDomain, params, time.Now(), 0,
		func(b []byte) error { _, err := rand.Read(b); return err })
	if err != nil {
		return nil, err
	}
	raw, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	sc := &quorum.SignedCommand{Command: raw}
	for i, id := range ids {
		sig, err := quorum.SignECDSA(id, keys[i], raw)
		if err != nil {
			return nil, err
		}
		if err := sc.Add(sig); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// CheckResult is one HSM's answer to the self-check.
type CheckResult struct {
	HSM     string        `json:"hsm"`
	URL     string        `json:"url"`
	Latency time.Duration `json:"latency_ns"`
}

// Check makes a session as the dev host and pings every HSM in it: the
// session made with the first HSM is served by all of them.
func (c *Cluster) Check(ctx context.Context) ([]CheckResult, error) {
	var urls []string
	for _, h := range c.HSMs {
		urls = append(urls, h.URL)
	}
	cl, err := session.NewClient(session.ClientConfig{Host: c.host, URLs: urls})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []CheckResult
	for i, h := range c.HSMs {
		start := time.Now()
		msg := []byte("ping " + h.HSMID)
		got, err := cl.DoOn(ctx, i, uint16(hsmcmd.Ping), msg)
		if err != nil {
			return out, fmt.Errorf("dev: %s: %w", h.HSMID, err)
		}
		if string(got) != string(msg) {
			return out, fmt.Errorf("dev: %s answered %q", h.HSMID, got)
		}
		out = append(out, CheckResult{HSM: h.HSMID, URL: h.URL, Latency: time.Since(start)})
	}
	return out, nil
}

// Stop stops the servers and closes the tokens (the domain keys, session
// objects, are gone with them).
func (c *Cluster) Stop() error {
	if c.procs != nil {
		return c.stopProcs()
	}
	var herrs []error
	for _, h := range c.hosts {
		herrs = append(herrs, h.Close())
	}
	c.hosts = nil
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	var errs []error
	for _, nd := range c.nodes {
		errs = append(errs, nd.Close())
	}
	c.nodes = nil
	c.mu.Lock()
	errs = append(errs, c.errs...)
	c.mu.Unlock()
	return errors.Join(append(herrs, errs...)...)
}

func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("dev: listen address: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535-16 {
		return "", 0, fmt.Errorf("dev: listen port %q", p)
	}
	return host, port, nil
}

// loadOrMakeKey reads the dev host's P-384 key (PKCS#8 PEM), making it
// first if absent (mode 0600). Dev mode only: a production host keeps its
// identity key in a token.
func loadOrMakeKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := boundedio.ReadFile(path, 16<<10)
	if errors.Is(err, os.ErrNotExist) {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		defer clear(der)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(rest) != 0 {
		return nil, fmt.Errorf("dev: %s is not one PKCS#8 PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dev: %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P384() {
		return nil, fmt.Errorf("dev: %s is not a P-384 key", path)
	}
	return ek, nil
}

// DomainState is the domain state the cluster's first HSM holds.
func (c *Cluster) DomainState() (*domain.State, []byte) {
	if c.procs != nil {
		return c.state, c.token
	}
	return c.nodes[0].DomainState()
}

// Package dev runs the local development cluster behind `trent dev` and
// `make run`, all in one process on SoftHSM tokens in one data dir: the HSM
// nodes (one token each, identity keys), dev operator and service-host keys,
// the domain made by a real genesis ceremony (a CreateDomain command signed
// by two dev operators, executed on the first HSM, its token imported by the
// others), and the HSM protocol servers on loopback. Service hosts, raft and
// the KMS API join it as the later issues land.
package dev

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
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
	"github.com/trentkms/trent/hsm/node"
	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/quorum"
	"github.com/trentkms/trent/session"
)

// Defaults.
const (
	DefaultHSMs   = 3
	DefaultListen = "127.0.0.1:7301"
	DomainName    = "dev"
	HostID        = "host-1"
)

// Options configure a dev cluster.
type Options struct {
	Dir    string // data dir; the SoftHSM data dir is Dir/softhsm
	HSMs   int    // number of HSM nodes; DefaultHSMs if zero
	Listen string // address of the first HSM; the others take the next ports (port 0: any free port each)
	Log    *slog.Logger
}

// Cluster is a running dev cluster.
type Cluster struct {
	Dir         string    `json:"dir"`
	Domain      string    `json:"domain"`
	HostID      string    `json:"host_id"`
	HostKeyFile string    `json:"host_key_file"`
	TokenFile   string    `json:"domain_token_file"`
	HSMs        []HSMNode `json:"hsms"`

	host   *session.Host
	nodes  []*node.Node
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

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
	c := &Cluster{Dir: opts.Dir, Domain: DomainName, HostID: HostID,
		HostKeyFile: filepath.Join(opts.Dir, HostID+".pem"), TokenFile: filepath.Join(opts.Dir, "domain-token.bin")}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()

	softDir := filepath.Join(opts.Dir, "softhsm")
	for i := 1; i <= n; i++ {
		label := fmt.Sprintf("hsm-%d", i)
		say("[%d/%d] HSM node %s: token and identity keys", i, n, label)
		r, err := node.Init(node.InitOptions{Dir: softDir, Label: label})
		if err != nil {
			return nil, fmt.Errorf("dev: %s: %w", label, err)
		}
		c.HSMs = append(c.HSMs, HSMNode{Result: *r})
	}

	say("service host %s and dev operators %s: keys in %s (dev mode: PEM files)", HostID, strings.Join(devOperators, ", "), opts.Dir)
	hostKey, err := loadOrMakeKey(c.HostKeyFile)
	if err != nil {
		return nil, err
	}
	hk, err := quorum.NewECDSAKey(&hostKey.PublicKey)
	if err != nil {
		return nil, err
	}
	genesis := &domain.State{Name: DomainName, Rules: quorum.DefaultRules(), Retention: domain.DefaultRetention,
		Operators: []quorum.Operator{{ID: HostID, Role: quorum.RoleServiceHost, Key: hk}}}
	var opKeys []*ecdsa.PrivateKey
	for _, id := range devOperators {
		k, err := loadOrMakeKey(filepath.Join(opts.Dir, id+".pem"))
		if err != nil {
			return nil, err
		}
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
		genesis.Members = append(genesis.Members, m)
	}
	slices.SortFunc(genesis.Members, func(a, b session.Member) int { return strings.Compare(a.ID, b.ID) })

	for _, h := range c.HSMs {
		nd, err := node.Open(node.Options{Dir: softDir, Label: h.TokenLabel, Log: opts.Log})
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	token, err := savedToken(c.TokenFile, genesis.Members)
	if err != nil {
		return nil, err
	}
	if token != nil {
		say("domain %q: the saved token %s, imported by every HSM (their domain keys were session objects)", DomainName, c.TokenFile)
	} else {
		say("genesis: CreateDomain %q signed by %s, executed on %s; its token imported by every HSM",
			DomainName, strings.Join(devOperators, " and "), c.HSMs[0].TokenLabel)
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
	for _, nd := range c.nodes {
		if st, _ := nd.DomainState(); st != nil {
			continue // the genesis HSM
		}
		if err := nd.Import(token, time.Now()); err != nil {
			return nil, fmt.Errorf("dev: %s: %w", nd.ID(), err)
		}
	}
	st, _ := c.nodes[0].DomainState()
	dir, err := st.Directory()
	if err != nil {
		return nil, err
	}
	c.host = &session.Host{ID: HostID, Signer: hostKey, Dir: dir}

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
	ok = true
	return c, nil
}

// savedToken returns the domain token saved by an earlier start if its
// members are exactly members, else nil (a new genesis is then made).
func savedToken(path string, members []session.Member) ([]byte, error) {
	data, err := boundedio.ReadFile(path, node.MaxTokenSize)
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
	if !slices.EqualFunc(p.State.Members, members, func(a, b session.Member) bool { return a.ID == b.ID }) {
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
		got, err := cl.DoOn(ctx, i, node.CmdPing, msg)
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
	return errors.Join(errs...)
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
func (c *Cluster) DomainState() (*domain.State, []byte) { return c.nodes[0].DomainState() }

package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/hsm"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/nitro"
	"github.com/trentkms/trent/session"
	"github.com/trentkms/trent/tokenstore"
)

// ErrNeedsDomainToken means a view of a domain with several member HSMs
// was given: their domain keys come in an exported domain token (from the
// genesis ceremony or a member), not from a view.
var ErrNeedsDomainToken = errors.New("node: a domain with several member HSMs gets its domain keys from a domain token: serve with --token")

// Options say how to open a node for serving.
type Options struct {
	// The token. Module is the PKCS#11 module that holds it, any
	// vendor's: the library path, the environment the library reads at
	// C_Initialize and the initialisation string it takes there
	// (tokenstore.Store.ModuleConfig gives SoftHSM2's and NSS's). Label is
	// the token label (DefaultLabel if empty); PIN the user PIN, or
	// PINFile a file holding it.
	Module  hsm.ModuleConfig
	Label   string
	PIN     string
	PINFile string
	// Dir is a shorthand for a node that Init provisioned, its data dir:
	// unless Module.Env or Module.InitArgs is set, the module is the one
	// whose tokens Dir holds (Kind, or what Dir's files show if Kind is
	// empty), at Module.Path or else where its packages install it, and
	// with neither PIN nor PINFile the PIN is read from Dir/user.pin. Dir
	// is read, never written.
	Dir  string
	Kind tokenstore.Kind

	View     *domain.View // the domain, which must list this HSM as a member
	Token    []byte       // or: a domain token to import at start (Serve)
	Validity time.Duration
	Log      *slog.Logger // nil: discard
	// AttestationTime, if set, is the time attestation documents are
	// verified at instead of the clock (conformance runs only).
	AttestationTime func() time.Time
}

// Node is an HSM node ready to serve: its token, identity, domain view and
// domain keys. Safe for concurrent use.
type Node struct {
	tok      *hsm.Token
	id       *hsm.Identity
	dir      *liveDirectory
	ring     *session.MemoryKeyRing
	hsm      *session.HSM
	srv      *session.Server
	log      *slog.Logger
	dom      held
	hbks     hbkCache
	nonces   noncePool
	keys     keyCache
	attestAt func() time.Time
	chains   nitro.ChainCache      // verified attestation cabundles
	kem      *mlkem1024.PrivateKey // the long-lived ML-KEM-1024 key, from the seed sealed in the token
	kemPub   []byte                // its encapsulation key

	metrics *nodeMetrics
}

// Open opens the node's token and identity and checks it is a member of
// the view. A node alone in its domain makes its domain key now, in its
// token; any other node starts with none and gets its domain from a token
// (CreateDomain, Import).
//
// A domain anchor in the token (see Anchor) is read and checked: a
// malformed one makes Open fail (ErrMalformedAnchor), since the node could
// not hold its trust rule; the operator inspects the token and clears the
// anchor with ResetAnchor (trent hsm reset-anchor).
func Open(opts Options) (*Node, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tok, err := openToken(&opts)
	if err != nil {
		return nil, err
	}
	n, err := open(tok, opts, log)
	if err != nil {
		tok.Close()
		return nil, err
	}
	return n, nil
}

// ErrNoModule means Options named neither a PKCS#11 module nor a data dir.
var ErrNoModule = errors.New("node: no PKCS#11 module: give a module path or the data dir of trent hsm init")

// openToken opens the token of opts (filling in the default label).
func openToken(opts *Options) (*hsm.Token, error) {
	cfg, err := tokenConfig(opts)
	if err != nil {
		return nil, err
	}
	tok, err := hsm.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return tok, nil
}

// tokenConfig resolves opts into the token's configuration: the module
// (given, or that of opts.Dir), the label and the PIN. It writes nothing.
func tokenConfig(opts *Options) (hsm.Config, error) {
	if opts.Label == "" {
		opts.Label = DefaultLabel
	}
	mod := opts.Module
	if opts.Dir != "" && len(mod.Env) == 0 && mod.InitArgs == "" {
		store, err := tokenstore.Open(opts.Kind, opts.Dir, mod.Path)
		if err != nil {
			return hsm.Config{}, fmt.Errorf("node: %w (run trent hsm init first)", err)
		}
		if mod, err = store.ModuleConfig(); err != nil {
			return hsm.Config{}, fmt.Errorf("node: %w", err)
		}
	}
	if mod.Path == "" {
		return hsm.Config{}, ErrNoModule
	}
	pin := opts.PIN
	if pin == "" {
		file, hint := opts.PINFile, ""
		if file == "" && opts.Dir != "" {
			file, hint = filepath.Join(opts.Dir, UserPINFile), " (no PIN given; run trent hsm init first)"
		}
		if file == "" {
			return hsm.Config{}, errors.New("node: no user PIN: give a PIN or a PIN file")
		}
		var err error
		if pin, err = tokenstore.ReadPINFile(file); err != nil {
			return hsm.Config{}, fmt.Errorf("%w%s", err, hint)
		}
	}
	return hsm.Config{Module: mod, TokenLabel: opts.Label, PIN: pin}, nil
}

func open(tok *hsm.Token, opts Options, log *slog.Logger) (*Node, error) {
	id, err := tok.Identity()
	if err != nil {
		return nil, fmt.Errorf("node: %w (run trent hsm init first)", err)
	}
	anchor, err := readAnchor(tok)
	if errors.Is(err, ErrMalformedAnchor) || errors.Is(err, ErrAnchorVersion) || errors.Is(err, hsm.ErrObjectAmbiguous) {
		return nil, fmt.Errorf("%w (the token of %s holds a damaged domain anchor: check the token, then clear it with trent hsm reset-anchor and give the node its domain's latest token)", err, id.ID())
	}
	if err != nil {
		return nil, err
	}
	if anchor != nil {
		log.Info("domain anchor", "hsm", id.ID(), "domain", anchor.Name, "version", anchor.Version)
	}
	n := &Node{tok: tok, id: id, dir: &liveDirectory{}, ring: session.NewMemoryKeyRing(), log: log, attestAt: opts.AttestationTime}
	// The ML-KEM key: a token provisioned before it existed gets one now.
	seed, created, err := tok.EnsureKEMSeed()
	if err != nil {
		return nil, fmt.Errorf("node: ML-KEM key: %w", err)
	}
	n.kem, n.kemPub, err = session.KEMKeyFromSeed(seed)
	clear(seed)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("made the ML-KEM-1024 key", "hsm", id.ID())
	}
	// Until the node holds a domain (View, CreateDomain or Import), its
	// directory is a domain of its own with no hosts: every Hello is
	// refused.
	self := []session.Member{{ID: id.ID(), Signing: id.Signing.PublicKey(), Agreement: id.Agreement.PublicKey()}}
	dir, err := session.NewStaticDirectory("none", 0, nil, self)
	if err != nil {
		return nil, err
	}
	if opts.View != nil {
		if !slices.ContainsFunc(opts.View.Members, func(m session.Member) bool { return m.ID == id.ID() }) {
			return nil, fmt.Errorf("node: %s is not a member of domain %q", id.ID(), opts.View.Name)
		}
		if dir, err = opts.View.Directory(); err != nil {
			return nil, err
		}
	}
	n.dir.p.Store(dir)
	n.hsm, err = session.NewHSM(session.HSMConfig{
		ID: id.ID(), Signer: id.Signing,
		NewEphemeral: func() (session.EphemeralKey, error) { return tok.GenerateEphemeralAgreementKey() },
		Rand:         tok.Reader(), Dir: n.dir, Keys: n.ring, Validity: opts.Validity,
	})
	if err != nil {
		return nil, err
	}
	n.srv = &session.Server{
		HSM: n.hsm,
		Posts: map[string]session.PostHandler{
			hsmcmd.PathToken: {Limit: hsmcmd.MaxTokenSize, Serve: n.importToken},
		},
		OnError: func(path string, err error) {
			log.Info("refused", "hsm", id.ID(), "path", path, "err", err)
		},
	}
	n.metrics = newNodeMetrics(n)
	n.srv.Commands = n.countCommands(n.commands())
	n.srv.Gets = map[string]http.Handler{PathMetrics: n.metrics.handler()}
	if opts.View != nil && len(opts.View.Members) == 1 {
		if err := n.newDomainKey(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ping echoes its command (hsmcmd.Ping): liveness and the empty command
// of the benchmarks. An oversized one is malformed (Alert 1), not refused.
func ping(r *session.Request) ([]byte, error) {
	req, err := hsmcmd.ParsePingRequest(r.Command)
	if err != nil {
		return nil, fmt.Errorf("%w: ping of %d bytes", session.ErrMalformed, len(r.Command))
	}
	return hsmcmd.PingResponse(*req).Marshal()
}

// ID is the node's HSM ID.
func (n *Node) ID() string { return n.id.ID() }

// KEMPublicKey is the node's ML-KEM-1024 encapsulation key.
func (n *Node) KEMPublicKey() []byte { return append([]byte(nil), n.kemPub...) }

// Identity is the node's identity keys.
func (n *Node) Identity() *hsm.Identity { return n.id }

// Handler is the node's protocol server.
func (n *Node) Handler() *session.Server { return n.srv }

// Serve serves the protocol on l until ctx ends.
func (n *Node) Serve(ctx context.Context, l net.Listener) error {
	n.log.Info("serving", "hsm", n.ID(), "addr", l.Addr().String())
	return n.srv.Serve(ctx, l)
}

// Close closes the token; the domain keys (session objects) are gone.
func (n *Node) Close() error { return n.tok.Close() }

// newDomainKey draws a domain key and its ID from the token RNG and makes
// the key the active one: a single-member domain given as a view.
func (n *Node) newDomainKey() error {
	raw, err := n.tok.Random(session.KeyIDSize + 32)
	if err != nil {
		return err
	}
	defer clear(raw)
	return n.importDomainKey(raw)
}

// importDomainKey takes keyID (16) ‖ key (32).
func (n *Node) importDomainKey(raw []byte) error {
	if len(raw) != session.KeyIDSize+32 {
		return errors.New("node: domain key payload of the wrong size")
	}
	k, err := n.tok.ImportSecretKey(hsm.AES256, raw[session.KeyIDSize:])
	if err != nil {
		return err
	}
	var id [session.KeyIDSize]byte
	copy(id[:], raw)
	n.ring.Add(id, k, true)
	return nil
}

// Serve opens the node of opts and serves it on listen until ctx ends,
// calling ready (if not nil) with the bound address. The domain comes from
// opts.Token (imported at start: any domain this HSM is a member of) or from
// opts.View, whose only member must be this node (ErrNeedsDomainToken
// otherwise).
func Serve(ctx context.Context, opts Options, listen string, ready func(addr string)) error {
	switch {
	case opts.Token != nil && opts.View != nil:
		return errors.New("node: a domain token or a view, not both")
	case opts.View != nil && len(opts.View.Members) > 1:
		return ErrNeedsDomainToken
	}
	n, err := Open(opts)
	if err != nil {
		return err
	}
	defer n.Close()
	switch {
	case opts.Token != nil:
		if err := n.Import(opts.Token, time.Now()); err != nil {
			return err
		}
		st, _ := n.DomainState()
		n.log.Info("imported domain token", "hsm", n.ID(), "domain", st.Name, "version", st.Version)
	case opts.View == nil:
		// Neither: the node serves its token endpoint and waits for a
		// service host to deliver the domain's latest token, which its
		// anchor admits (or, without an anchor, the first that lists it).
		n.log.Info("waiting for a service host to deliver the domain token", "hsm", n.ID())
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if ready != nil {
		ready(l.Addr().String())
	}
	return n.Serve(ctx, l)
}

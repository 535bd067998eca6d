package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/mlkem"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/conformance"
	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/internal/boundedio"
	"github.com/trentkms/trent/quorum"
	trentsession "github.com/trentkms/trent/session"
)

// The capabilities the suite's checks may need.
const (
	// CapOperators: operator keys of the domain are given
	// (--operator-key), so that the suite can sign quorum commands the
	// rules allow.
	CapOperators conformance.Capability = "operators"
	// CapDomainChange: the suite may move the HSM's domain to the next
	// state version (--allow-domain-change). Only for an HSM that no
	// service host depends on: the hosts would then hold an older state
	// than their HSM.
	CapDomainChange conformance.Capability = "domain-change"
	// CapFrames: the Hellos and Envelopes go in frames (--transport
	// frames, the default), so the frame layer's own checks run too.
	CapFrames conformance.Capability = "frames"
)

// DefaultMaxWait is how long HSM-EKT-003 waits at most for an EKT's
// validity period to end.
const DefaultMaxWait = 20 * time.Second

// maxTokenFile bounds the token files read.
const maxTokenFile = 1 << 20

// Config says which HSM to test and as which service host.
type Config struct {
	Target      string // base URL of the HSM ("http://127.0.0.1:7301")
	DomainToken string // file: the token of the domain state the HSM holds
	HostKey     string // PEM key file (or pkcs11:DIR:LABEL) of a service-host operator
	// HostID is the host's operator ID; empty: the service-host operator
	// of the domain whose key is HostKey's.
	HostID string
	// OperatorKeys are key files (or pkcs11:DIR:LABEL) of operators of
	// the domain, for the checks that need quorum commands the rules allow.
	OperatorKeys []string
	// OlderToken is a file holding a token of an earlier state version of
	// the domain, for HSM-TOK-003 (optional: a token the run supersedes
	// serves too).
	OlderToken string
	// AllowDomainChange lets HSM-TOK-002 import the next state version.
	AllowDomainChange bool
	MaxWait           time.Duration // DefaultMaxWait if zero; negative: never wait
	HTTPClient        *http.Client  // nil: cleartext HTTP/2 with prior knowledge
	// Transport carries the Hellos and Envelopes: TransportFrames (the
	// default, as hosts send them) or TransportHTTP2. Domain tokens go
	// over HTTP/2 either way.
	Transport string
}

// The transports of Config.Transport.
const (
	TransportFrames = "frames" // docs/protocol.md, "Frames": one connection, the hosts' way
	TransportHTTP2  = "http2"  // POST /trent/v1/hello and /trent/v1/envelope
)

// signerKey is a key the suite signs quorum commands with.
type signerKey struct {
	id, role string
	sign     func(cmd []byte) (quorum.Signature, error)
	ec       crypto.Signer // the key, if ECDSA
}

// known is a domain token the suite knows, decoded.
type known struct {
	raw   []byte
	p     *domain.Parsed
	state []byte // its encoded state
}

// Env is a configured target: the HSM's URL, the host's identity, the
// operators' keys and the domain states the suite knows. Its methods are
// called from one check at a time.
type Env struct {
	URL       string
	HostID    string
	Transport string // TransportFrames or TransportHTTP2
	host      crypto.Signer
	http      *http.Client
	frames    *trentsession.FrameConn // nil over HTTP/2
	addr      string                  // host:port of URL, for the frame layer's checks
	signers   []signerKey             // the host first, then the operators
	opsWhy    string                  // why there are no operator keys, if so
	allow     bool
	maxWait   time.Duration
	closers   []func() error

	mu      sync.Mutex
	current *known   // the state the HSM holds, as far as the suite knows
	tokens  []*known // every token seen, oldest first
	older   *known   // a token older than current, if any
	probe   *session // a session made early, for HSM-EKT-003
}

// NewEnv reads the configuration: the domain token, the host key and the
// operator keys, which must be the domain's.
func NewEnv(cfg Config) (*Env, error) {
	if cfg.Target == "" {
		return nil, errors.New("conformance: no target: give --target URL")
	}
	if cfg.DomainToken == "" || cfg.HostKey == "" {
		return nil, errors.New("conformance: give --domain-token FILE and --host-key FILE")
	}
	e := &Env{URL: strings.TrimRight(cfg.Target, "/"), http: cfg.HTTPClient, allow: cfg.AllowDomainChange, maxWait: cfg.MaxWait}
	if e.http == nil {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		e.http = &http.Client{Transport: &http.Transport{Protocols: p}, Timeout: 30 * time.Second}
	}
	if e.maxWait == 0 {
		e.maxWait = DefaultMaxWait
	}
	switch e.Transport = cfg.Transport; e.Transport {
	case "", TransportFrames:
		e.Transport = TransportFrames
		u, err := url.Parse(e.URL)
		if err != nil || u.Scheme != "http" || u.Host == "" || u.Path != "" {
			return nil, fmt.Errorf("conformance: frames need a target http://HOST:PORT, not %q (--transport http2 for another)", cfg.Target)
		}
		e.addr = u.Host
		if e.frames, err = trentsession.NewFrameConn(e.URL); err != nil {
			return nil, fmt.Errorf("conformance: %w", err)
		}
	case TransportHTTP2:
	default:
		return nil, fmt.Errorf("conformance: transport %q: give %s or %s", cfg.Transport, TransportFrames, TransportHTTP2)
	}
	tok, err := readToken(cfg.DomainToken)
	if err != nil {
		return nil, err
	}
	e.current = tok
	e.tokens = []*known{tok}
	st := tok.p.State
	if cfg.OlderToken != "" {
		old, err := readToken(cfg.OlderToken)
		if err != nil {
			return nil, err
		}
		if old.p.State.Name != st.Name || old.p.State.Version >= st.Version {
			return nil, fmt.Errorf("conformance: %s is not an older token of domain %q", cfg.OlderToken, st.Name)
		}
		e.older = old
	}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	hk, err := ceremony.OpenKey(cfg.HostKey, "")
	if err != nil {
		return nil, fmt.Errorf("conformance: host key: %w", err)
	}
	e.closers = append(e.closers, hk.Close)
	if e.host = hk.ECDSASigner(); e.host == nil {
		return nil, errors.New("conformance: the host key must be ECDSA P-384")
	}
	hostOp, err := operatorOf(st, hk.Public(), cfg.HostID)
	if err != nil {
		return nil, fmt.Errorf("conformance: host key: %w", err)
	}
	if hostOp.Role != quorum.RoleServiceHost {
		return nil, fmt.Errorf("conformance: host key: operator %q holds the role %s, not %s", hostOp.ID, hostOp.Role, quorum.RoleServiceHost)
	}
	e.HostID = hostOp.ID
	e.signers = append(e.signers, signerKey{id: hostOp.ID, role: hostOp.Role, sign: func(cmd []byte) (quorum.Signature, error) {
		return hk.Sign(hostOp.ID, cmd)
	}})
	for _, f := range cfg.OperatorKeys {
		k, err := ceremony.OpenKey(f, "")
		if err != nil {
			return nil, fmt.Errorf("conformance: operator key: %w", err)
		}
		e.closers = append(e.closers, k.Close)
		op, err := operatorOf(st, k.Public(), "")
		if err != nil {
			return nil, fmt.Errorf("conformance: operator key %s: %w", f, err)
		}
		if slices.ContainsFunc(e.signers, func(s signerKey) bool { return s.id == op.ID }) {
			return nil, fmt.Errorf("conformance: operator key %s: %q given twice", f, op.ID)
		}
		e.signers = append(e.signers, signerKey{id: op.ID, role: op.Role, ec: k.ECDSASigner(), sign: func(cmd []byte) (quorum.Signature, error) {
			return k.Sign(op.ID, cmd)
		}})
	}
	if len(cfg.OperatorKeys) == 0 {
		e.opsWhy = "no operator keys: give --operator-key FILE for operators of the domain (trent dev keeps them in DIR/operators)"
	}
	ok = true
	return e, nil
}

// Close releases the keys (those in tokens).
func (e *Env) Close() error {
	var errs []error
	for _, c := range e.closers {
		errs = append(errs, c())
	}
	e.closers = nil
	if e.frames != nil {
		e.frames.Close()
	}
	return errors.Join(errs...)
}

func readToken(path string) (*known, error) {
	raw, err := boundedio.ReadFile(path, maxTokenFile)
	if err != nil {
		return nil, fmt.Errorf("conformance: domain token: %w", err)
	}
	k, err := parseKnown(raw)
	if err != nil {
		return nil, fmt.Errorf("conformance: domain token %s: %w", path, err)
	}
	return k, nil
}

func parseKnown(raw []byte) (*known, error) {
	p, err := domain.ParseToken(raw)
	if err != nil {
		return nil, err
	}
	return &known{raw: bytes.Clone(raw), p: p, state: p.Token.State}, nil
}

// operatorOf finds the operator of st with key pub (and ID id, if given).
func operatorOf(st *domain.State, pub quorum.PublicKey, id string) (quorum.Operator, error) {
	for _, o := range st.Operators {
		if o.Key.Equal(pub) && (id == "" || id == o.ID) {
			return o, nil
		}
	}
	if id != "" {
		return quorum.Operator{}, fmt.Errorf("no operator %q with this key in domain %q version %d", id, st.Name, st.Version)
	}
	return quorum.Operator{}, fmt.Errorf("no operator with this key in domain %q version %d", st.Name, st.Version)
}

// Missing returns the capabilities the configuration lacks, each with
// the reason.
func (e *Env) Missing(checks []conformance.Check) map[conformance.Capability]string {
	out := map[conformance.Capability]string{}
	if e.opsWhy != "" {
		out[CapOperators] = e.opsWhy
	}
	if e.frames == nil {
		out[CapFrames] = "the Hellos and Envelopes go over HTTP/2 (--transport http2): the frame layer's checks need --transport frames"
	}
	if !e.allow {
		out[CapDomainChange] = "importing the next state version makes the HSM's domain newer than its service hosts': give --allow-domain-change for an HSM no host depends on"
	}
	return out
}

// Token is the domain token of the state the HSM holds, as far as the
// suite knows (it moves on when HSM-TOK-002 imports the next version).
func (e *Env) Token() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return bytes.Clone(e.current.raw)
}

// Version is the state version of Token.
func (e *Env) Version() uint64 { return e.cur().p.State.Version }

func (e *Env) cur() *known {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.current
}

// remember records a token the HSM exported.
func (e *Env) remember(raw []byte) (*known, error) {
	k, err := parseKnown(raw)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens = append(e.tokens, k)
	return k, nil
}

// adopt makes k the state the HSM holds.
func (e *Env) adopt(k *known) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current != k && e.current.p.State.Version < k.p.State.Version {
		e.older = e.current
	}
	e.current = k
}

// result is the outcome of a Hello's or an Envelope's exchange, or of an
// HTTP request.
type result struct {
	framed bool   // the answer came in a frame: status is 0
	ok     bool   // accepted: a Reply or Response (HTTP: status 200)
	status int    // HTTP
	body   []byte // the answer's body: a Reply, a Response or an Alert
	alert  *alert // decoded unless ok
}

func (r *result) String() string {
	switch {
	case r == nil:
		return "no answer"
	case r.framed && r.ok:
		return "an answer frame (accepted)"
	case r.framed && r.alert != nil:
		return fmt.Sprintf("an Alert frame, %s: %q", alertName(r.alert.Code), r.alert.Message)
	case r.framed:
		return fmt.Sprintf("an Alert frame whose body is not an Alert (%d bytes)", len(r.body))
	case r.ok:
		return "200 (accepted)"
	case r.alert != nil:
		return fmt.Sprintf("%d, %s: %q", r.status, alertName(r.alert.Code), r.alert.Message)
	}
	return fmt.Sprintf("%d with a body that is not an Alert (%d bytes)", r.status, len(r.body))
}

// sendHello sends a Hello over the Env's transport; a transport failure
// ends the check.
func (e *Env) sendHello(t *conformance.T, raw []byte) *result { return e.exchange(t, true, raw) }

// sendEnvelope sends an Envelope over the Env's transport.
func (e *Env) sendEnvelope(t *conformance.T, raw []byte) *result { return e.exchange(t, false, raw) }

func (e *Env) exchange(t *conformance.T, hello bool, raw []byte) *result {
	path := pathEnvelope
	if hello {
		path = pathHello
	}
	if e.frames == nil {
		return e.post(t, path, raw)
	}
	what := "an Envelope frame"
	if hello {
		what = "a Hello frame"
	}
	body, isAlert, err := e.frames.Exchange(t.Context(), hello, raw)
	t.Require(what, err)
	r := &result{framed: true, ok: !isAlert, body: body}
	if isAlert {
		r.alert, _ = parseAlert(body)
	}
	return r
}

// post sends body to path and reads the answer; a transport failure ends
// the check.
func (e *Env) post(t *conformance.T, path string, body []byte) *result {
	r, err := e.postContext(t.Context(), path, body)
	t.Require("POST "+path, err)
	return r
}

// postContext is post for cleanups (no T).
func (e *Env) postContext(ctx context.Context, path string, body []byte) (*result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	r := &result{status: resp.StatusCode, ok: resp.StatusCode == http.StatusOK, body: data}
	if !r.ok {
		r.alert, _ = parseAlert(data)
	}
	return r, nil
}

// expectAlert ends the check as failed unless r is a refusal with the
// Alert code: an Alert frame, or over HTTP status 400 and the Alert.
func expectAlert(t *conformance.T, what string, r *result, code uint16) {
	want := "400, " + alertName(code)
	if r.framed {
		want = "an Alert frame, " + alertName(code)
	}
	switch {
	case r.ok:
		t.Mismatch(what, want, r.String())
	case r.alert == nil:
		t.Mismatch(what, want, r.String())
	case r.alert.Code != code || !r.framed && r.status != http.StatusBadRequest:
		t.Mismatch(what, want, r.String())
	}
}

// hello describes a Hello to send; zero fields take the suite's defaults.
type hello struct {
	fields helloFields
	d1     *ecdh.PrivateKey
	dk     *mlkem.DecapsulationKey1024 // a hybrid Hello's ML-KEM key
	key    crypto.Signer
	raw    []byte
}

// newHello makes a correct Hello for the current state, then lets edit
// change its fields before it is signed (with key, the host's if nil). It
// is hybrid if the state requires hybrid key establishment.
func (e *Env) newHello(t *conformance.T, edit func(h *helloFields), key crypto.Signer) *hello {
	return e.newHelloMode(t, edit, key, e.cur().p.State.HybridRequired)
}

// newHelloMode is newHello, hybrid (version 2, with an ML-KEM-1024 key)
// or classical as asked.
func (e *Env) newHelloMode(t *conformance.T, edit func(h *helloFields), key crypto.Signer, hybrid bool) *hello {
	d1, err := ecdh.P384().GenerateKey(nil)
	t.Require("ephemeral key", err)
	st := e.cur().p.State
	h := &hello{d1: d1, key: key, fields: helloFields{Domain: st.Name, Version: st.Version, HostID: e.HostID,
		Q1: d1.PublicKey().Bytes(), HostNonce: hostNonce(), Time: uint64(time.Now().Unix())}}
	if hybrid {
		h.dk, err = mlkem.GenerateKey1024()
		t.Require("ML-KEM-1024 key", err)
		h.fields.EK = h.dk.EncapsulationKey().Bytes()
	}
	if edit != nil {
		edit(&h.fields)
	}
	if h.key == nil {
		h.key = e.host
	}
	h.raw, err = signHello(&h.fields, h.key)
	t.Require("sign hello", err)
	return h
}

// session is an established session, as the suite's host holds it.
type session struct {
	env       *Env
	hello     *hello
	reply     *reply
	sk        []byte
	hsmID     string
	notBefore uint64
	notAfter  uint64
	offset    int64 // the HSM's clock minus the suite's, seconds (±1)
	seq       uint64
}

// handshake sends h and, on a Reply, derives the session from the spec.
// It returns the exchange and the session (nil unless ESK opened).
func (e *Env) handshake(t *conformance.T, h *hello) (*result, *session, *derived, error) {
	before := time.Now().Unix()
	r := e.sendHello(t, h.raw)
	if !r.ok {
		return r, nil, nil, nil
	}
	s, d, err := e.sessionOf(h, r.body, before)
	return r, s, d, err
}

// sessionOf decodes the Reply to h, sent at before (Unix seconds), and
// derives the session from the spec.
func (e *Env) sessionOf(h *hello, body []byte, before int64) (*session, *derived, error) {
	rep, err := parseReply(body)
	if err != nil {
		return nil, nil, err
	}
	d, err := derive(h.raw, &h.fields, h.d1, h.dk, rep)
	if err != nil {
		return nil, d, err
	}
	return &session{env: e, hello: h, reply: rep, sk: d.SK, hsmID: rep.HSMID, notBefore: rep.NotBefore, notAfter: rep.NotAfter,
		offset: int64(rep.NotBefore) - before}, d, nil
}

// open makes a session for the check, following the HSM to the state it
// holds if that is one the suite knows (a check may have moved it). A
// failure ends the check.
func (e *Env) open(t *conformance.T) *session {
	s := e.tryOpen(t)
	if s == nil {
		e.sync(t)
		s = e.tryOpen(t)
	}
	if s == nil {
		st := e.cur().p.State
		t.Fatalf("setup: no session with the HSM at version %d of domain %q (an Alert 4 means it holds another state than the token given; see also HSM-HS-001 and HSM-HS-003)", st.Version, st.Name)
	}
	e.mu.Lock()
	needProbe := e.probe == nil
	e.mu.Unlock()
	if needProbe {
		if p := e.tryOpen(t); p != nil {
			if _, res := p.command(t, commandPing, []byte("probe")); res == nil {
				e.mu.Lock()
				e.probe = p
				e.mu.Unlock()
			}
		}
	}
	return s
}

func (e *Env) tryOpen(t *conformance.T) *session { return e.tryOpenAt(t, e.cur()) }

// tryOpenAt makes a session naming k's state, or logs why not.
func (e *Env) tryOpenAt(t *conformance.T, k *known) *session {
	h := e.newHelloMode(t, func(f *helloFields) { f.Domain, f.Version = k.p.State.Name, k.p.State.Version }, nil, k.p.State.HybridRequired)
	r, s, _, err := e.handshake(t, h)
	if err != nil {
		t.Logf("handshake: %v", err)
	} else if !r.ok {
		t.Logf("handshake: %s", r)
	}
	return s
}

// sync finds which known state the HSM holds by opening a session at each
// known version, newest first, and asking for its domain state.
func (e *Env) sync(t *conformance.T) {
	e.mu.Lock()
	tokens := slices.Clone(e.tokens)
	cur := e.current
	e.mu.Unlock()
	slices.SortStableFunc(tokens, func(a, b *known) int { return -cmpU64(a.p.State.Version, b.p.State.Version) })
	// A Hello names a version and is hybrid or not as its state requires:
	// one try per version and mode.
	type try struct {
		version uint64
		hybrid  bool
	}
	tried := map[try]bool{{cur.p.State.Version, cur.p.State.HybridRequired}: true}
	for _, k := range tokens {
		v := try{k.p.State.Version, k.p.State.HybridRequired}
		if tried[v] || k.p.State.Name != cur.p.State.Name {
			continue
		}
		tried[v] = true
		s := e.tryOpenAt(t, k)
		if s == nil {
			continue
		}
		st, res := s.command(t, commandDomainStatus, nil)
		if res != nil {
			continue
		}
		e.follow(t, st)
		return
	}
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// envelope returns an Envelope of the session with the next sequence
// number, not yet sealed.
func (s *session) envelope(typ uint16) *envelope {
	s.seq++
	return &envelope{EKT: s.reply.EKT, SessionID: s.reply.SessionID, HostID: s.hello.fields.HostID, Seq: s.seq, Type: typ}
}

// send posts an Envelope sealed under the session's key with command.
func (s *session) send(t *conformance.T, env *envelope, command []byte) (raw []byte, r *result) {
	raw = env.seal(s.sk, command).marshal()
	return raw, s.env.sendEnvelope(t, raw)
}

// command runs one command in the session: its response's plaintext, or
// the refusal (nil plaintext). A response that does not open ends the
// check.
func (s *session) command(t *conformance.T, typ uint16, cmd []byte) ([]byte, *result) {
	env := s.envelope(typ)
	raw, r := s.send(t, env, cmd)
	if !r.ok {
		return nil, r
	}
	pt, err := openResponse(s.sk, raw, r.body, env.SessionID, env.Seq)
	t.Require("the response to a command", err)
	return pt, nil
}

// ping sends a Ping with seq and expects its echo.
func (s *session) ping(t *conformance.T, what string, env *envelope) {
	payload := randomBytes(16)
	raw, r := s.send(t, env, payload)
	if !r.ok {
		t.Mismatch(what, "a Response with the echo", r.String())
	}
	pt, err := openResponse(s.sk, raw, r.body, env.SessionID, env.Seq)
	t.Require(what+": response", err)
	if !bytes.Equal(pt, payload) {
		t.Mismatch(what+": the Ping's echo", fmt.Sprintf("%x", payload), fmt.Sprintf("%x", pt))
	}
}

// domainStatus asks the HSM for its domain state (command 5).
func (e *Env) domainStatus(t *conformance.T) []byte {
	s := e.open(t)
	st, r := s.command(t, commandDomainStatus, nil)
	if r != nil {
		t.Mismatch("DomainStatus", "a Response", r.String())
	}
	e.follow(t, st)
	return st
}

// follow makes the known token of state st (the HSM's, by DomainStatus)
// the current one: an HSM that refuses no Hello of another version still
// moves on (HSM-TOK-002), or a check may have moved it.
func (e *Env) follow(t *conformance.T, st []byte) {
	e.mu.Lock()
	cur, remembered := e.current, slices.Clone(e.tokens)
	e.mu.Unlock()
	if bytes.Equal(cur.state, st) {
		return
	}
	for _, c := range slices.Backward(remembered) { // the latest exported first
		if bytes.Equal(c.state, st) {
			t.Logf("the HSM holds version %d of the domain", c.p.State.Version)
			e.adopt(c)
			return
		}
	}
}

// member returns the signing key of a member HSM of the current state.
func (e *Env) member(id string) (*ecdsa.PublicKey, bool) {
	m, ok := e.cur().p.State.Member(id)
	if !ok {
		return nil, false
	}
	return m.Signing, true
}

func be64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

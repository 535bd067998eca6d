package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trentkms/trent/internal/boundedio"
)

// Transport: a host sends Hellos and Envelopes to an HSM in frames over
// one persistent TCP connection (frame.go). The same objects, and the
// objects outside sessions, also travel as HTTP/2 request and response
// bodies (cleartext HTTP/2 with prior knowledge; TLS is optional because
// the session protocol provides the security), on the same port. Paths:
//
//	POST /trent/v1/hello     Hello    → Reply    (or Alert)
//	POST /trent/v1/envelope  Envelope → Response (or Alert)
//
// Success is 200 with Content-Type application/octet-stream; a refusal is
// 400 (or 500 for an HSM fault) with an Alert body.
const (
	PathHello    = "/trent/v1/hello"
	PathEnvelope = "/trent/v1/envelope"

	contentType = "application/octet-stream"
	// maxHelloBody and maxEnvelopeBody bound request bodies.
	maxHelloBody    = 2048 // a hybrid Hello is at most 1954 bytes
	maxEnvelopeBody = headerLenBytes + 2 + MaxEKTLen + SessionIDSize + 1 + MaxIDLen + 8 + 2 + 3 + maxCiphertext
	maxReplyBody    = 4096 // a hybrid Reply is at most 2467 bytes
	maxResponseBody = headerLenBytes + SessionIDSize + 8 + 3 + maxCiphertext
	headerLenBytes  = 6
)

// CommandHandler serves one command type inside a session: it gets the
// opened request and returns the response plaintext.
type CommandHandler func(r *Request) ([]byte, error)

// PostHandler serves a path of Server.Posts.
type PostHandler struct {
	Limit int64
	Serve func(body []byte) ([]byte, error)
}

// Server serves the protocol for one HSM over HTTP/2.
type Server struct {
	HSM      *HSM
	Commands map[uint16]CommandHandler
	// Posts serves other paths outside sessions, for objects that
	// authenticate themselves (a domain token is signed by a member HSM):
	// the body, at most Limit bytes, in; the response body out.
	Posts map[string]PostHandler
	// OnError, if set, is told of every refusal (for logs: errors carry no
	// secrets).
	OnError func(path string, err error)
	// Gets serves GET paths outside sessions that reveal nothing secret
	// (the node's /metrics).
	Gets map[string]http.Handler
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g := s.Gets[r.URL.Path]; g != nil && r.Method == http.MethodGet {
		g.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var limit int64
	post, isPost := s.Posts[r.URL.Path]
	switch {
	case r.URL.Path == PathHello:
		limit = maxHelloBody
	case r.URL.Path == PathEnvelope:
		limit = maxEnvelopeBody
	case isPost:
		limit = post.Limit
	default:
		http.NotFound(w, r)
		return
	}
	body, err := boundedio.ReadAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	if err != nil {
		s.refuse(w, r.URL.Path, fmt.Errorf("%w: request body: %v", ErrMalformed, err))
		return
	}
	var out []byte
	switch {
	case r.URL.Path == PathHello:
		out, err = s.HSM.Handshake(body)
	case r.URL.Path == PathEnvelope:
		out, err = s.serveEnvelope(body)
	default:
		out, err = post.Serve(body)
	}
	if err != nil {
		s.refuse(w, r.URL.Path, err)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Write(out)
}

func (s *Server) serveEnvelope(body []byte) ([]byte, error) {
	req, err := s.HSM.Open(body)
	if err != nil {
		return nil, err
	}
	h := s.Commands[req.Type]
	if h == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownCommand, req.Type)
	}
	resp, err := h(req)
	clear(req.Command)
	if err != nil {
		return nil, err
	}
	return req.Seal(resp)
}

func (s *Server) refuse(w http.ResponseWriter, path string, err error) {
	if s.OnError != nil {
		s.OnError(path, err)
	}
	a := AlertFor(err)
	status := http.StatusBadRequest
	if a.Code == 21 {
		status = http.StatusInternalServerError
	}
	b, merr := a.Marshal()
	if merr != nil {
		http.Error(w, "alert", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(b)
}

// Serve serves s on l until ctx ends: frames (frame.go) on the
// connections that open with the frame preface, cleartext HTTP/2 (and
// HTTP/1.1 for tools) on the others. At the end it stops reading new
// requests and waits a few seconds for those being served.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP1(true)
	srv := &http.Server{Handler: s, Protocols: p, ReadHeaderTimeout: 10 * time.Second}
	ml := &muxListener{Listener: l, conns: make(chan net.Conn), done: make(chan struct{})}
	frames := new(frameConns)
	go s.accept(ctx, l, ml, frames)
	stopped := make(chan struct{})
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		srv.Shutdown(sctx) // closes ml, and so l
		frames.shutdown()
		close(stopped)
	}()
	err := srv.Serve(ml)
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped
		return nil
	}
	ml.Close()
	frames.shutdown()
	return err
}

// NewHTTPClient returns an HTTP client that speaks cleartext HTTP/2 with
// prior knowledge: one TCP connection per HSM, multiplexed. MaxConnsPerHost
// is 1 so that concurrent first requests share one dial instead of each
// opening a connection.
func NewHTTPClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
}

// ClientConfig configures a host's client of the HSMs of a domain.
type ClientConfig struct {
	Host *Host
	// URLs of the HSMs ("http://127.0.0.1:7301"). The session is made with
	// the first that answers; envelopes go to the least busy of them,
	// since any HSM of the domain serves the session. Hellos and envelopes
	// travel in frames (frame.go) on one connection to each HSM; to an HSM
	// that does not speak them, and for Post, over HTTP/2.
	URLs []string
	// HTTP is the HTTP client; NewHTTPClient() if nil.
	HTTP *http.Client
	// RenewAt is the fraction of the validity period after which a new
	// session is negotiated in the background; 0.8 if zero.
	RenewAt float64
}

// Client sends commands from a host to the HSMs of its domain in a
// session, renegotiating before the session expires without failing
// commands in flight. It is safe for concurrent use.
type Client struct {
	cfg   ClientConfig
	http  *http.Client
	peers []*peer // one per URL

	mu       sync.Mutex
	cur      *liveSession
	renewing bool
	renewed  chan struct{} // closed when a renewal in progress ends
	lastErr  error         // of the last negotiation
}

// liveSession counts the commands in flight on a session so that it is
// closed (its key cleared) only after the last of them.
type liveSession struct {
	s        *Session
	renewAt  time.Time
	inflight sync.WaitGroup
	retired  atomic.Bool
}

// NewClient returns a Client; it connects lazily.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Host == nil || len(cfg.URLs) == 0 {
		return nil, errors.New("session: client needs a host and at least one HSM URL")
	}
	if cfg.RenewAt == 0 {
		cfg.RenewAt = 0.8
	}
	if cfg.RenewAt <= 0 || cfg.RenewAt >= 1 {
		return nil, errors.New("session: RenewAt must be between 0 and 1")
	}
	c := &Client{cfg: cfg, http: cfg.HTTP}
	if c.http == nil {
		c.http = NewHTTPClient()
	}
	for _, u := range cfg.URLs {
		c.peers = append(c.peers, newPeer(u))
	}
	return c, nil
}

func (c *Client) now() time.Time { return c.cfg.Host.now() }

// session returns the current session, negotiating one if there is none or
// it has expired, and starting a background renegotiation once it is past
// RenewAt of its validity. The caller must call release when done.
func (c *Client) session(ctx context.Context) (*liveSession, error) {
	waited := false
	for {
		c.mu.Lock()
		cur := c.cur
		now := c.now()
		// A classical session is not used once the host's Hellos are to
		// be hybrid (its domain's policy changed): the next command waits
		// for a hybrid one.
		if cur != nil && now.Before(cur.s.NotAfter) && (cur.s.Hybrid || !c.wantHybrid()) {
			if !now.Before(cur.renewAt) && !c.renewing {
				c.startRenewal()
			}
			cur.inflight.Add(1)
			c.mu.Unlock()
			return cur, nil
		}
		// No usable session: after a failed negotiation report it, else
		// wait for the negotiation in progress or start one.
		if waited && c.lastErr != nil {
			err := c.lastErr
			c.mu.Unlock()
			return nil, err
		}
		if !c.renewing {
			c.startRenewal()
		}
		ch := c.renewed
		c.mu.Unlock()
		select {
		case <-ch:
			waited = true
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Hybrid reports whether the client's current session is hybrid (false
// if it has none).
func (c *Client) Hybrid() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil && c.cur.s.Hybrid
}

func (c *Client) wantHybrid() bool { return c.cfg.Host.Hybrid != nil && c.cfg.Host.Hybrid() }

// startRenewal negotiates a new session in the background; c.mu is held.
func (c *Client) startRenewal() {
	c.renewing = true
	c.renewed = make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := c.handshake(ctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.lastErr = err
		if err == nil {
			old := c.cur
			c.cur = &liveSession{s: s, renewAt: s.NotBefore.Add(time.Duration(float64(s.NotAfter.Sub(s.NotBefore)) * c.cfg.RenewAt))}
			if old != nil {
				c.retire(old)
			}
		}
		c.renewing = false
		close(c.renewed)
	}()
}

// retire closes a replaced session once its commands in flight are done.
func (c *Client) retire(ls *liveSession) {
	if ls.retired.Swap(true) {
		return
	}
	go func() {
		ls.inflight.Wait()
		ls.s.Close()
	}()
}

// handshake makes a session with the first HSM that answers.
func (c *Client) handshake(ctx context.Context) (*Session, error) {
	var errs []error
	for i := range c.peers {
		p, hello, err := c.cfg.Host.Begin()
		if err != nil {
			return nil, err
		}
		reply, err := c.exchange(ctx, i, frameHello, hello)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return p.Finish(reply)
	}
	return nil, fmt.Errorf("session: no HSM made a session: %w", errors.Join(errs...))
}

// Do sends one command of type typ and returns the HSM's response. If the
// HSM refuses the session itself (expired, domain key no longer retained),
// the session is dropped and the command retried once in a new one.
func (c *Client) Do(ctx context.Context, typ uint16, command []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		ls, err := c.session(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.doOn(ctx, ls.s, typ, command)
		ls.inflight.Done()
		if err != nil && attempt == 0 && sessionDead(err) {
			c.drop(ls)
			continue
		}
		return resp, err
	}
}

// DoOn sends one command to the HSM at URL index i, in the current session.
func (c *Client) DoOn(ctx context.Context, i int, typ uint16, command []byte) ([]byte, error) {
	ls, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	defer ls.inflight.Done()
	return c.send(ctx, i%len(c.peers), ls.s, typ, command)
}

func (c *Client) doOn(ctx context.Context, s *Session, typ uint16, command []byte) ([]byte, error) {
	n := len(c.peers)
	start := c.leastBusy()
	var err error
	for i := range n {
		var resp []byte
		p := c.peers[(start+i)%n]
		p.inflight.Add(1)
		resp, err = c.send(ctx, (start+i)%n, s, typ, command)
		p.inflight.Add(-1)
		var re *RemoteError
		if err != nil && ctx.Err() == nil && (!errors.As(err, &re) || errors.Is(err, ErrKeyNotRetained)) {
			// Unreachable, or without the session's domain key (it
			// restarted): tried after the others until peerDownFor.
			p.downUntil.Store(time.Now().Add(peerDownFor).UnixNano())
		}
		if err == nil || ctx.Err() != nil || errors.As(err, &re) && !errors.Is(err, ErrKeyNotRetained) {
			return resp, err // served or refused: do not resend
		}
		// The HSM is unreachable, or it does not hold the domain key of
		// the session's EKT (it restarted, or lags a domain change) and
		// refused the envelope before serving its command: the next one
		// serves the same session. Only if none holds the key is the
		// session dead (Do).
	}
	return nil, err
}

// leastBusy is the index of the HSM to try first: of those not marked
// down (all, if all are), the one with the fewest commands in flight, the
// first of them if several have as few. So a host keeps as few HSM
// processes busy as its load needs (their caches warm, fewer of them woken
// per request), spreads over more as commands wait, and stays off an HSM
// that stopped answering, or answers slowly, without a health check of its
// own. doOn tries the others in turn after it.
func (c *Client) leastBusy() int {
	now := time.Now().UnixNano()
	best, fewest := -1, int32(math.MaxInt32)
	for i, p := range c.peers {
		if n := p.inflight.Load(); n < fewest && p.downUntil.Load() <= now {
			best, fewest = i, n
			if n == 0 {
				break
			}
		}
	}
	if best >= 0 {
		return best
	}
	best, fewest = 0, int32(math.MaxInt32)
	for i, p := range c.peers {
		if n := p.inflight.Load(); n < fewest {
			best, fewest = i, n
		}
	}
	return best
}

// peerDownFor is how long an HSM that could not be reached is tried only
// after the others.
const peerDownFor = time.Second

func (c *Client) send(ctx context.Context, i int, s *Session, typ uint16, command []byte) ([]byte, error) {
	req, _, err := s.Seal(typ, command)
	if err != nil {
		return nil, err
	}
	resp, err := c.exchange(ctx, i, frameEnvelope, req)
	if err != nil {
		return nil, err
	}
	return s.Open(req, resp)
}

// sessionDead reports whether err means the session can no longer be used.
func sessionDead(err error) bool {
	return errors.Is(err, ErrExpired) || errors.Is(err, ErrKeyNotRetained) || errors.Is(err, ErrSessionClosed) ||
		errors.Is(err, ErrNotYetValid)
}

func (c *Client) drop(ls *liveSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == ls {
		c.cur = nil
		c.retire(ls)
	}
}

// Post sends body to path of the HSM at URL index i outside any session
// (for self-authenticating objects, such as domain tokens) and returns the
// response body.
func (c *Client) Post(ctx context.Context, i int, path string, body []byte, limit int64) ([]byte, error) {
	return c.post(ctx, c.cfg.URLs[i%len(c.cfg.URLs)]+path, body, limit)
}

// maxAlertSize bounds an Alert on the wire: its header, code and text.
const maxAlertSize = headerLenBytes + 2 + 1 + MaxAlertMessage

// post sends body and returns the 200 body, or the Alert's error.
func (c *Client) post(ctx context.Context, url string, body []byte, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("session: %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		limit = maxAlertSize // a refusal's Alert, whatever the answer's bound
	}
	out, err := boundedio.ReadAll(resp.Body, resp.ContentLength, limit)
	if errors.Is(err, boundedio.ErrTooLarge) {
		return nil, fmt.Errorf("%w: response body over %d bytes", ErrMalformed, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("session: %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		a, err := ParseAlert(out)
		if err != nil {
			return nil, fmt.Errorf("session: %s: HTTP %d without an alert", url, resp.StatusCode)
		}
		return nil, a.Err()
	}
	return out, nil
}

// Current returns the session in use, if any (for status displays).
func (c *Client) Current() *Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return nil
	}
	return c.cur.s
}

// Close clears the current session's key and closes the frame
// connections and idle HTTP connections (a later command dials anew).
func (c *Client) Close() {
	c.mu.Lock()
	if c.cur != nil {
		c.retire(c.cur)
		c.cur = nil
	}
	c.mu.Unlock()
	for _, p := range c.peers {
		p.close()
	}
	c.http.CloseIdleConnections()
}

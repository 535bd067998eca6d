package enclave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy defaults.
const (
	// DefaultMaxConns bounds a proxy's concurrent connections.
	DefaultMaxConns = 64
	// DefaultDialTimeout bounds a proxy's dial of its remote.
	DefaultDialTimeout = 10 * time.Second
)

// ProxyConfig configures a Proxy.
type ProxyConfig struct {
	// Remote is the one TCP endpoint the proxy forwards to, HOST:PORT.
	Remote string
	// Allow lists the HOST:PORT endpoints a proxy may forward to (the
	// allowlist of vsock-proxy's configuration); Remote must be one of
	// them. Empty: Remote alone.
	Allow []string
	// MaxConns bounds concurrent connections (DefaultMaxConns if zero);
	// further ones wait in the listener's backlog.
	MaxConns int
	// DialTimeout bounds the dial of Remote (DefaultDialTimeout if zero).
	DialTimeout time.Duration
	// Log gets a line per connection (addresses, byte counts, duration,
	// never payloads); discarded if nil.
	Log *slog.Logger
}

// Proxy forwards each connection it accepts, byte for byte, to one TCP
// endpoint: the parent side of an enclave's only way out, as vsock-proxy.
type Proxy struct {
	cfg    ProxyConfig
	nextID atomic.Uint64
}

// NewProxy checks cfg: Remote must be HOST:PORT and on the allowlist,
// else the proxy refuses to start, as vsock-proxy does.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	remote, err := normEndpoint(cfg.Remote)
	if err != nil {
		return nil, fmt.Errorf("enclave: proxy: remote: %w", err)
	}
	allow := cfg.Allow
	if len(allow) == 0 {
		allow = []string{cfg.Remote}
	}
	allowed := false
	for _, a := range allow {
		n, err := normEndpoint(a)
		if err != nil {
			return nil, fmt.Errorf("enclave: proxy: allowlist: %w", err)
		}
		allowed = allowed || n == remote
	}
	if !allowed {
		return nil, fmt.Errorf("enclave: proxy: remote %s is not on the allowlist (%s)", cfg.Remote, strings.Join(allow, ", "))
	}
	if cfg.MaxConns < 0 || cfg.DialTimeout < 0 {
		return nil, errors.New("enclave: proxy: negative connection bound or dial timeout")
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Proxy{cfg: cfg}, nil
}

// normEndpoint checks HOST:PORT and returns it with the host in lower
// case, without a trailing dot, and the port as a decimal number.
func normEndpoint(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q: want HOST:PORT", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("%q: port must be 1 to 65535", s)
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return "", fmt.Errorf("%q: no host", s)
	}
	return net.JoinHostPort(host, strconv.FormatUint(p, 10)), nil
}

// ParseListen reads a proxy or enclave address: "unix:/path" (the
// stand-in for a vsock port), or a loopback HOST:PORT.
func ParseListen(addr string) (network, address string, err error) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		if p == "" {
			return "", "", errors.New("enclave: address unix: without a path")
		}
		return "unix", p, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("enclave: address %q: want unix:/path or a loopback HOST:PORT", addr)
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return "", "", fmt.Errorf("enclave: address %q is not on loopback", addr)
		}
	}
	return "tcp", addr, nil
}

// Listen listens on a ParseListen address. A Unix socket is made 0600
// (only its owner may connect) and removed when the listener closes.
func Listen(addr string) (net.Listener, error) {
	network, address, err := ParseListen(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("enclave: %w", err)
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("enclave: %w", err)
		}
	}
	return ln, nil
}

// Serve accepts connections on ln and forwards them until ctx is done; it
// then closes ln and every open connection, waits for their goroutines,
// and returns nil. It returns an error if ln fails otherwise.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[io.Closer]struct{}{}
	)
	track := func(c io.Closer, on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	defer func() {
		cancel()
		<-stopped
		wg.Wait()
	}()

	sem := make(chan struct{}, p.cfg.MaxConns)
	var backoff time.Duration
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		c, err := ln.Accept()
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("enclave: proxy: %w", err)
		}
		backoff = 0
		track(c, true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer track(c, false)
			p.forward(ctx, c, track)
		}()
	}
}

// halfCloser is a connection that can close its sending side.
type halfCloser interface{ CloseWrite() error }

// forward copies c to a new connection to the remote and back, logging
// the connection when both directions are done.
func (p *Proxy) forward(ctx context.Context, c net.Conn, track func(io.Closer, bool)) {
	defer c.Close()
	id := p.nextID.Add(1)
	start := time.Now()
	from := c.RemoteAddr().String()
	if from == "" || from == "@" {
		from = c.LocalAddr().Network()
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	r, err := (&net.Dialer{}).DialContext(dctx, "tcp", p.cfg.Remote)
	cancel()
	if err != nil {
		p.cfg.Log.Warn("proxy: connection refused upstream", "conn", id, "from", from, "remote", p.cfg.Remote, "err", err)
		return
	}
	track(r, true)
	defer track(r, false)
	defer r.Close()
	var up, down int64
	var upErr, downErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		up, upErr = io.Copy(r, c)
		if hc, ok := r.(halfCloser); ok {
			hc.CloseWrite()
		}
	}()
	down, downErr = io.Copy(c, r)
	if hc, ok := c.(halfCloser); ok {
		hc.CloseWrite()
	}
	<-done
	attrs := []any{"conn", id, "from", from, "remote", p.cfg.Remote, "bytes_up", up, "bytes_down", down,
		"duration", time.Since(start).Round(time.Millisecond)}
	if err := errors.Join(upErr, downErr); err != nil && ctx.Err() == nil {
		attrs = append(attrs, "err", err)
	}
	p.cfg.Log.Info("proxy: connection", attrs...)
}

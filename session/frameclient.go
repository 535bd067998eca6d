package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// dialTimeout bounds a connection's dial and preface exchange.
	dialTimeout = 10 * time.Second
	// writeTimeout bounds one frame's write (a socket whose buffer stays
	// full that long belongs to a peer that is gone).
	writeTimeout = 10 * time.Second
	// unackedTimeout bounds how long a frame may stay unacknowledged by
	// the HSM's kernel before the connection ends (Linux; sockopt_linux.go).
	unackedTimeout = 5 * time.Second
	// httpRetryAfter is how long a client speaks HTTP/2 to an HSM that
	// answered the preface with something else before it tries frames
	// again (the HSM may have been upgraded).
	httpRetryAfter = time.Minute
)

// errSilent ends a connection on which a call's context ended with nothing
// read since the call was sent: the peer is unreachable or stuck, and the
// next call dials anew instead of queueing behind it.
var errSilent = errors.New("session: no answer on the connection")

// peer is the client's way to one HSM: a frame connection, dialled on
// first use and after it breaks, or HTTP/2 at url if the HSM does not
// speak frames.
type peer struct {
	url  string
	addr string // host:port; empty if url is not plain http: HTTP/2 only
	// framesOnly: an HSM that does not answer the preface of this version
	// is an error, not a reason to speak HTTP/2 (FrameConn).
	framesOnly bool

	// inflight counts the commands sent to this HSM and not yet answered;
	// downUntil (UnixNano) is set when one could not be sent or answered
	// (Client.leastBusy's choice).
	inflight  atomic.Int32
	downUntil atomic.Int64

	mu        sync.Mutex
	conn      *clientConn
	dial      *dialing // in progress, or nil
	httpUntil time.Time
}

type dialing struct {
	done chan struct{}
	cc   *clientConn // nil with err == nil: speak HTTP/2
	err  error
}

func newPeer(u string) *peer {
	p := &peer{url: u}
	if pu, err := url.Parse(u); err == nil && pu.Scheme == "http" && pu.Host != "" && (pu.Path == "" || pu.Path == "/") {
		p.addr = pu.Host
	}
	return p
}

// get returns the peer's live frame connection, dialling one if there is
// none; nil and no error means speak HTTP/2. Concurrent callers share one
// dial and its outcome.
func (p *peer) get(ctx context.Context, now time.Time) (*clientConn, error) {
	if p.addr == "" {
		return nil, nil
	}
	p.mu.Lock()
	if cc := p.conn; cc != nil && !cc.broken() {
		p.mu.Unlock()
		return cc, nil
	}
	if now.Before(p.httpUntil) {
		p.mu.Unlock()
		return nil, nil
	}
	d := p.dial
	if d == nil {
		d = &dialing{done: make(chan struct{})}
		p.dial = d
		go p.dialFrames(d)
	}
	p.mu.Unlock()
	select {
	case <-d.done:
		return d.cc, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dialFrames dials the HSM and exchanges the prefaces, outside any
// caller's context (callers wait for it with theirs).
func (p *peer) dialFrames(d *dialing) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	nd := net.Dialer{KeepAlive: 15 * time.Second, Control: bindUnacked}
	c, err := nd.DialContext(ctx, "tcp", p.addr)
	if err == nil {
		d.cc, err = handshakeFrames(c)
		if err != nil {
			c.Close()
		}
	}
	fallback := !p.framesOnly && (errors.Is(err, errNotFrames) || errors.Is(err, ErrVersion))
	if fallback {
		err = nil
	}
	d.err = err
	p.mu.Lock()
	p.dial = nil
	if d.cc != nil {
		p.conn = d.cc
	}
	if fallback {
		p.httpUntil = time.Now().Add(httpRetryAfter)
	}
	p.mu.Unlock()
	close(d.done)
}

// handshakeFrames sends the preface on c and checks the HSM's.
func handshakeFrames(c net.Conn) (*clientConn, error) {
	c.SetDeadline(time.Now().Add(dialTimeout))
	if _, err := c.Write(framePreface(FrameVersion)); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(c, 32<<10)
	p, err := r.Peek(framePrefaceLen)
	if err != nil {
		if len(p) > 0 && !strings.HasPrefix(FrameMagic, string(p)) {
			return nil, errNotFrames // a short answer of another protocol, then the end
		}
		return nil, err
	}
	if err := checkPreface(p); err != nil {
		return nil, err
	}
	r.Discard(framePrefaceLen)
	c.SetDeadline(time.Time{})
	cc := &clientConn{c: c, streams: map[uint32]chan frame{}, dead: make(chan struct{})}
	go cc.read(r)
	return cc, nil
}

// close ends the peer's connection, if any.
func (p *peer) close() {
	p.mu.Lock()
	cc := p.conn
	p.conn = nil
	p.mu.Unlock()
	if cc != nil {
		cc.fail(net.ErrClosed) // not ErrSessionClosed: Do would try a new session
	}
}

// clientConn is a host's frame connection to one HSM: calls write their
// frame themselves and wait for the reader to hand them the answer on
// their stream.
type clientConn struct {
	c        net.Conn
	wmu      sync.Mutex
	lastRead atomic.Int64 // UnixNano of the last frame read

	mu      sync.Mutex
	streams map[uint32]chan frame // calls in flight
	next    uint32
	err     error
	dead    chan struct{} // closed with err set
}

func (cc *clientConn) broken() bool {
	select {
	case <-cc.dead:
		return true
	default:
		return false
	}
}

// fail ends the connection: every call in flight gets err.
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	if cc.err == nil {
		cc.err = fmt.Errorf("session: connection to the HSM lost: %w", err)
		close(cc.dead)
	}
	cc.mu.Unlock()
	cc.c.Close()
}

// read hands each answer to its call until the connection ends.
func (cc *clientConn) read(r *bufio.Reader) {
	for {
		f, err := readFrame(r, false)
		if err != nil {
			cc.fail(err)
			return
		}
		cc.lastRead.Store(time.Now().UnixNano())
		cc.mu.Lock()
		ch := cc.streams[f.stream]
		delete(cc.streams, f.stream)
		cc.mu.Unlock()
		if ch != nil {
			ch <- f // buffered
		} // else: the call gave up (its context ended); drop the answer
	}
}

// call sends body as a frame of kind and returns the answer's frame.
func (cc *clientConn) call(ctx context.Context, kind byte, body []byte) (frame, error) {
	ch := make(chan frame, 1)
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return frame{}, err
	}
	for {
		cc.next++
		if _, used := cc.streams[cc.next]; cc.next != 0 && !used {
			break
		}
	}
	id := cc.next
	cc.streams[id] = ch
	cc.mu.Unlock()

	buf := appendFrame(make([]byte, 0, frameHeaderLen+len(body)), id, kind, body)
	sent := time.Now()
	cc.wmu.Lock()
	cc.c.SetWriteDeadline(sent.Add(writeTimeout))
	_, err := cc.c.Write(buf)
	cc.wmu.Unlock()
	if err != nil {
		cc.fail(err)
	}
	select {
	case f := <-ch:
		return f, nil
	case <-cc.dead:
		select {
		case f := <-ch: // answered before the end
			return f, nil
		default:
		}
		cc.mu.Lock()
		delete(cc.streams, id)
		cc.mu.Unlock()
		return frame{}, cc.err
	case <-ctx.Done():
		cc.mu.Lock()
		delete(cc.streams, id)
		cc.mu.Unlock()
		if cc.lastRead.Load() < sent.UnixNano() {
			cc.fail(errSilent)
		}
		return frame{}, ctx.Err()
	}
}

// exchange sends a Hello (kind frameHello) or an Envelope (frameEnvelope)
// to the HSM at index i and returns its Reply or Response, or the error
// its Alert stands for (a *RemoteError). Any other failure is the
// transport's: the HSM may not have seen the message.
func (c *Client) exchange(ctx context.Context, i int, kind byte, body []byte) ([]byte, error) {
	p := c.peers[i]
	cc, err := p.get(ctx, time.Now())
	if err != nil {
		return nil, fmt.Errorf("session: %s: %w", p.url, err)
	}
	if cc == nil {
		if kind == frameHello {
			return c.post(ctx, p.url+PathHello, body, maxReplyBody)
		}
		return c.post(ctx, p.url+PathEnvelope, body, maxResponseBody)
	}
	out, alert, err := p.call(ctx, cc, kind, body)
	if err != nil || !alert {
		return out, err
	}
	a, err := ParseAlert(out)
	if err != nil {
		return nil, fmt.Errorf("session: %s: an alert frame without an alert", p.url)
	}
	return nil, a.Err()
}

// call sends body as a frame of kind on cc and returns the answer's body
// and whether it is an Alert (else the Reply or Response). An answer of
// another kind ends the connection.
func (p *peer) call(ctx context.Context, cc *clientConn, kind byte, body []byte) ([]byte, bool, error) {
	f, err := cc.call(ctx, kind, body)
	if err != nil {
		return nil, false, fmt.Errorf("session: %s: %w", p.url, err)
	}
	switch f.kind {
	case kind | frameOK:
		return f.body, false, nil
	case frameAlert:
		return f.body, true, nil
	}
	err = fmt.Errorf("%w: kind %#x answers kind %#x", ErrFrame, f.kind, kind)
	cc.fail(err)
	return nil, false, fmt.Errorf("session: %s: %w", p.url, err)
}

// FrameConn carries Hellos and Envelopes that its caller makes itself to
// one HSM in frames, on a connection dialled as a Client's are (on first
// use and again after one breaks, concurrent callers sharing the dial),
// for tools that test an HSM (the HSM conformance suite). Unlike a Client
// it never speaks HTTP/2: an HSM that does not answer the preface of
// FrameVersion is an error (errors.Is ErrVersion for a preface of another
// version). It is safe for concurrent use.
type FrameConn struct{ p *peer }

// NewFrameConn returns a FrameConn to the HSM at url, which must be
// "http://host:port" (frames have no TLS); it dials on first use.
func NewFrameConn(url string) (*FrameConn, error) {
	p := newPeer(url)
	if p.addr == "" {
		return nil, fmt.Errorf("session: frames need an http://host:port URL, not %q", url)
	}
	p.framesOnly = true
	return &FrameConn{p: p}, nil
}

// Exchange sends body in a frame, a Hello if hello, else an Envelope, and
// returns the body of the HSM's answer and whether it is an Alert (else
// the Reply or Response); it does not decode either. An error is the
// transport's: the connection could not be made or ended, or the HSM broke
// the frame protocol.
func (fc *FrameConn) Exchange(ctx context.Context, hello bool, body []byte) (answer []byte, alert bool, err error) {
	kind := frameEnvelope
	if hello {
		kind = frameHello
	}
	if len(body) > frameBodyLimit(kind) {
		return nil, false, fmt.Errorf("%w: a body of %d bytes (at most %d)", ErrFrameTooLarge, len(body), frameBodyLimit(kind))
	}
	cc, err := fc.p.get(ctx, time.Now())
	if err == nil && cc == nil {
		err = errNotFrames // not reached: a framesOnly peer does not fall back
	}
	if err != nil {
		return nil, false, fmt.Errorf("session: %s: %w", fc.p.url, err)
	}
	return fc.p.call(ctx, cc, kind, body)
}

// Close ends the connection, if any; a later Exchange dials anew.
func (fc *FrameConn) Close() { fc.p.close() }

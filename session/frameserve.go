package session

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

const (
	// maxStreamsPerConn bounds the frames an HSM serves at once on one
	// connection: past it, it reads no more until one is answered (TCP
	// pushes back on the host).
	maxStreamsPerConn = 256
	// prefaceTimeout bounds the wait for a new connection's first bytes.
	prefaceTimeout = 10 * time.Second
	// drainTimeout bounds, at shutdown, the wait for frames being served.
	drainTimeout = 5 * time.Second
)

// muxListener is the listener the HTTP server accepts from: the
// connections that did not start with FrameMagic.
type muxListener struct {
	net.Listener // the real one: Addr and Close
	conns        chan net.Conn
	done         chan struct{}
	once         sync.Once
	err          error // Accept's error once done is closed
}

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

func (l *muxListener) Close() error {
	err := l.Listener.Close()
	l.end(net.ErrClosed)
	return err
}

func (l *muxListener) end(err error) {
	l.once.Do(func() {
		l.err = err
		close(l.done)
	})
}

// peekedConn replays what the sniffer read before handing the connection
// over.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// accept runs l's accept loop: each connection is sniffed on its own
// goroutine, so a slow first byte holds up no other connection. A
// temporary error (out of file descriptors) is waited out as http.Server
// does; any other ends ml, and so the HTTP server. Passing a temporary
// one on would not do: the HTTP server would retry an Accept that ml
// answers with it for ever.
func (s *Server) accept(ctx context.Context, l net.Listener, ml *muxListener, frames *frameConns) {
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			//lint:ignore SA1019 http.Server's accept loop makes the same test
			if ne, ok := err.(net.Error); ok && ne.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.onError("accept", err)
				time.Sleep(delay)
				continue
			}
			ml.end(err)
			return
		}
		delay = 0
		go s.sniff(ctx, c, ml, frames)
	}
}

// sniff reads a connection's first byte: a NUL starts the frame preface,
// anything else is HTTP.
func (s *Server) sniff(ctx context.Context, c net.Conn, ml *muxListener, frames *frameConns) {
	r := bufio.NewReaderSize(c, 32<<10)
	c.SetReadDeadline(time.Now().Add(prefaceTimeout))
	first, err := r.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	if first[0] != FrameMagic[0] {
		c.SetReadDeadline(time.Time{})
		select {
		case ml.conns <- &peekedConn{Conn: c, r: r}:
		case <-ml.done:
			c.Close()
		}
		return
	}
	var p [framePrefaceLen]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	if err := checkPreface(p[:]); err != nil {
		// Another version: say which one this side speaks, then end.
		if errors.Is(err, ErrVersion) {
			c.Write(framePreface(FrameVersion))
		}
		s.onError("frames", err)
		c.Close()
		return
	}
	if _, err := c.Write(framePreface(FrameVersion)); err != nil {
		c.Close()
		return
	}
	fc := &serverConn{s: s, c: c, r: r}
	if !frames.add(fc) {
		c.Close()
		return
	}
	defer frames.remove(fc)
	fc.serve()
}

// frameConns are an HSM's frame connections, drained at shutdown.
type frameConns struct {
	mu     sync.Mutex
	conns  map[*serverConn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func (f *frameConns) add(c *serverConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	if f.conns == nil {
		f.conns = map[*serverConn]struct{}{}
	}
	f.conns[c] = struct{}{}
	f.wg.Add(1)
	return true
}

func (f *frameConns) remove(c *serverConn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	f.wg.Done()
}

// shutdown stops reading new frames on every connection and waits, at most
// drainTimeout, for the frames being served to be answered; then it closes
// what is left.
func (f *frameConns) shutdown() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.c.SetReadDeadline(time.Now())
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		f.mu.Lock()
		for c := range f.conns {
			c.c.Close()
		}
		f.mu.Unlock()
		<-done
	}
}

// serverConn is one host's frame connection to this HSM.
type serverConn struct {
	s        *Server
	c        net.Conn
	r        *bufio.Reader
	idle     chan frame // to a worker waiting for its next frame
	wmu      sync.Mutex
	inflight sync.WaitGroup // the connection's workers
}

// serve reads frames until the connection ends or breaks the protocol,
// then waits for the frames being served and closes. Frames are served
// concurrently, each by a worker: one that is waiting takes it, or a new
// one starts. Workers stay for the connection's life (at most
// maxStreamsPerConn of them, as many as were ever busy at once), so a
// frame costs a hand-off, not a goroutine whose stack grows anew through
// the envelope and the token call (a goroutine per frame spent 5 % of an
// HSM's CPU growing stacks: docs/benchmarks.md).
func (fc *serverConn) serve() {
	fc.idle = make(chan frame)
	workers := 0
	defer func() {
		close(fc.idle)
		fc.inflight.Wait()
		fc.c.Close()
	}()
	for {
		f, err := readFrame(fc.r, true)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isTimeout(err) {
				fc.s.onError("frames", err)
			}
			return
		}
		select {
		case fc.idle <- f:
		default:
			if workers < maxStreamsPerConn {
				workers++
				fc.inflight.Add(1)
				go fc.work(f)
			} else {
				fc.idle <- f // every worker busy: no reading until one is free
			}
		}
	}
}

// work serves f, then each frame handed to it, until the connection's
// reading ends.
func (fc *serverConn) work(f frame) {
	defer fc.inflight.Done()
	for ok := true; ok; f, ok = <-fc.idle {
		fc.handle(f)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handle serves one frame and writes its answer.
func (fc *serverConn) handle(f frame) {
	var out []byte
	var err error
	path := PathEnvelope
	if f.kind == frameHello {
		path = PathHello
		out, err = fc.s.HSM.Handshake(f.body)
	} else {
		out, err = fc.s.serveEnvelope(f.body)
	}
	kind := f.kind | frameOK
	if err != nil {
		fc.s.onError(path, err)
		if out, err = AlertFor(err).Marshal(); err != nil {
			fc.c.Close() // cannot answer: the host's call fails, retryable
			return
		}
		kind = frameAlert
	}
	buf := appendFrame(make([]byte, 0, frameHeaderLen+len(out)), f.stream, kind, out)
	fc.wmu.Lock()
	_, err = fc.c.Write(buf)
	fc.wmu.Unlock()
	if err != nil {
		fc.c.Close()
	}
}

func (s *Server) onError(path string, err error) {
	if s.OnError != nil {
		s.OnError(path, err)
	}
}

package session_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/session"
)

var (
	requestKinds = []byte{session.FrameHello, session.FrameEnvelope}
	answerKinds  = []byte{session.FrameHello | session.FrameOK, session.FrameEnvelope | session.FrameOK, session.FrameAlert}
)

func readOne(b []byte, request bool) (uint32, byte, []byte, error) {
	return session.ReadFrame(bufio.NewReader(bytes.NewReader(b)), request)
}

// Frames of every kind round-trip; no proper prefix of one decodes; each
// side refuses the other's kinds, stream 0, unknown kinds and short lengths.
func TestFrameCodec(t *testing.T) {
	for _, request := range []bool{true, false} {
		kinds := answerKinds
		if request {
			kinds = requestKinds
		}
		for _, kind := range kinds {
			for _, n := range []int{0, 1, 100, session.FrameBodyLimit(kind)} {
				body := make([]byte, n)
				for i := range body {
					body[i] = byte(rand.Uint32())
				}
				stream := rand.Uint32() | 1
				enc := session.AppendFrame(nil, stream, kind, body)
				s, k, b, err := readOne(enc, request)
				require.NoError(t, err)
				assert.Equal(t, stream, s)
				assert.Equal(t, kind, k)
				assert.Equal(t, body, b)
				for _, cut := range []int{0, 1, 8, len(enc) - 1} {
					if cut >= len(enc) {
						continue
					}
					_, _, _, err := readOne(enc[:cut], request)
					if cut == 0 {
						assert.ErrorIs(t, err, io.EOF, "nothing at all is a clean end")
					} else {
						assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "a frame cut at %d of %d", cut, len(enc))
					}
				}
				_, _, _, err = readOne(enc, !request)
				assert.ErrorIs(t, err, session.ErrFrame, "kind %#x from the wrong side", kind)
			}
		}
	}
	_, _, _, err := readOne(session.AppendFrame(nil, 0, session.FrameEnvelope, nil), true)
	assert.ErrorIs(t, err, session.ErrFrame, "stream 0")
	_, _, _, err = readOne(session.AppendFrame(nil, 1, 0x03, nil), true)
	assert.ErrorIs(t, err, session.ErrFrame, "unknown kind")
	short := session.AppendFrame(nil, 1, session.FrameEnvelope, nil)
	binary.BigEndian.PutUint32(short, 4)
	_, _, _, err = readOne(short, true)
	assert.ErrorIs(t, err, session.ErrFrame, "a length shorter than stream and kind")
}

// A frame over its kind's bound is refused from its header alone: the
// reader neither allocates nor waits for the body.
func TestFrameOversizeRefusedFromHeader(t *testing.T) {
	for _, c := range []struct {
		kind    byte
		request bool
	}{{session.FrameHello, true}, {session.FrameEnvelope, true}, {session.FrameEnvelope | session.FrameOK, false}, {session.FrameAlert, false}} {
		hdr := session.AppendFrame(nil, 7, c.kind, nil)
		binary.BigEndian.PutUint32(hdr, uint32(5+session.FrameBodyLimit(c.kind)+1))
		// The header alone, then a reader that would block for ever.
		r := bufio.NewReader(io.MultiReader(bytes.NewReader(hdr), blockingReader{}))
		_, _, _, err := session.ReadFrame(r, c.request)
		assert.ErrorIs(t, err, session.ErrFrameTooLarge, "kind %#x", c.kind)
		binary.BigEndian.PutUint32(hdr, 0xFFFFFFFF)
		_, _, _, err = readOne(hdr, c.request)
		assert.ErrorIs(t, err, session.ErrFrameTooLarge, "kind %#x, 4 GiB", c.kind)
	}
}

type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { select {} }

// FuzzReadFrame: whatever the bytes, the decoder returns frames within
// their bounds, each the exact encoding of what it consumed, or an error.
func FuzzReadFrame(f *testing.F) {
	f.Add(session.AppendFrame(nil, 1, session.FrameEnvelope, []byte("envelope")), true)
	f.Add(session.AppendFrame(session.AppendFrame(nil, 2, session.FrameAlert, []byte{1}), 3, session.FrameEnvelope|session.FrameOK, nil), false)
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 1, 1}, true)
	f.Fuzz(func(t *testing.T, in []byte, request bool) {
		cr := &countingReader{r: bytes.NewReader(in)}
		r := bufio.NewReaderSize(cr, 16)
		consumed := 0
		for {
			stream, kind, body, err := session.ReadFrame(r, request)
			if err != nil {
				return
			}
			limit := session.FrameBodyLimit(kind)
			if stream == 0 || limit < 0 || len(body) > limit {
				t.Fatalf("decoded an invalid frame: stream %d kind %#x %d bytes", stream, kind, len(body))
			}
			enc := session.AppendFrame(nil, stream, kind, body)
			if !bytes.Equal(enc, in[consumed:consumed+len(enc)]) {
				t.Fatalf("re-encoding differs from the input")
			}
			consumed += len(enc)
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// noHTTP fails every HTTP request: a client given it can only use frames.
var noHTTP = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
	return nil, errors.New("HTTP used")
})}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Commands in flight at once share one connection, and a slow one does
// not hold up those sent after it: answers come back in the order they are
// ready, each to its caller.
func TestFramesMultiplexed(t *testing.T) {
	w := newWorld(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countingListener{Listener: l}
	release := make(chan struct{})
	const cmdSlow = 2
	srv := &session.Server{HSM: w.hsm1, Commands: map[uint16]session.CommandHandler{
		cmdEcho: echo,
		cmdSlow: func(r *session.Request) ([]byte, error) { <-release; return echo(r) },
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, cl) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{"http://" + l.Addr().String()}, HTTP: noHTTP})
	require.NoError(t, err)
	defer c.Close()
	slow := make(chan error, 1)
	go func() {
		got, err := c.Do(context.Background(), cmdSlow, []byte("slow"))
		if err == nil && string(got) != "slow" {
			err = errors.New("wrong answer to the slow command")
		}
		slow <- err
	}()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 20 {
				msg := []byte{byte(i), byte(j)}
				got, err := c.Do(context.Background(), cmdEcho, msg)
				if assert.NoError(t, err) {
					assert.Equal(t, msg, got)
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-slow:
		t.Fatalf("the slow command ended before it was released: %v", err)
	default:
	}
	close(release)
	require.NoError(t, <-slow)
	assert.Equal(t, int64(1), cl.n.Load(), "one connection")
}

// fakeHSM accepts frame connections and runs script on each (after the
// prefaces): the HSM misbehaving in ways a real one would not.
type fakeHSM struct {
	l     net.Listener
	conns atomic.Int64
}

func newFakeHSM(t *testing.T, script func(n int64, c net.Conn, r *bufio.Reader)) *fakeHSM {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeHSM{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n := f.conns.Add(1)
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				p := make([]byte, len(session.FrameMagic)+1)
				if _, err := io.ReadFull(r, p); err != nil {
					return
				}
				c.Write(append([]byte(session.FrameMagic), session.FrameVersion))
				script(n, c, r)
			}()
		}
	}()
	return f
}

func (f *fakeHSM) url() string { return "http://" + f.l.Addr().String() }

func alertFrame(t *testing.T, stream uint32, err error) []byte {
	a, merr := session.AlertFor(err).Marshal()
	require.NoError(t, merr)
	return session.AppendFrame(nil, stream, session.FrameAlert, a)
}

// An HSM that dies in the middle of an answer fails the call at once with
// a transport error (not a refusal: the command may be resent), and the
// next call dials a new connection.
func TestFramesPeerDiesMidFrame(t *testing.T) {
	fake := newFakeHSM(t, func(n int64, c net.Conn, r *bufio.Reader) {
		for {
			stream, _, _, err := session.ReadFrame(r, true)
			if err != nil {
				return
			}
			ans := alertFrame(t, stream, session.ErrUnknownCommand)
			if n == 1 {
				c.Write(ans[:len(ans)/2]) // half an answer, then the end
				return
			}
			c.Write(ans)
		}
	})
	c, err := session.NewClient(session.ClientConfig{Host: &session.Host{ID: "h"}, URLs: []string{fake.url()}, HTTP: noHTTP})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.ExchangeForTest(ctx, 0, session.FrameEnvelope, []byte("x"))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	var re *session.RemoteError
	assert.False(t, errors.As(err, &re), "a broken connection is not the HSM's refusal")
	require.NoError(t, ctx.Err(), "no wait for a timeout")

	_, err = c.ExchangeForTest(ctx, 0, session.FrameEnvelope, []byte("x"))
	require.ErrorIs(t, err, session.ErrUnknownCommand, "the second connection's answer")
	require.ErrorAs(t, err, &re)
	assert.Equal(t, int64(2), fake.conns.Load())
}

// An answer over its kind's bound ends the connection: the call fails with
// ErrFrameTooLarge and the body is never read.
func TestFramesOversizeAnswer(t *testing.T) {
	fake := newFakeHSM(t, func(n int64, c net.Conn, r *bufio.Reader) {
		stream, _, _, err := session.ReadFrame(r, true)
		if err != nil {
			return
		}
		hdr := session.AppendFrame(nil, stream, session.FrameEnvelope|session.FrameOK, nil)
		binary.BigEndian.PutUint32(hdr, 1<<30)
		c.Write(hdr)
		io.Copy(io.Discard, r)
	})
	c, err := session.NewClient(session.ClientConfig{Host: &session.Host{ID: "h"}, URLs: []string{fake.url()}, HTTP: noHTTP})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.ExchangeForTest(context.Background(), 0, session.FrameEnvelope, []byte("x"))
	require.ErrorIs(t, err, session.ErrFrameTooLarge)
}

// An HSM that takes a frame and says nothing: the call ends with its
// context, the silent connection is closed, and the next call dials anew.
func TestFramesSilentPeer(t *testing.T) {
	closed := make(chan struct{}, 2)
	fake := newFakeHSM(t, func(n int64, c net.Conn, r *bufio.Reader) {
		io.Copy(io.Discard, r)
		closed <- struct{}{}
	})
	c, err := session.NewClient(session.ClientConfig{Host: &session.Host{ID: "h"}, URLs: []string{fake.url()}, HTTP: noHTTP})
	require.NoError(t, err)
	defer c.Close()
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err = c.ExchangeForTest(ctx, 0, session.FrameEnvelope, []byte("x"))
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("the silent connection was not closed")
		}
	}
	assert.Equal(t, int64(2), fake.conns.Load())
}

// The server: a frame over its bound, or a preface of another version,
// ends the connection; an HTTP request on the same port is still served.
func TestFramesServerRefuses(t *testing.T) {
	w := newWorld(t)
	u, _ := serve(t, w.hsm1)
	addr := u[len("http://"):]
	dial := func(preface []byte) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write(preface)
		require.NoError(t, err)
		r := bufio.NewReader(c)
		p := make([]byte, len(session.FrameMagic)+1)
		_, err = io.ReadFull(r, p)
		require.NoError(t, err)
		assert.Equal(t, append([]byte(session.FrameMagic), session.FrameVersion), p, "the server's preface")
		return c, r
	}
	// Oversize: refused from the header, the connection closed.
	c, r := dial(append([]byte(session.FrameMagic), session.FrameVersion))
	hdr := session.AppendFrame(nil, 1, session.FrameEnvelope, nil)
	binary.BigEndian.PutUint32(hdr, 1<<24)
	_, err := c.Write(hdr)
	require.NoError(t, err)
	_, err = r.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "closed without an answer")

	// A request frame whose envelope does not parse: an Alert frame.
	c, r = dial(append([]byte(session.FrameMagic), session.FrameVersion))
	_, err = c.Write(session.AppendFrame(nil, 9, session.FrameEnvelope, []byte("not an envelope")))
	require.NoError(t, err)
	stream, kind, body, err := session.ReadFrame(r, false)
	require.NoError(t, err)
	assert.Equal(t, uint32(9), stream)
	assert.Equal(t, session.FrameAlert, kind)
	a, err := session.ParseAlert(body)
	require.NoError(t, err)
	assert.ErrorIs(t, a.Err(), session.ErrMalformed)

	// Version 2: the server says it speaks 1, and ends.
	_, r = dial(append([]byte(session.FrameMagic), 2))
	_, err = r.ReadByte()
	assert.ErrorIs(t, err, io.EOF)

	resp, err := http.Get(u + session.PathHello)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "HTTP on the same port")
}

// To an HSM that serves only HTTP/2 (an older release), the client falls
// back to HTTP/2.
func TestFramesFallbackToHTTP(t *testing.T) {
	w := newWorld(t)
	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{httpOnlyHSM(t, w)}})
	require.NoError(t, err)
	defer c.Close()
	for i := range 3 {
		got, err := c.Do(context.Background(), cmdEcho, []byte{byte(i)})
		require.NoError(t, err)
		assert.Equal(t, []byte{byte(i)}, got)
	}
}

// At shutdown the HSM stops reading frames but answers those it is
// serving before it closes the connection.
func TestFramesShutdownDrains(t *testing.T) {
	w := newWorld(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	started, release := make(chan struct{}), make(chan struct{})
	const cmdSlow = 2
	srv := &session.Server{HSM: w.hsm1, Commands: map[uint16]session.CommandHandler{
		cmdEcho: echo,
		cmdSlow: func(r *session.Request) ([]byte, error) { close(started); <-release; return echo(r) },
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{"http://" + l.Addr().String()}, HTTP: noHTTP})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Do(context.Background(), cmdEcho, nil) // the session first
	require.NoError(t, err)
	answer := make(chan error, 1)
	go func() {
		got, err := c.Do(context.Background(), cmdSlow, []byte("in flight"))
		if err == nil && string(got) != "in flight" {
			err = errors.New("wrong answer")
		}
		answer <- err
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Serve returned with a frame in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-answer, "the frame in flight was answered")
	require.NoError(t, <-done)
	_, err = c.Do(context.Background(), cmdEcho, nil)
	require.Error(t, err, "no HSM once it has stopped")
}

// goroutineID is the ID of the goroutine that calls it, from its stack's
// header ("goroutine 42 [running]:").
func goroutineID() string {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf[:n]), "goroutine "), " ")
	return id
}

// An HSM serves a connection's frames concurrently, by workers that stay:
// frames sent one after the other are served by the same goroutine (by
// one, or a few on a loaded machine where a worker was not back waiting
// when the next frame came; a goroutine per frame makes 30), and frames
// in flight together each by a worker of their own.
func TestFramesWorkersStay(t *testing.T) {
	w := newWorld(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	const cmdWho, cmdMeet = 2, 3
	const together = 4
	var (
		mu      sync.Mutex
		workers = map[string]bool{}
		arrived = make(chan struct{}, together)
		meet    = make(chan struct{})
	)
	srv := &session.Server{HSM: w.hsm1, Commands: map[uint16]session.CommandHandler{
		cmdEcho: echo,
		cmdWho: func(r *session.Request) ([]byte, error) {
			mu.Lock()
			workers[goroutineID()] = true
			mu.Unlock()
			return echo(r)
		},
		// Each waits until all of them are being served at once.
		cmdMeet: func(r *session.Request) ([]byte, error) {
			arrived <- struct{}{}
			<-meet
			return echo(r)
		},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, l)
	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{"http://" + l.Addr().String()}, HTTP: noHTTP})
	require.NoError(t, err)
	defer c.Close()
	for range 30 {
		_, err := c.Do(context.Background(), cmdWho, nil)
		require.NoError(t, err)
		// A worker is back waiting a moment after its answer is sent:
		// a frame sooner starts another (which stays as well).
		time.Sleep(5 * time.Millisecond)
	}
	assert.LessOrEqual(t, len(workers), 3, "frames one after the other: the same worker served them")

	errs := make(chan error, together)
	for range together {
		go func() {
			_, err := c.Do(context.Background(), cmdMeet, nil)
			errs <- err
		}()
	}
	for range together {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("frames in flight together were not served together")
		}
	}
	close(meet)
	for range together {
		require.NoError(t, <-errs)
	}
}

// tempErrListener fails its first Accept with a temporary error, as a
// listener out of file descriptors does.
type tempErrListener struct {
	net.Listener
	failed atomic.Bool
}

type tempErr struct{}

func (tempErr) Error() string   { return "accept: too many open files" }
func (tempErr) Timeout() bool   { return false }
func (tempErr) Temporary() bool { return true }

func (l *tempErrListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, tempErr{}
	}
	return l.Listener.Accept()
}

// A temporary Accept error is waited out: the HSM still serves frames and
// HTTP after it.
func TestServeSurvivesTemporaryAcceptError(t *testing.T) {
	w := newWorld(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &session.Server{HSM: w.hsm1, Commands: map[uint16]session.CommandHandler{cmdEcho: echo}}
	go srv.Serve(ctx, &tempErrListener{Listener: l})
	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{"http://" + l.Addr().String()}})
	require.NoError(t, err)
	defer c.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	got, err := c.Do(cctx, cmdEcho, []byte{7})
	require.NoError(t, err)
	assert.Equal(t, []byte{7}, got)
	resp, err := http.Get("http://" + l.Addr().String() + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
}

// A FrameConn carries a caller's own Hellos and Envelopes in frames: a
// Reply comes back as it is, a refusal as its Alert's bytes, on one
// connection. It never speaks HTTP/2: to an HSM that serves only HTTP (an
// older release) or answers a preface of another version, Exchange fails.
func TestFrameConn(t *testing.T) {
	w := newWorld(t)
	u, cl := serve(t, w.hsm1)
	fc, err := session.NewFrameConn(u)
	require.NoError(t, err)
	defer fc.Close()
	ctx := context.Background()
	pending, hello, err := w.host.Begin()
	require.NoError(t, err)
	reply, alert, err := fc.Exchange(ctx, true, hello)
	require.NoError(t, err)
	require.False(t, alert)
	s, err := pending.Finish(reply)
	require.NoError(t, err)
	defer s.Close()
	env, _, err := s.Seal(cmdEcho, []byte("echo"))
	require.NoError(t, err)
	resp, alert, err := fc.Exchange(ctx, false, env)
	require.NoError(t, err)
	require.False(t, alert)
	got, err := s.Open(env, resp)
	require.NoError(t, err)
	assert.Equal(t, []byte("echo"), got)
	body, alert, err := fc.Exchange(ctx, false, []byte("not an envelope"))
	require.NoError(t, err)
	require.True(t, alert)
	a, err := session.ParseAlert(body)
	require.NoError(t, err)
	assert.ErrorIs(t, a.Err(), session.ErrMalformed)
	assert.Equal(t, int64(1), cl.n.Load(), "one connection")

	_, err = session.NewFrameConn("https://" + u[len("http://"):])
	assert.Error(t, err, "no frames over TLS")

	// An HSM of an earlier release: HTTP only.
	old, err := session.NewFrameConn(httpOnlyHSM(t, w))
	require.NoError(t, err)
	defer old.Close()
	_, _, err = old.Exchange(ctx, true, hello)
	assert.Error(t, err, "an HSM that does not speak frames")

	// An HSM that speaks frames version 2.
	v2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer v2.Close()
	go func() {
		for {
			c, err := v2.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.ReadFull(c, make([]byte, len(session.FrameMagic)+1))
				c.Write(append([]byte(session.FrameMagic), 2))
			}()
		}
	}()
	newer, err := session.NewFrameConn("http://" + v2.Addr().String())
	require.NoError(t, err)
	defer newer.Close()
	_, _, err = newer.Exchange(ctx, true, hello)
	assert.ErrorIs(t, err, session.ErrVersion)
}

// A host sends each command to the least busy HSM, the first of the idle
// ones: one client's commands all go to the first HSM. An HSM that could
// not be reached is tried after the others for a while, not first on
// every command.
func TestLeastBusyHSM(t *testing.T) {
	w := newWorld(t)
	serve := func(h *session.HSM, served *atomic.Int32) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := &session.Server{HSM: h, Commands: map[uint16]session.CommandHandler{
			cmdEcho: func(r *session.Request) ([]byte, error) { served.Add(1); return echo(r) },
		}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, l) }()
		t.Cleanup(func() { cancel(); <-done })
		return "http://" + l.Addr().String()
	}
	var n1, n2 atomic.Int32
	u1, u2 := serve(w.hsm1, &n1), serve(w.hsm2, &n2)

	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{u1, u2}, HTTP: noHTTP})
	require.NoError(t, err)
	defer c.Close()
	for range 20 {
		_, err := c.Do(context.Background(), cmdEcho, []byte("x"))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(20), n1.Load(), "one client at a time: the first HSM serves every command")
	assert.Zero(t, n2.Load())

	// A dead first HSM: it accepts and closes at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := &countingListener{Listener: l}
	go func() {
		for {
			conn, err := dead.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	defer dead.Close()
	n2.Store(0)
	c2, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{"http://" + l.Addr().String(), u2}, HTTP: noHTTP})
	require.NoError(t, err)
	defer c2.Close()
	for range 20 {
		_, err := c2.Do(context.Background(), cmdEcho, []byte("x"))
		require.NoError(t, err)
	}
	assert.Equal(t, int32(20), n2.Load())
	assert.LessOrEqual(t, dead.n.Load(), int64(3), "a dead HSM is not tried first on every command")
}

// httpOnlyHSM serves w.hsm1's echo over HTTP/1 and HTTP/2 only, as an
// HSM of a release before frames, until the test ends; it returns the URL.
func httpOnlyHSM(tb testing.TB, w *world) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP1(true)
	hs := &http.Server{Handler: &session.Server{HSM: w.hsm1, Commands: map[uint16]session.CommandHandler{cmdEcho: echo}}, Protocols: p}
	go hs.Serve(l)
	tb.Cleanup(func() { hs.Close() })
	return "http://" + l.Addr().String()
}

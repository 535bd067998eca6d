package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/session"
)

const cmdEcho = 1

func echo(r *session.Request) ([]byte, error) { return append([]byte(nil), r.Command...), nil }

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// serve runs an HSM server on a loopback port until the test ends.
func serve(t *testing.T, h *session.HSM) (string, *countingListener) { return serveB(t, h) }

func serveB(t testing.TB, h *session.HSM) (string, *countingListener) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countingListener{Listener: l}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &session.Server{HSM: h, Commands: map[uint16]session.CommandHandler{cmdEcho: echo}}
	go func() { done <- srv.Serve(ctx, cl) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return "http://" + l.Addr().String(), cl
}

func TestTransportPersistentConnection(t *testing.T) {
	w := newWorld(t)
	u1, l1 := serve(t, w.hsm1)
	u2, l2 := serve(t, w.hsm2)
	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{u1, u2}})
	require.NoError(t, err)
	defer c.Close()

	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 25 {
				msg := fmt.Appendf(nil, "%d/%d", i, j)
				got, err := c.Do(ctx, cmdEcho, msg)
				if assert.NoError(t, err) {
					assert.Equal(t, msg, got)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1), l1.n.Load(), "one connection to hsm-1, multiplexed")
	assert.Equal(t, int64(1), l2.n.Load(), "one connection to hsm-2, multiplexed")
	assert.Positive(t, w.hsm2.CachedSessions(), "hsm-2 served envelopes of a session made with hsm-1")

	// DoOn pins the HSM.
	got, err := c.DoOn(ctx, 1, cmdEcho, []byte("pinned"))
	require.NoError(t, err)
	assert.Equal(t, []byte("pinned"), got)
}

func TestTransportAlerts(t *testing.T) {
	w := newWorld(t)
	u1, _ := serve(t, w.hsm1)
	ctx := context.Background()

	ghost, err := session.NewClient(session.ClientConfig{Host: &session.Host{ID: "op-1", Signer: w.opKey, Dir: w.dir}, URLs: []string{u1}})
	require.NoError(t, err)
	_, err = ghost.Do(ctx, cmdEcho, nil)
	require.ErrorIs(t, err, session.ErrNotServiceHost)
	var re *session.RemoteError
	require.ErrorAs(t, err, &re)

	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{u1}})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Do(ctx, 99, nil)
	require.ErrorIs(t, err, session.ErrUnknownCommand)

	// Bodies over the limit, and methods other than POST.
	resp, err := http.Post(u1+session.PathHello, "application/octet-stream", bytes.NewReader(make([]byte, 4096)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, err = http.Get(u1 + session.PathHello)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestTransportFailover(t *testing.T) {
	w := newWorld(t)
	u1, _ := serve(t, w.hsm1)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + dead.Addr().String()
	dead.Close()

	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{deadURL, u1}})
	require.NoError(t, err)
	defer c.Close()
	for i := range 6 {
		got, err := c.Do(context.Background(), cmdEcho, []byte{byte(i)})
		require.NoError(t, err)
		assert.Equal(t, []byte{byte(i)}, got)
	}

	// No HSM at all: a clear error, no hang.
	none, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{deadURL}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = none.Do(ctx, cmdEcho, nil)
	require.ErrorContains(t, err, "no HSM made a session")
}

// Commands keep flowing while the clock passes the renegotiation point and
// then the first session's end: none fails.
func TestTransportRenegotiation(t *testing.T) {
	w := newWorld(t)
	u1, _ := serve(t, w.hsm1)
	u2, _ := serve(t, w.hsm2)
	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{u1, u2}})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	_, err = c.Do(ctx, cmdEcho, []byte("first"))
	require.NoError(t, err)
	first := c.Current()
	require.NotNil(t, first)

	stop := make(chan struct{})
	var failures atomic.Int64
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Do(ctx, cmdEcho, []byte("x")); err != nil {
					failures.Add(1)
					t.Log(err)
				}
				calls.Add(1)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	w.clock.Add(time.Duration(0.85 * float64(session.DefaultValidity)))
	require.Eventually(t, func() bool { return c.Current() != first }, 10*time.Second, 5*time.Millisecond, "renegotiated in the background")
	second := c.Current()
	w.clock.Add(time.Duration(0.2 * float64(session.DefaultValidity))) // past the first session's end
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	assert.Zero(t, failures.Load(), "no command failed across renegotiation")
	assert.Greater(t, calls.Load(), int64(20))
	assert.True(t, second.NotAfter.After(first.NotAfter))

	// The replaced session's key was cleared once its commands were done.
	require.Eventually(t, func() bool {
		_, _, err := first.Seal(cmdEcho, nil)
		return errors.Is(err, session.ErrSessionClosed)
	}, 5*time.Second, 5*time.Millisecond)
}

// An HSM without the session's domain key (restarted, or behind a domain
// change) refuses its envelopes before serving them: the client sends the
// command to the next HSM in the same session, so no command fails while
// another HSM holds the key.
func TestTransportHSMWithoutDomainKey(t *testing.T) {
	w := newWorld(t)
	u1, _ := serve(t, w.hsm1)
	behind := newHSMEnd(t, w.hsm1Tok, w.hsm1Keys, w.dir, session.NewMemoryKeyRing(), w.clock.Now)
	u0, _ := serve(t, behind)
	c, err := session.NewClient(session.ClientConfig{Host: w.host, URLs: []string{u1, u0}})
	require.NoError(t, err)
	defer c.Close()
	var first *session.Session
	for i := range 20 {
		got, err := c.Do(context.Background(), cmdEcho, []byte{byte(i)})
		require.NoError(t, err, "command %d", i)
		assert.Equal(t, []byte{byte(i)}, got)
		if first == nil {
			first = c.Current()
		}
	}
	assert.True(t, first == c.Current(), "one session throughout: the HSM behind did not make the client drop it")
	// Pinned to the HSM without the key: its refusal is the answer.
	_, err = c.DoOn(context.Background(), 1, cmdEcho, []byte("pinned"))
	require.ErrorIs(t, err, session.ErrKeyNotRetained)
}

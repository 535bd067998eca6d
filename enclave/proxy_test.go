package enclave_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"github.com/trentkms/trent/internal/syncbuf"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trentkms/trent/enclave"
)

// shortDir is a temporary directory with a path short enough for Unix
// sockets.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "enc")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestProxyRefusals(t *testing.T) {
	for name, cfg := range map[string]enclave.ProxyConfig{
		"not on the allowlist": {Remote: "127.0.0.1:4599", Allow: []string{"127.0.0.1:4600", "kms.us-east-1.amazonaws.com:443"}},
		"no port":              {Remote: "127.0.0.1"},
		"port zero":            {Remote: "127.0.0.1:0"},
		"bad allowlist entry":  {Remote: "127.0.0.1:4599", Allow: []string{"127.0.0.1:4599", "nonsense"}},
		"negative bound":       {Remote: "127.0.0.1:4599", MaxConns: -1},
	} {
		_, err := enclave.NewProxy(cfg)
		require.Error(t, err, name)
		assert.True(t, strings.HasPrefix(err.Error(), "enclave: "), name)
	}
	_, err := enclave.NewProxy(enclave.ProxyConfig{Remote: "127.0.0.1:4599", Allow: []string{"127.0.0.1:4600"}})
	assert.ErrorContains(t, err, "not on the allowlist")
	for _, ok := range []enclave.ProxyConfig{
		{Remote: "127.0.0.1:4599"},
		{Remote: "KMS.us-east-1.amazonaws.com.:443", Allow: []string{"127.0.0.1:1", "kms.us-east-1.amazonaws.com:0443"}},
	} {
		_, err := enclave.NewProxy(ok)
		assert.NoError(t, err, ok.Remote)
	}

	for _, bad := range []string{"0.0.0.0:8000", "192.0.2.1:8000", ":8000", "unix:", "8000", "example.com:80"} {
		_, _, err := enclave.ParseListen(bad)
		assert.Error(t, err, bad)
	}
	for addr, network := range map[string]string{"unix:/tmp/x.sock": "unix", "127.0.0.1:0": "tcp", "[::1]:8000": "tcp", "localhost:8000": "tcp", "127.1.2.3:9": "tcp"} {
		n, _, err := enclave.ParseListen(addr)
		require.NoError(t, err, addr)
		assert.Equal(t, network, n, addr)
	}
}

// upstream is a TCP server that records what each connection sends until
// EOF, then answers reply and closes.
type upstream struct {
	ln       net.Listener
	reply    []byte
	accepted atomic.Int32
	mu       sync.Mutex
	got      [][]byte
	hold     chan struct{} // if not nil, answer only once it is closed
}

func newUpstream(t *testing.T, reply []byte) *upstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &upstream{ln: ln, reply: reply}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.accepted.Add(1)
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				u.mu.Lock()
				u.got = append(u.got, b)
				u.mu.Unlock()
				if u.hold != nil {
					<-u.hold
				}
				c.Write(u.reply)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return u
}

// serveProxy runs a proxy to remote on a Unix socket until the test ends
// (or cancel is called), returning its address.
func serveProxy(t *testing.T, cfg enclave.ProxyConfig) (addr string, cancel func(), done <-chan error) {
	t.Helper()
	p, err := enclave.NewProxy(cfg)
	require.NoError(t, err)
	addr = "unix:" + filepath.Join(shortDir(t), "p.sock")
	ln, err := enclave.Listen(addr)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ch, stopped := make(chan error, 1), make(chan struct{})
	go func() {
		ch <- p.Serve(ctx, ln)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Error("the proxy did not stop")
		}
	})
	return addr, cancel, ch
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func dialUnix(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.Dial("unix", strings.TrimPrefix(addr, "unix:"))
	require.NoError(t, err)
	return c.(*net.UnixConn)
}

// Bytes go through exactly, both ways, over several concurrent
// connections (more than the bound), with half-closes passed on; the log
// has a line per connection and no payload.
func TestProxyForwardsBytesExactly(t *testing.T) {
	reply := random(t, 300<<10)
	up := newUpstream(t, reply)
	var log syncbuf.Buffer
	addr, _, _ := serveProxy(t, enclave.ProxyConfig{Remote: up.ln.Addr().String(), MaxConns: 3,
		Log: slog.New(slog.NewTextHandler(&log, nil))})

	const n = 8
	sent := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		sent[i] = random(t, 1<<20+i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dialUnix(t, addr)
			defer c.Close()
			go func() {
				c.Write(sent[i])
				c.CloseWrite()
			}()
			got, err := io.ReadAll(c)
			assert.NoError(t, err)
			assert.True(t, bytes.Equal(reply, got), "connection %d: the reply differs (%d bytes)", i, len(got))
		}()
	}
	wg.Wait()
	up.mu.Lock()
	got := up.got
	up.mu.Unlock()
	require.Len(t, got, n)
	for _, s := range sent {
		found := false
		for _, g := range got {
			found = found || bytes.Equal(s, g)
		}
		assert.True(t, found, "a %d-byte upload arrived changed", len(s))
	}
	require.Eventually(t, func() bool { return strings.Count(log.String(), `msg="proxy: connection"`) == n }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, log.String(), "bytes_up=1048576 ")
	assert.Contains(t, log.String(), "bytes_down=307200 ")
	assert.Less(t, len(log.String()), 4096, "a short line per connection, no payload")
}

// At most MaxConns connections are forwarded at once; the next waits.
func TestProxyBoundsConnections(t *testing.T) {
	up := newUpstream(t, []byte("done"))
	up.hold = make(chan struct{})
	addr, _, _ := serveProxy(t, enclave.ProxyConfig{Remote: up.ln.Addr().String(), MaxConns: 1})
	first := dialUnix(t, addr)
	defer first.Close()
	first.Write([]byte("one"))
	first.CloseWrite()
	require.Eventually(t, func() bool { return up.accepted.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	second := dialUnix(t, addr)
	defer second.Close()
	second.Write([]byte("two"))
	second.CloseWrite()
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, int32(1), up.accepted.Load(), "the second connection waits for the first")
	close(up.hold)
	b, err := io.ReadAll(first)
	require.NoError(t, err)
	assert.Equal(t, "done", string(b))
	b, err = io.ReadAll(second)
	require.NoError(t, err)
	assert.Equal(t, "done", string(b))
	assert.Equal(t, int32(2), up.accepted.Load())
}

// Cancelling stops the proxy: open connections are closed, Serve returns
// nil and the socket file is gone.
func TestProxyShutdown(t *testing.T) {
	up := newUpstream(t, []byte("late"))
	up.hold = make(chan struct{})
	defer close(up.hold)
	addr, cancel, done := serveProxy(t, enclave.ProxyConfig{Remote: up.ln.Addr().String()})
	c := dialUnix(t, addr)
	defer c.Close()
	c.Write([]byte("x"))
	c.CloseWrite()
	require.Eventually(t, func() bool { return up.accepted.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	// Closed, not left open: an end of file, or a reset when the proxy
	// closed it with bytes it had not read yet; never the read deadline.
	if err != nil {
		assert.ErrorIs(t, err, syscall.ECONNRESET, "the connection was closed, not left open")
	}
	assert.Empty(t, b)
	_, err = os.Stat(strings.TrimPrefix(addr, "unix:"))
	assert.True(t, os.IsNotExist(err), "the socket file is removed")
}

func slogTo(w *syncbuf.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

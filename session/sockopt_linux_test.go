//go:build linux

package session

import (
	"bufio"
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A frame connection's socket carries TCP_USER_TIMEOUT, so that a
// partition (packets dropped, no reset) ends it within unackedTimeout.
func TestFrameConnUserTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		p := make([]byte, framePrefaceLen)
		if _, err := io.ReadFull(bufio.NewReader(c), p); err == nil {
			c.Write(framePreface(FrameVersion))
			io.Copy(io.Discard, c)
		}
	}()
	p := newPeer("http://" + l.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := p.get(ctx, time.Now())
	require.NoError(t, err)
	require.NotNil(t, cc)
	defer p.close()
	rc, err := cc.c.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var got int
	var gerr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		got, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout)
	}))
	require.NoError(t, gerr)
	require.Equal(t, int(unackedTimeout/time.Millisecond), got)
}

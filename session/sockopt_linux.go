//go:build linux

package session

import (
	"syscall"
	"time"
)

// tcpUserTimeout is Linux's TCP_USER_TIMEOUT (include/uapi/linux/tcp.h),
// which package syscall does not name on every architecture.
const tcpUserTimeout = 0x12

// bindUnacked sets TCP_USER_TIMEOUT on a frame connection's socket: the
// kernel ends the connection once sent data has stayed unacknowledged for
// unackedTimeout. A network partition drops packets without a reset; this
// is how a host learns of it while its frames wait for answers (an HSM
// that is slow to answer still acknowledges the frame at once).
func bindUnacked(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(unackedTimeout/time.Millisecond))
	})
	if err != nil {
		return err
	}
	return serr
}

//go:build !linux

package session

import "syscall"

// bindUnacked does nothing here: only Linux has TCP_USER_TIMEOUT. A
// partition is noticed when a call's context ends (errSilent).
func bindUnacked(_, _ string, _ syscall.RawConn) error { return nil }

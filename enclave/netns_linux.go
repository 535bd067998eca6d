package enclave

import (
	"os"
	"os/exec"
	"syscall"
)

const netnsSupported = true

// isolateNet starts cmd in new user and network namespaces: the process
// has a loopback interface of its own (down) and no route anywhere; a
// Unix socket on the shared file system is its only way to the parent.
// The user namespace maps the caller's uid and gid to themselves, so that
// an unprivileged caller can make the network namespace.
func isolateNet(cmd *exec.Cmd) {
	uid, gid := os.Getuid(), os.Getgid()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
	}
}

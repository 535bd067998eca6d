package peers

import (
	"fmt"
	"net"
	"os/exec"
)

// Isolated reports whether this process is in a network namespace with no
// interface but loopback (as `unshare -n` makes): a server listening on
// every interface there is reachable from nowhere else.
func Isolated() bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}

// UnshareCommand is the command that runs argv in a private network
// namespace, and an error if this machine does not permit one: `unshare
// -n` (root), else `unshare -rn` (an unprivileged user namespace).
func UnshareCommand(argv []string) (*exec.Cmd, error) {
	path, err := exec.LookPath("unshare")
	if err != nil {
		return nil, fmt.Errorf("peers: no unshare: %w", err)
	}
	for _, flags := range [][]string{{"-n"}, {"-r", "-n"}} {
		if exec.Command(path, append(flags, "true")...).Run() == nil {
			return exec.Command(path, append(append(flags, "--"), argv...)...), nil
		}
	}
	return nil, fmt.Errorf("peers: unshare -n and unshare -rn are not permitted here")
}

// LoopbackUp brings the namespace's loopback interface up (ip link set lo
// up): a new network namespace starts with it down.
func LoopbackUp() error {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("peers: ip link set lo up: %v: %s", err, out)
	}
	return nil
}

package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// envNetns marks a process that Reexec started in a private network and
// mount namespace.
const envNetns = "TRENT_CHAOS_NETNS"

// InPrivateNamespace reports whether this process is one that Reexec
// started: in a network namespace of its own, where Network may be set up
// without touching the machine's network.
func InPrivateNamespace() bool { return os.Getenv(envNetns) == "1" }

// Reexec runs this program again (os.Args) in a new network and mount
// namespace (`unshare -mn`), with its standard streams, and returns its
// exit code. It returns an error, and runs nothing, if the machine does
// not allow it (no unshare, no CAP_SYS_ADMIN): the caller then goes on
// without namespaces and skips the partition scenario, saying why.
func Reexec() (int, error) {
	if InPrivateNamespace() {
		return 0, errors.New("chaos: already in a private namespace")
	}
	if out, err := exec.Command("unshare", "-mn", "--propagation", "private", "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("chaos: network namespaces unavailable (unshare -mn: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	cmd := exec.Command("unshare", append([]string{"-mn", "--propagation", "private", "--"}, os.Args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envNetns+"=1")
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("chaos: %w", err)
	}
	return 0, nil
}

// Network gives each service host a network namespace of its own, joined
// to this process's namespace by a veth pair on a bridge: the bridge holds
// 10.77.0.1 (the HSMs and the clients), host i (0-based) 10.77.0.(11+i).
// A host is partitioned by putting its veth down on the bridge side: it
// then reaches nothing (peers, HSMs, clients) and nothing reaches it. Only
// in a process that Reexec started: the namespaces' names live in a
// private /run/netns, and everything vanishes with the process.
type Network struct {
	hosts []string
}

const bridge = "chaosbr0"

// BridgeIP is the address of this process's side (HSMs, clients).
const BridgeIP = "10.77.0.1"

// NewNetwork sets up the namespaces of the named hosts.
func NewNetwork(hosts []string) (*Network, error) {
	if !InPrivateNamespace() {
		return nil, errors.New("chaos: network namespaces need a process started by Reexec")
	}
	n := &Network{}
	fail := func(err error) (*Network, error) {
		n.Close()
		return nil, err
	}
	// A private /run/netns: the names are this process's alone (the mount
	// namespace is private), gone with it.
	if _, err := os.Stat("/run/netns/.chaos"); err != nil {
		if err := run("mkdir", "-p", "/run/netns"); err != nil {
			return nil, err
		}
		if err := run("mount", "-t", "tmpfs", "chaos-netns", "/run/netns"); err != nil {
			return nil, err
		}
		if err := os.WriteFile("/run/netns/.chaos", nil, 0o600); err != nil {
			return nil, err
		}
	}
	if err := run("ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	if err := run("ip", "link", "add", bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	n.hosts = hosts
	steps := [][]string{{"ip", "addr", "add", BridgeIP + "/24", "dev", bridge}, {"ip", "link", "set", bridge, "up"}}
	for i, h := range hosts {
		ns, veth := nsName(h), vethName(i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p"},
			[]string{"ip", "link", "set", veth + "p", "netns", ns},
			[]string{"ip", "link", "set", veth, "master", bridge},
			[]string{"ip", "link", "set", veth, "up"},
			[]string{"ip", "-n", ns, "addr", "add", n.HostIP(i) + "/24", "dev", veth + "p"},
			[]string{"ip", "-n", ns, "link", "set", veth + "p", "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"})
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return fail(err)
		}
	}
	return n, nil
}

func nsName(host string) string { return "chaos-" + host }
func vethName(i int) string     { return fmt.Sprintf("chv%d", i+1) }

// HostIP is host i's address.
func (n *Network) HostIP(i int) string { return fmt.Sprintf("10.77.0.%d", 11+i) }

// HostIPs are the hosts' addresses in order.
func (n *Network) HostIPs() []string {
	var out []string
	for i := range n.hosts {
		out = append(out, n.HostIP(i))
	}
	return out
}

// Wrap is dev.Options.Wrap: a host's process runs in its namespace.
func (n *Network) Wrap(name string) []string {
	for _, h := range n.hosts {
		if h == name {
			return []string{"ip", "netns", "exec", nsName(h)}
		}
	}
	return nil
}

func (n *Network) veth(host string) (string, error) {
	for i, h := range n.hosts {
		if h == host {
			return vethName(i), nil
		}
	}
	return "", fmt.Errorf("chaos: no host %q", host)
}

// Isolate cuts host off from everything: its veth goes down.
func (n *Network) Isolate(host string) error {
	v, err := n.veth(host)
	if err != nil {
		return err
	}
	return run("ip", "link", "set", v, "down")
}

// Heal undoes Isolate.
func (n *Network) Heal(host string) error {
	v, err := n.veth(host)
	if err != nil {
		return err
	}
	return run("ip", "link", "set", v, "up")
}

// Close removes the namespaces, the veths and the bridge.
func (n *Network) Close() error {
	var errs []error
	for i, h := range n.hosts {
		errs = append(errs, run("ip", "link", "del", vethName(i)), run("ip", "netns", "del", nsName(h)))
	}
	errs = append(errs, run("ip", "link", "del", bridge))
	n.hosts = nil
	return errors.Join(errs...)
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaos: %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

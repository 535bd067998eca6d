package chaos

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/trentkms/trent/ceremony"
	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/quorum"
)

// Scenario is one fault the nemesis injects while the workload runs. Fault
// injects it, holds it for hold, heals it, and returns once healed (the
// processes it stopped are started again).
type Scenario struct {
	Name  string
	About string
	// NeedsNetwork: the scenario partitions, and is skipped without
	// network namespaces.
	NeedsNetwork bool
	Fault        func(ctx context.Context, e *Env, hold time.Duration) error
}

// Env is what a fault acts on: the running cluster (replaced by a restart
// of everything) and the network.
type Env struct {
	Opts    dev.Options
	Network *Network // nil without namespaces
	Log     func(format string, args ...any)

	mu      sync.Mutex
	cluster *dev.Cluster
}

// Cluster is the running cluster.
func (e *Env) Cluster() *dev.Cluster {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cluster
}

// Leader returns the raft leader's host ID as most hosts see it.
func (e *Env) Leader(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		votes := map[string]int{}
		for _, h := range e.Cluster().Hosts {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := host.GetStatus(c, h.API)
			cancel()
			if err == nil && st.Leader != "" {
				votes[st.Leader]++
			}
		}
		for id, n := range votes {
			if n*2 > len(e.Cluster().Hosts) {
				return id, nil
			}
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("chaos: no leader: %v", votes)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *Env) proc(name string) (*dev.Proc, error) {
	p := e.Cluster().Proc(name)
	if p == nil {
		return nil, fmt.Errorf("chaos: no process %s", name)
	}
	return p, nil
}

// killRestart kills a process with SIGKILL, and starts it again after hold.
func (e *Env) killRestart(ctx context.Context, name string, hold time.Duration) error {
	p, err := e.proc(name)
	if err != nil {
		return err
	}
	e.Log("nemesis: kill -9 %s", name)
	if err := p.Kill(); err != nil {
		return err
	}
	sleep(ctx, hold)
	e.Log("nemesis: start %s", name)
	return p.Start()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Scenarios are the nemesis's faults, one per run.
var Scenarios = []Scenario{
	{Name: "kill-leader", About: "kill -9 of the raft leader's host, restarted after the hold",
		Fault: func(ctx context.Context, e *Env, hold time.Duration) error {
			l, err := e.Leader(ctx)
			if err != nil {
				return err
			}
			return e.killRestart(ctx, l, hold)
		}},
	{Name: "kill-follower", About: "kill -9 of a follower host, restarted after the hold",
		Fault: func(ctx context.Context, e *Env, hold time.Duration) error {
			l, err := e.Leader(ctx)
			if err != nil {
				return err
			}
			for _, h := range e.Cluster().Hosts {
				if h.ID != l {
					return e.killRestart(ctx, h.ID, hold)
				}
			}
			return errors.New("chaos: no follower")
		}},
	{Name: "kill-hsm", About: "kill -9 of an HSM node, restarted after the hold",
		Fault: func(ctx context.Context, e *Env, hold time.Duration) error {
			return e.killRestart(ctx, "hsm-2", hold)
		}},
	{Name: "pause-leader", About: "SIGSTOP of the leader's host for the hold, then SIGCONT",
		Fault: func(ctx context.Context, e *Env, hold time.Duration) error {
			l, err := e.Leader(ctx)
			if err != nil {
				return err
			}
			p, err := e.proc(l)
			if err != nil {
				return err
			}
			e.Log("nemesis: SIGSTOP %s", l)
			if err := p.Signal(syscall.SIGSTOP); err != nil {
				return err
			}
			sleep(ctx, hold)
			e.Log("nemesis: SIGCONT %s", l)
			return p.Signal(syscall.SIGCONT)
		}},
	{Name: "restart-all", About: "every process stopped (SIGTERM), then the cluster started again on the same dir",
		Fault: func(ctx context.Context, e *Env, hold time.Duration) error {
			e.Log("nemesis: stop every process")
			if err := e.Cluster().Stop(); err != nil {
				e.Log("nemesis: stop: %v", err)
			}
			sleep(ctx, hold/2)
			e.Log("nemesis: start the cluster again")
			c, err := dev.Start(e.Opts, nil)
			if err != nil {
				return err
			}
			e.mu.Lock()
			e.cluster = c
			e.mu.Unlock()
			return nil
		}},
	{Name: "partition-leader", About: "the leader's host cut off from peers, HSMs and clients (its veth down) for the hold, then healed",
		NeedsNetwork: true,
		Fault: func(ctx context.Context, e *Env, hold time.Duration) error {
			l, err := e.Leader(ctx)
			if err != nil {
				return err
			}
			e.Log("nemesis: partition %s", l)
			if err := e.Network.Isolate(l); err != nil {
				return err
			}
			sleep(ctx, hold)
			e.Log("nemesis: heal %s", l)
			return e.Network.Heal(l)
		}},
	{Name: "domain-change-hsm-down", About: "an HSM killed, RotateDomainKeys (signed by host-1) committed while it is down, the HSM restarted after the hold",
		Fault: func(ctx context.Context, e *Env, hold time.Duration) error {
			p, err := e.proc("hsm-3")
			if err != nil {
				return err
			}
			e.Log("nemesis: kill -9 hsm-3")
			if err := p.Kill(); err != nil {
				return err
			}
			start := time.Now()
			v, err := rotate(ctx, e.Cluster())
			if err != nil {
				p.Start()
				return err
			}
			e.Log("nemesis: RotateDomainKeys committed: state version %d", v)
			sleep(ctx, hold-time.Since(start))
			e.Log("nemesis: start hsm-3")
			return p.Start()
		}},
}

// rotate has host-1 sign RotateDomainKeys (a service host signs it alone
// under the default rules) and submits it; it returns the new state
// version.
func rotate(ctx context.Context, c *dev.Cluster) (uint64, error) {
	api := c.Hosts[0].API
	st, err := host.GetStatus(ctx, api)
	if err != nil {
		return 0, err
	}
	cmd, err := quorum.NewCommand(st.Domain, st.StateVersion, quorum.RotateDomainKeys, nil, time.Now(), 0,
		func(b []byte) error { _, err := rand.Read(b); return err })
	if err != nil {
		return 0, err
	}
	raw, err := cmd.Marshal()
	if err != nil {
		return 0, err
	}
	key, err := ceremony.OpenKey(c.Hosts[0].KeyFile, "")
	if err != nil {
		return 0, err
	}
	defer key.Close()
	sig, err := quorum.SignECDSA(c.Hosts[0].ID, key.ECDSASigner(), raw)
	if err != nil {
		return 0, err
	}
	sc := &quorum.SignedCommand{Command: raw}
	if err := sc.Add(sig); err != nil {
		return 0, err
	}
	signed, err := sc.Marshal()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return host.SubmitTo(ctx, api, signed)
}

// ScenarioNamed returns the scenario named name.
func ScenarioNamed(name string) (Scenario, bool) {
	for _, s := range Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

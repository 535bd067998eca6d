package dev

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/internal/boundedio"
)

// Proc is one HSM node or service host of a cluster run as processes
// (Options.Exec): the trent binary with its arguments, its output appended
// to a log file. Its methods are safe for concurrent use.
type Proc struct {
	Name string   `json:"name"` // "hsm-1", "host-2"
	Args []string `json:"args"` // after the binary
	Log  string   `json:"log"`  // its stdout and stderr
	PID  int      `json:"pid"`  // of the latest start (0 before)

	exe  string
	env  []string // added to the supervisor's environment
	wrap []string // runs exe (Options.Wrap)
	// restart, if set, is called when the process exits without Stop or
	// Kill having asked it to (Options.Supervise).
	restart func(p *Proc, err error)

	mu       sync.Mutex
	cmd      *exec.Cmd
	started  time.Time     // of the latest start
	done     chan struct{} // closed when the latest start has exited
	expected bool          // the exit was asked for
}

// Start starts the process (again, if it ran before and has exited).
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("dev: %s is running", p.Name)
		}
	}
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	fmt.Fprintf(logf, "--- %s: %s %v\n", time.Now().Format(time.RFC3339Nano), strings.Join(append(slices.Clip(p.wrap), p.exe), " "), p.Args)
	argv := append(append(slices.Clip(p.wrap), p.exe), p.Args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if len(p.env) > 0 {
		cmd.Env = append(os.Environ(), p.env...)
	}
	// Its own process group: a Ctrl-C in the terminal reaches trent dev,
	// which stops its children in order, and not every child at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("dev: %s: %w", p.Name, err)
	}
	p.cmd, p.PID, p.expected, p.started = cmd, cmd.Process.Pid, false, time.Now()
	done := make(chan struct{})
	p.done = done
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		expected, restart := p.expected, p.restart
		p.mu.Unlock()
		close(done)
		if !expected && restart != nil {
			restart(p, err)
		}
	}()
	return nil
}

// uptime is how long the latest start has run (until now).
func (p *Proc) uptime() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Since(p.started)
}

// Running reports whether the latest start has not exited.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the running process (SIGSTOP and SIGCONT pause and
// resume it).
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("dev: %s never started", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to exit: a crash, as far
// as the rest of the cluster can tell.
func (p *Proc) Kill() error { return p.stop(syscall.SIGKILL, 0) }

// Stop asks the process to exit (SIGTERM), and kills it if it has not
// within grace.
func (p *Proc) Stop(grace time.Duration) error { return p.stop(syscall.SIGTERM, grace) }

func (p *Proc) stop(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.expected = true
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot exit
	cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL {
		select {
		case <-done:
			return nil
		case <-time.After(grace):
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	<-done
	return nil
}

// exited is the error of a process that exited at start: its log's last
// lines say why.
func (p *Proc) exited() error {
	data, _ := boundedio.ReadFile(p.Log, 1<<20)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	lines = lines[max(0, len(lines)-5):]
	return fmt.Errorf("dev: %s exited at start (%s):\n%s", p.Name, p.Log, strings.Join(lines, "\n"))
}

// freePort takes a port of the pool startProcs filled.
func (c *Cluster) freePort() int {
	if len(c.pool) == 0 {
		// Only the KMS API asked for port 0: one port cannot collide.
		ports, err := freePorts("127.0.0.1", 1)
		if err != nil {
			return 0
		}
		return ports[0]
	}
	p := c.pool[0]
	c.pool = c.pool[1:]
	return p
}

// freePorts returns n TCP ports on ip that were free a moment ago, none
// of them in taken (ports handed out before whose servers have not bound
// them yet).
func freePorts(ip string, n int, taken ...int) ([]int, error) {
	return pickPorts(func() (net.Listener, error) { return net.Listen("tcp", net.JoinHostPort(ip, "0")) }, n, taken)
}

// pickPorts listens until it has n ports not in taken, holding every
// listener until it returns, so that the kernel gives no port twice.
func pickPorts(listen func() (net.Listener, error), n int, taken []int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for len(ports) < n {
		l, err := listen()
		if err != nil {
			return nil, fmt.Errorf("dev: %w", err)
		}
		ls = append(ls, l)
		if p := l.Addr().(*net.TCPAddr).Port; !slices.Contains(taken, p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// regionPorts are the ports of opts's region addresses: its hosts' own
// (RegionListen) and its peer regions' hosts' (PeerRegions), chosen
// before this cluster's pool.
func regionPorts(opts Options) []int {
	var ports []int
	addrs := slices.Clone(opts.RegionListen)
	for _, urls := range opts.PeerRegions {
		for _, u := range urls {
			addrs = append(addrs, strings.TrimPrefix(u, "https://"))
		}
	}
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				ports = append(ports, n)
			}
		}
	}
	return ports
}

// coLocated is how trent dev runs processes that share one machine's
// cores, where a production deployment gives each HSM a machine of its
// own: each HSM process schedules Go code on hsmProcs threads and each
// host on hostProcs (GOMAXPROCS, unless set in trent dev's environment),
// and each host keeps batchWorkers batches in flight to the HSMs
// (--hsm-batch-workers).
type coLocated struct{ hsmProcs, hostProcs, batchWorkers int }

// sharedShape divides cpus cores among hsms HSM processes and a host, and
// leaves half of them to the host's clients.
// Go's scheduler in an idle process wakes spare threads to look for work,
// and a second batch in flight buys no parallelism when every process
// shares the same cores, only smaller batches and more wake-ups: on 2
// cores with 3 HSMs, GOMAXPROCS 1 and one batch in flight cost 18 % less
// CPU per request than Go's default and two (docs/benchmarks.md, session
// 7), and the host at GOMAXPROCS 1 another 8-9 % at 16 clients and 16 %
// at one, with 30 µs off the median of a lone client's request, for 1-5 %
// fewer requests a second at 16 clients (session 9). With cores to spare,
// each HSM gets its share and the host half the cores and a batch in
// flight per HSM, as on separate machines.
func sharedShape(cpus, hsms int) coLocated {
	hsms = max(1, hsms)
	return coLocated{
		hsmProcs:     max(1, cpus/hsms),
		hostProcs:    max(1, cpus/2),
		batchWorkers: max(1, min(hsms, cpus/2)),
	}
}

// procsEnv is the environment that gives a process n threads for Go code,
// none if GOMAXPROCS is set for trent dev (its processes inherit it).
func procsEnv(n int) []string {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return nil
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(n)}
}

// quietSysmon is the GODEBUG setting trent dev adds to every HSM's and
// host's environment (sysmonEnv): schedtrace at its largest value, a line
// of scheduler trace every 24.8 days of the machine's uptime.
//
// It is there for a side effect the runtime states in sysmon
// (runtime/proc.go: "sysmon should not enter deep sleep if schedtrace is
// enabled"); Go has no setting of its own for it. When every P of a
// process is idle, Go's system monitor sleeps until the next system call
// wakes it (a futex wake on that call's path), then polls every 20 µs
// (about 70 µs on the benchmark's machine) fifty times and more before it
// slows down. Trent's processes go idle between every HSM batch and
// between a host's requests, so under load their monitors polled at about
// that rate all the time: 8.8 % of the cluster's CPU at Encrypt/16
// (docs/benchmarks.md, session 12). Kept out of the deep sleep, a monitor
// with nothing to do slows to a poll every 10 ms, busy or at rest: the
// cluster at rest spends 7-9 ms a second more. A system call that blocks
// for long (an fsync) then keeps the P of its thread until the monitor's
// next poll, up to about 20 ms, as in any Go process that stays busy.
const quietSysmon = "schedtrace=2147483647"

// sysmonEnv is the environment that gives a process quietSysmon: none if
// GODEBUG for trent dev already sets schedtrace (its processes inherit
// it), else GODEBUG with quietSysmon added to the rest of trent dev's.
func sysmonEnv() []string {
	v := os.Getenv("GODEBUG")
	if v == "" {
		return []string{"GODEBUG=" + quietSysmon}
	}
	for _, kv := range strings.Split(v, ",") {
		if name, _, _ := strings.Cut(kv, "="); name == "schedtrace" {
			return nil
		}
	}
	return []string{"GODEBUG=" + v + "," + quietSysmon}
}

// startProcs runs every HSM node and service host as a process of
// opts.Exec: the HSMs first (each waits for a host to deliver the domain
// token, or, without hosts, imports the saved one), then the first host
// (bootstrapping raft with the genesis token, or resuming its raft
// state), then the others (joining it, or resuming). It returns once every
// HSM holds the domain's latest state.
func (c *Cluster) startProcs(opts Options, ip string, port0 int, hostIDs []string, hostKey *ecdsa.PrivateKey, say func(string, ...any)) error {
	logs := filepath.Join(opts.Dir, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	var common []string
	if opts.AttestationTime != nil {
		common = append(common, "--attestation-time", opts.AttestationTime().Format(time.RFC3339Nano))
	}
	newProc := func(name string, args ...string) *Proc {
		p := &Proc{Name: name, Args: append(args, common...), Log: filepath.Join(logs, name+".log"), exe: opts.Exec}
		if opts.Wrap != nil {
			p.wrap = opts.Wrap(name)
		}
		if opts.Supervise {
			p.restart = c.supervise(say)
		}
		c.procs = append(c.procs, p)
		return p
	}
	if port0 == 0 {
		// Every port at once: one released early could come back twice.
		var err error
		if c.pool, err = freePorts(ip, len(c.HSMs)+3*len(hostIDs)+1, regionPorts(opts)...); err != nil {
			return err
		}
	}
	shape := sharedShape(runtime.NumCPU(), len(c.HSMs))
	ports := make([]int, len(c.HSMs))
	for i := range ports {
		ports[i] = port0 + i
		if port0 == 0 {
			ports[i] = c.freePort()
		}
	}
	var urls []string
	for i, h := range c.HSMs {
		addr := net.JoinHostPort(ip, strconv.Itoa(ports[i]))
		c.HSMs[i].URL = "http://" + addr
		urls = append(urls, c.HSMs[i].URL)
		args := []string{"hsm", "serve", "--dir", c.HSMDir, "--label", h.TokenLabel, "--listen", addr}
		if opts.Hosts == 0 {
			args = append(args, "--token", c.TokenFile)
		}
		args = append(args, pprofFlag(opts, i)...)
		p := newProc(h.TokenLabel, args...)
		p.env = append(procsEnv(shape.hsmProcs), sysmonEnv()...)
		say("HSM %s (%s): process on %s (log %s)", h.TokenLabel, h.HSMID, addr, p.Log)
		if err := p.Start(); err != nil {
			return err
		}
		// One at a time: SoftHSM processes that start together on one
		// token dir can miss each other's tokens while they read it (and
		// NSS's open every database of the data dir).
		if err := waitListening(c.HSMs[i].URL, p, 30*time.Second); err != nil {
			return err
		}
	}
	if opts.Hosts == 0 {
		return c.useState(c.TokenFile, nil, hostKey)
	}
	hosts, err := c.hostAddrs(opts, ip, port0, hostIDs)
	if err != nil {
		return err
	}
	creds, kmsAddr, err := c.credentials(opts)
	if err != nil {
		return err
	}
	ksArgs, err := keyStoreArgs(c.HSMDir)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	var hostProcs []*Proc
	resumes := fileExists(filepath.Join(opts.Dir, "hosts", hosts[0].ID, "raft.db"))
	for i, hi := range hosts {
		args := []string{"host", "serve", "--id", hi.ID, "--key", hi.KeyFile, "--dir", filepath.Join(opts.Dir, "hosts", hi.ID),
			"--raft", hi.Raft, "--api", hi.API[len("http://"):], "--credentials", filepath.Join(opts.Dir, "credentials.json"),
			"--resync-every", "250ms", "--rotation-interval", rotationFlag(opts.RotationInterval),
			"--hsm-batch-workers", strconv.Itoa(shape.batchWorkers)}
		for _, u := range urls {
			args = append(args, "--hsm", u)
		}
		for _, o := range hosts {
			if o.ID != hi.ID {
				args = append(args, "--peer", o.ID+"="+o.API)
			}
		}
		if opts.PeerRegions != nil {
			args = append(args, "--region-listen", opts.RegionListen[i], "--region-tls-cert", opts.RegionTLS.Cert,
				"--region-tls-key", opts.RegionTLS.Key, "--region-tls-ca", opts.RegionTLS.CA)
			for _, r := range slices.Sorted(maps.Keys(opts.PeerRegions)) {
				args = append(args, "--peer-region", r+"="+strings.Join(opts.PeerRegions[r], ","))
			}
		}
		switch {
		case i == 0 && opts.KMSOnEveryHost:
			kmsAddr = hi.KMS[len("http://"):]
			fallthrough
		case i == 0:
			args = append(args, "--kms-listen", kmsAddr, "--audit-file", filepath.Join(opts.Dir, "audit.jsonl"))
		case opts.KMSOnEveryHost:
			args = append(args, "--kms-listen", hi.KMS[len("http://"):], "--audit-file", filepath.Join(opts.Dir, "audit-"+hi.ID+".jsonl"))
		}
		args = append(args, pprofFlag(opts, len(c.HSMs)+i)...)
		args = append(args, ksArgs...)
		if opts.XKSCAFile != "" {
			args = append(args, "--xks-ca", opts.XKSCAFile)
		}
		if i == 0 {
			args = append(args, "--bootstrap", c.TokenFile)
		} else {
			args = append(args, "--join", hosts[0].API)
		}
		p := newProc(hi.ID, args...)
		p.env = append(procsEnv(shape.hostProcs), sysmonEnv()...)
		hostProcs = append(hostProcs, p)
		how := "bootstraps raft, or resumes it"
		if i > 0 {
			how = "joins " + hosts[0].ID + ", or resumes"
		}
		say("service host %s: process, raft on %s, API on %s (%s; log %s)", hi.ID, hi.Raft, hi.API, how, p.Log)
		if err := p.Start(); err != nil {
			return err
		}
		// A new first host must lead before the others ask it to join; a
		// host that resumes raft state waits for its peers to elect one.
		if i == 0 && !resumes {
			if err := waitHost(hi.API, p, true, 60*time.Second); err != nil {
				return err
			}
		}
	}
	for i, hi := range hosts {
		if err := waitHost(hi.API, hostProcs[i], false, 60*time.Second); err != nil {
			return err
		}
	}
	c.Hosts = hosts
	c.KMSURL, c.EnvFile = "http://"+kmsAddr, filepath.Join(opts.Dir, "env")
	if err := writeEnv(c.EnvFile, creds, c.KMSURL); err != nil {
		return err
	}
	// Every HSM holds the domain's latest state (the hosts deliver it).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		st, err := host.GetStatus(ctx, hosts[0].API)
		if err == nil && st.StateVersion > 0 && len(st.HSMs) == len(urls) && allAt(st) {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("dev: the HSMs did not all reach the domain's state version (last: %v, %v)", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	raw, _, err := host.FetchToken(ctx, hosts[0].API)
	if err != nil {
		return err
	}
	return c.useState("", raw, hostKey)
}

// pprofFlag is the --pprof flag of the n-th process (HSMs first), if
// opts.PprofBase asks for one.
func pprofFlag(opts Options, n int) []string {
	if opts.PprofBase == 0 {
		return nil
	}
	return []string{"--pprof", net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.PprofBase+n))}
}

func allAt(st *host.Status) bool {
	for _, h := range st.HSMs {
		if h.StateVersion != st.StateVersion {
			return false
		}
	}
	return true
}

func rotationFlag(d time.Duration) string {
	if d == 0 {
		d = host.DefaultRotationInterval
	}
	if d < 0 {
		return "0s"
	}
	return d.String()
}

// waitListening waits until url's port accepts connections, failing early
// if p exits.
func waitListening(url string, p *Proc, limit time.Duration) error {
	addr := url[len("http://"):]
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if p != nil && !p.Running() {
			return p.exited()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dev: %s: %s does not accept connections (see %s)", p.Name, addr, p.Log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitHost waits until the host at api answers its status with a domain
// (and, if leader, names itself leader), failing early if p exits.
func waitHost(api string, p *Proc, leader bool, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		st, err := host.GetStatus(ctx, api)
		if err == nil && st.StateVersion > 0 && st.Leader != "" && (!leader || st.Leader == st.ID) {
			return nil
		}
		if !p.Running() {
			return p.exited()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("dev: %s is not ready (see %s): %v", p.Name, p.Log, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The restart pauses of trent dev's supervisor.
const (
	restartMin = 500 * time.Millisecond // the first pause
	restartMax = 10 * time.Second       // the longest
	// restartStable is how long a process must have stayed up for its
	// next restart to count as a first one again: as systemd's and runit's
	// supervisors do, a process that ran well is not held back by the
	// crashes of long ago.
	restartStable = 10 * time.Second
)

// restartBackoff is the pause before restarting a process that exited
// after running for uptime, prev being the pause before its previous
// restart (0 if none): it doubles from restartMin up to restartMax, and
// starts from restartMin again once the process had stayed up for
// restartStable.
func restartBackoff(prev, uptime time.Duration) time.Duration {
	if uptime >= restartStable {
		prev = 0
	}
	return min(max(prev*2, restartMin), restartMax)
}

// supervise returns the restart policy of trent dev: a process that exits
// on its own is started again after a pause (restartBackoff).
func (c *Cluster) supervise(say func(string, ...any)) func(*Proc, error) {
	var mu sync.Mutex
	backoff := map[string]time.Duration{}
	return func(p *Proc, err error) {
		up := p.uptime()
		mu.Lock()
		d := restartBackoff(backoff[p.Name], up)
		backoff[p.Name] = d
		mu.Unlock()
		say("%s exited (%v); restarting in %v (log %s)", p.Name, err, d, p.Log)
		time.AfterFunc(d, func() {
			// Under c.mu, so that Stop (which sets stopping under it
			// first) cannot run between the check and the start.
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.stopping {
				return
			}
			if err := p.Start(); err != nil {
				say("%s: %v", p.Name, err)
			}
		})
	}
}

// Procs are the cluster's processes (Options.Exec): HSM nodes first, then
// service hosts; nil for a cluster in one process.
func (c *Cluster) Procs() []*Proc { return c.procs }

// Proc returns the process named name ("hsm-1", "host-2"), or nil.
func (c *Cluster) Proc(name string) *Proc {
	for _, p := range c.procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// stopProcs stops the hosts, then the HSMs, each with SIGTERM and a grace.
func (c *Cluster) stopProcs() error {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		errs = append(errs, c.procs[i].Stop(10*time.Second))
	}
	return errors.Join(errs...)
}

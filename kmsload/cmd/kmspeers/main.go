// Command kmspeers runs issue 17's side-by-side benchmark (package
// kmsload/peers): Trent as `trent dev` in production shape, local-kms and
// moto, rounds interleaved, and the bound and the floor, in one run; with
// trent and local-kms among the targets it prints issue 17's target
// against the floor (docs/benchmarks.md) after the main table. From the
// checkout:
//
//	go run ./kmsload/cmd/kmspeers               # 3 rounds of 8 s per load and target
//	go run ./kmsload/cmd/kmspeers -duration 3s -loads Encrypt/16
//
// It builds trent, hopfloor and the test binaries of ./hsm/, ./session/,
// ./audit/ and ./host/ (the benchmarks the bound and the floor reuse, each
// run -bound-count times before the rounds and again after) from the
// checkout and installs local-kms at its pinned
// version (into -gobin) before anything else, then re-executes itself in a
// private network namespace (unshare -n, loopback up) so that local-kms,
// which listens on every interface, is reachable only from the load
// generator; where that is not permitted it says so and runs on the
// machine's loopback. There it runs the load generator and the servers on
// every CPU (-cores shared, the default); with -cores split it moves
// itself, the load generator, to the first half of the CPUs and starts
// every server on the rest. The table goes to stdout and to -out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trentkms/trent/kmsload"
	"github.com/trentkms/trent/kmsload/peers"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kmspeers:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "bench/peers", "directory for the table, the raw samples, profiles and logs")
	gobin := flag.String("gobin", "bench/gobin", "where local-kms is installed (GOBIN)")
	rounds := flag.Int("rounds", 3, "rounds of each load on each target")
	duration := flag.Duration("duration", 8*time.Second, "measured time of each load")
	warmUp := flag.Duration("warmup", 2*time.Second, "warm-up of the same load before each measured one")
	targetList := flag.String("targets", "trent,local-kms,moto", "targets, in the order each round visits them (extra rows: trent-in-process, trent dev --in-process, not the production shape; trent-nss, trent dev --hsm-module nss)")
	loadList := flag.String("loads", "Encrypt/16,Decrypt/16,GenerateDataKey/16,Encrypt/1,Decrypt/1,GenerateDataKey/1", "loads: Op/clients, comma-separated")
	boundCount := flag.Int("bound-count", 3, "samples of each part of the bound and the floor, before the rounds and again after (0: measure neither, and no target table)")
	boundTime := flag.Duration("bound-benchtime", time.Second, "benchtime of each sample of the bound and the floor")
	profile := flag.Duration("profile", 0, "if not zero: after the rounds, CPU profiles of Trent's host and HSM processes under -profile-load for this long")
	profileLoad := flag.String("profile-load", "Encrypt/16", "the load the profiles are taken under: Op/clients")
	idleTime := flag.Duration("idle", 5*time.Second, "measure each server's CPU at rest for this long before the rounds (0: not)")
	python := flag.String("python", "python3", "the Python with moto installed")
	netns := flag.String("netns", "auto", "auto: run in a private network namespace (unshare -n) if permitted; off: never")
	keep := flag.Bool("keep", false, "keep the servers' data dirs and logs (the audit trail grows by ~100 MB a minute)")
	trentBin := flag.String("trent", "", "trent binary (default: built from this checkout)")
	localKMS := flag.String("local-kms", "", "local-kms binary (default: go install at the pinned version)")
	hsmTest := flag.String("hsm-test", "", "test binary of ./hsm/ (default: built)")
	sessionTest := flag.String("session-test", "", "test binary of ./session/ (default: built)")
	auditTest := flag.String("audit-test", "", "test binary of ./audit/ (default: built)")
	hostTest := flag.String("host-test", "", "test binary of ./host/ (default: built)")
	hopfloor := flag.String("hopfloor", "", "hopfloor binary (default: built from ./kmsload/cmd/hopfloor)")
	inNetns := flag.Bool("in-netns", false, "(internal) already re-executed under unshare")
	coreFlag := flag.String("cores", "shared", peers.CoresUsage)
	flag.Parse()

	targets := strings.Split(*targetList, ",")
	loads, err := parseLoads(*loadList)
	if err != nil {
		return err
	}
	pl, err := parseLoads(*profileLoad)
	if err != nil {
		return fmt.Errorf("-profile-load: %w", err)
	}
	if len(pl) != 1 {
		return fmt.Errorf("-profile-load: one load")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(*out, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	// Everything that needs the network or the toolchain happens here,
	// before entering the namespace.
	if *trentBin == "" && slices.ContainsFunc(targets, func(t string) bool { return strings.HasPrefix(t, peers.Trent) }) {
		fmt.Fprintln(os.Stderr, "kmspeers: building trent from the checkout")
		if *trentBin, err = peers.GoBuild(filepath.Join(bin, "trent"), "./cmd/trent"); err != nil {
			return err
		}
	}
	if *localKMS == "" && slices.Contains(targets, peers.LocalKMS) {
		fmt.Fprintf(os.Stderr, "kmspeers: installing local-kms@%s into %s\n", peers.LocalKMSVersion, *gobin)
		if *localKMS, err = peers.InstallLocalKMS(*gobin); err != nil {
			return err
		}
	}
	if *boundCount > 0 {
		if *hsmTest == "" {
			if *hsmTest, err = peers.GoTestBinary(filepath.Join(bin, "hsm.test"), "./hsm/"); err != nil {
				return err
			}
		}
		if *sessionTest == "" {
			if *sessionTest, err = peers.GoTestBinary(filepath.Join(bin, "session.test"), "./session/"); err != nil {
				return err
			}
		}
		if *auditTest == "" {
			if *auditTest, err = peers.GoTestBinary(filepath.Join(bin, "audit.test"), "./audit/"); err != nil {
				return err
			}
		}
		if *hostTest == "" {
			if *hostTest, err = peers.GoTestBinary(filepath.Join(bin, "host.test"), "./host/"); err != nil {
				return err
			}
		}
		if *hopfloor == "" {
			if *hopfloor, err = peers.GoBuild(filepath.Join(bin, "hopfloor"), "./kmsload/cmd/hopfloor"); err != nil {
				return err
			}
		}
	}

	netnote := "a private network namespace (unshare -n): local-kms reachable only from the load generator"
	switch {
	case *inNetns:
		if err := peers.LoopbackUp(); err != nil {
			return err
		}
	case peers.Isolated():
	case *netns == "auto":
		self, err := os.Executable()
		if err != nil {
			return err
		}
		argv := append([]string{self}, os.Args[1:]...)
		argv = append(argv, "-in-netns", "-trent="+*trentBin, "-local-kms="+*localKMS, "-hsm-test="+*hsmTest, "-session-test="+*sessionTest,
			"-audit-test="+*auditTest, "-host-test="+*hostTest, "-hopfloor="+*hopfloor)
		cmd, err := peers.UnshareCommand(argv)
		if err == nil {
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			signal.Ignore(syscall.SIGINT) // the child handles it
			err := cmd.Run()
			var ee interface{ ExitCode() int }
			if errors.As(err, &ee) {
				os.Exit(ee.ExitCode())
			}
			return err
		}
		fmt.Fprintf(os.Stderr, "kmspeers: WARNING: %v; running on this machine's loopback: local-kms listens on EVERY interface of this machine while it runs\n", err)
		netnote = "the machine's own network (no private namespace: " + err.Error() + "); local-kms listened on every interface"
	default:
		fmt.Fprintln(os.Stderr, "kmspeers: WARNING: -netns off: local-kms listens on EVERY interface of this machine while it runs")
		netnote = "the machine's own network (-netns off); local-kms listened on every interface"
	}

	// In the process that runs the load (under unshare, when it re-ran
	// itself there), before any server starts.
	cores, err := peers.ParseCores(*coreFlag)
	if err != nil {
		return err
	}
	if err := cores.Apply(); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stamp := time.Now().UTC().Format("20060102T150405Z")
	work := filepath.Join(*out, "work-"+stamp)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(work)
	}
	load0 := peers.LoadAvg()
	started := time.Now()
	var idle map[string]float64

	var ts []*peers.Target
	defer func() {
		for i := len(ts) - 1; i >= 0; i-- {
			ts[i].Stop(30 * time.Second)
		}
	}()
	pprofBase := 0
	if *profile > 0 {
		if pprofBase, err = peers.FreePortRange(4); err != nil {
			return err
		}
	}
	for _, name := range targets {
		fmt.Fprintf(os.Stderr, "kmspeers: starting %s\n", name)
		var t *peers.Target
		switch name {
		case peers.Trent:
			t, err = peers.StartTrent(*trentBin, work, pprofBase)
		case peers.TrentInProcess:
			t, err = peers.StartTrentInProcess(*trentBin, work)
		case peers.TrentNSS:
			t, err = peers.StartTrentNSS(*trentBin, work)
		case peers.LocalKMS:
			t, err = peers.StartLocalKMS(*localKMS, work)
		case peers.Moto:
			t, err = peers.StartMoto(*python, work)
		default:
			err = fmt.Errorf("unknown target %q", name)
		}
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}

	if *idleTime > 0 {
		fmt.Fprintf(os.Stderr, "kmspeers: measuring each server's CPU at rest for %v\n", *idleTime)
		if idle, err = peers.IdleCPU(ts, *idleTime); err != nil {
			return err
		}
	}
	bound := peers.Bound{}
	fc := peers.FloorConfig{BoundConfig: peers.BoundConfig{HSMTest: *hsmTest, SessionTest: *sessionTest, Count: *boundCount, Benchtime: *boundTime},
		AuditTest: *auditTest, HostTest: *hostTest, Hopfloor: *hopfloor}
	if *boundCount > 0 {
		fmt.Fprintln(os.Stderr, "kmspeers: measuring the bound and the floor")
		if err := peers.MeasureFloor(fc, bound); err != nil {
			return err
		}
	}
	raw, err := os.Create(filepath.Join(*out, "raw-"+stamp+".jsonl"))
	if err != nil {
		return err
	}
	defer raw.Close()
	samples, err := peers.Run(ctx, peers.Config{Targets: ts, Loads: loads, Rounds: *rounds, Duration: *duration, WarmUp: *warmUp,
		Progress: os.Stderr, Raw: raw})
	if err != nil {
		return err
	}
	if *boundCount > 0 {
		fmt.Fprintln(os.Stderr, "kmspeers: measuring the bound and the floor again")
		if err := peers.MeasureFloor(fc, bound); err != nil {
			return err
		}
	}
	var profiles []string
	var profLoad *kmsload.Result
	if *profile > 0 && ts[0].Name == peers.Trent {
		fmt.Fprintf(os.Stderr, "kmspeers: profiling Trent's processes for %v under %s\n", *profile, *profileLoad)
		if profiles, profLoad, err = peers.Profile(ctx, ts[0], pl[0], *profile, *out); err != nil {
			return err
		}
	}
	load1 := peers.LoadAvg()

	var w strings.Builder
	fmt.Fprintf(&w, "# Side by side with local-kms (issue 17), %s\n\n", stamp)
	fmt.Fprintf(&w, "%d rounds of %v per load and target after a %v warm-up each, interleaved (%s); SigV4-signing kmsload clients (signer) in the harness's process; %s; servers in %s. local-kms %s; trent from this checkout as `trent dev` (3 HSM processes, 1 host process, audit trail on); moto as python3 -m moto.server. Load average %s at the start, %s at the end; %v in all.\n\n",
		*rounds, *duration, *warmUp, strings.Join(targets, ", "), cores, netnote, peers.LocalKMSVersion, load0, load1, time.Since(started).Round(time.Second))
	fmt.Fprintf(&w, "Medians of the rounds (CPU/req: the server's CPU time per request, every process of it; trent ÷ local-kms on CPU/req: lower is better):\n\n")
	w.WriteString(peers.Table(samples, loads, targets, bound))
	if idle != nil {
		w.WriteString("\nEach server's CPU at rest (no load, measured before the rounds; it is inside every round's CPU per request):")
		for _, t := range targets {
			fmt.Fprintf(&w, " %s %.1f ms/s;", t, idle[t]*1e3)
		}
		w.WriteString("\n")
	}
	if *boundCount > 0 && slices.Contains(targets, peers.Trent) && slices.Contains(targets, peers.LocalKMS) {
		predicted := "(local-kms CPU + its client CPU) ÷ (target CPU + Trent's client CPU), the servers sharing the cores with the load generator"
		if cores.Split() {
			predicted = "local-kms CPU ÷ target CPU, the servers on cores of their own"
		}
		fmt.Fprintf(&w, "\nIssue 17's target against the design's floor (docs/benchmarks.md): at more than one client, CPU per request ≤ local-kms's + the floor (%.1f µs, measured in this run: the table of the floor below), and requests per second, as a ratio to local-kms's, ≥ what the target CPU allows, %s; at 1 client, p50 ≤ local-kms's + the serial extra (%.1f µs). Medians of the rounds:\n\n",
			bound.Floor()/1e3, predicted, bound.SerialExtra()/1e3)
		w.WriteString(peers.TargetTable(peers.TargetRows(samples, loads, bound, cores.Split())))
	}
	w.WriteString("\nEvery round:\n\n")
	w.WriteString(peers.RoundsTable(samples, loads, targets))
	if *boundCount > 0 {
		w.WriteString("\nThe bound (one goroutine, GOMAXPROCS 1 for the reused go test benchmarks):\n\n")
		w.WriteString(peers.BoundTable(bound))
		w.WriteString("\nThe floor: the extra work Trent's design requires and local-kms does none of, every part measured beside the bound, before the rounds and after (go test benchmarks at GOMAXPROCS 1; hopfloor between two processes over TCP loopback, no batching):\n\n")
		w.WriteString(peers.FloorTable(bound))
	}
	if profLoad != nil {
		fmt.Fprintf(&w, "\nProfiles of %v under %s: %.0f req/s, so about %.0f requests profiled (scripts/profile-groups.sh %s PROFILE scripts/profile-groups/host.txt or hsm.txt):\n\n",
			*profile, *profileLoad, profLoad.Throughput, profLoad.Throughput*profile.Seconds(), *trentBin)
		for _, p := range profiles {
			fmt.Fprintf(&w, "- %s\n", p)
		}
	}
	table := w.String()
	fmt.Print(table)
	if err := os.WriteFile(filepath.Join(*out, "table-"+stamp+".md"), []byte(table), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*out, "table.md"), []byte(table), 0o644)
}

func parseLoads(s string) ([]peers.Load, error) {
	var ls []peers.Load
	for _, f := range strings.Split(s, ",") {
		op, n, ok := strings.Cut(f, "/")
		c, err := strconv.Atoi(n)
		if !ok || err != nil || c < 1 {
			return nil, fmt.Errorf("load %q: want Op/clients", f)
		}
		switch op {
		case kmsload.OpEncrypt, kmsload.OpDecrypt, kmsload.OpGenerateDataKey:
		default:
			return nil, fmt.Errorf("load %q: op is Encrypt, Decrypt or GenerateDataKey", f)
		}
		ls = append(ls, peers.Load{Op: op, Clients: c})
	}
	return ls, nil
}

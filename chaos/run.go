package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/trentkms/trent/dev"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/kms/kmsapi"
)

// Config configures a Run.
type Config struct {
	Exec string // the trent binary
	Dir  string // the cluster's data dir and the reports go under it
	// Duration is how long the workload runs (the fault is injected after
	// a quarter of it); Hold is how long the fault lasts.
	Duration, Hold time.Duration
	Clients        int
	// Network: give each host a network namespace (NewNetwork; needs a
	// process started by Reexec). Without it the hosts share loopback and
	// a scenario that needs the network is skipped.
	Network bool
	// NoNetworkReason says why Network is off (printed when a scenario is
	// skipped).
	NoNetworkReason string
	Log             func(format string, args ...any)
}

// Report is one scenario's run.
type Report struct {
	Scenario string    `json:"scenario"`
	About    string    `json:"about"`
	Started  time.Time `json:"started"`
	// Skipped says why the scenario did not run.
	Skipped string `json:"skipped,omitempty"`
	// Error is why the run stopped early (the cluster did not start, a
	// fault could not be injected).
	Error  string  `json:"error,omitempty"`
	Result *Result `json:"result,omitempty"`
	// Ciphertexts is the number of acknowledged ciphertexts verified.
	Ciphertexts int `json:"ciphertexts"`
	// Converged: every HSM reached the latest state version (HSMVersions,
	// per host's view) after healing.
	Converged    bool                `json:"converged"`
	StateVersion uint64              `json:"state_version"`
	HSMVersions  map[string][]uint64 `json:"hsm_versions,omitempty"`
	Seconds      float64             `json:"seconds"`
	// FaultAt and HealedAt are when the fault began and was healed, in
	// seconds since the history began.
	FaultAt  float64 `json:"fault_at"`
	HealedAt float64 `json:"healed_at"`
	// MisleadingBeforeFault counts the misleading answers given before
	// the fault (in steady state); LastMisleadingAfterHeal is how long
	// after the heal the last one was asked for (0 if none after).
	MisleadingBeforeFault   int     `json:"misleading_before_fault"`
	LastMisleadingAfterHeal float64 `json:"last_misleading_after_heal"`
	History                 string  `json:"history,omitempty"`
	View                    string  `json:"view,omitempty"` // porcupine's HTML
}

// Passed reports whether the run found nothing wrong.
func (r *Report) Passed() bool {
	return r.Skipped != "" || (r.Error == "" && r.Result != nil && r.Result.Passed() && r.Converged)
}

// Run runs one scenario on a fresh cluster in cfg.Dir and writes its
// report (report.json) there, and, if it found anything wrong, the
// history (history.json) and porcupine's view of it (history.html).
func Run(s Scenario, cfg Config) *Report {
	r := &Report{Scenario: s.Name, About: s.About, Started: time.Now()}
	defer func() {
		r.Seconds = time.Since(r.Started).Seconds()
		data, _ := json.MarshalIndent(r, "", "  ")
		os.WriteFile(filepath.Join(cfg.Dir, "report.json"), data, 0o644)
	}()
	if s.NeedsNetwork && !cfg.Network {
		r.Skipped = "needs network namespaces: " + cfg.NoNetworkReason
		return r
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	// A fresh cluster: an earlier run's would be resumed.
	for _, f := range []string{"cluster", "history.json", "history.html"} {
		os.RemoveAll(filepath.Join(cfg.Dir, f))
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		r.Error = err.Error()
		return r
	}
	hostIDs := []string{"host-1", "host-2", "host-3"}
	opts := dev.Options{Dir: filepath.Join(cfg.Dir, "cluster"), HSMs: 3, Hosts: 3, Listen: "127.0.0.1:0", KMSListen: "127.0.0.1:0",
		RotationInterval: -1, Exec: cfg.Exec, KMSOnEveryHost: true}
	e := &Env{Log: cfg.Log}
	if cfg.Network {
		n, err := NewNetwork(hostIDs)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		defer n.Close()
		e.Network = n
		opts.Listen, opts.KMSListen = BridgeIP+":0", BridgeIP+":0"
		opts.HostIPs, opts.Wrap = n.HostIPs(), n.Wrap
	}
	e.Opts = opts
	cfg.Log("%s: starting the cluster in %s", s.Name, opts.Dir)
	c, err := dev.Start(opts, nil)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	e.cluster = c
	defer func() { e.Cluster().Stop() }()

	creds, err := kmsapi.ReadCredentials(filepath.Join(opts.Dir, "credentials.json"))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	cr := creds.Credentials[0]
	w := &Workload{History: NewHistory(), Clients: cfg.Clients, Region: creds.Region, Account: cr.AccountID,
		Creds: aws.Credentials{AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.SecretAccessKey}}
	for _, h := range c.Hosts {
		w.Endpoints = append(w.Endpoints, Endpoint{Host: h.ID, URL: h.KMS})
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	start := time.Now()
	sleep(context.Background(), cfg.Duration/4)
	cfg.Log("%s: fault: %s", s.Name, s.About)
	r.FaultAt = w.History.Now().Seconds()
	if err := s.Fault(context.Background(), e, cfg.Hold); err != nil {
		r.Error = "fault: " + err.Error()
		cfg.Log("%s: %v", s.Name, err)
	}
	r.HealedAt = w.History.Now().Seconds()
	sleep(context.Background(), cfg.Duration-time.Since(start))
	stop()
	<-done
	cfg.Log("%s: workload stopped (%d operations); verifying on every host", s.Name, len(w.History.Ops()))
	w.Verify(45 * time.Second)
	r.Ciphertexts = len(w.History.Ciphertexts())
	r.Converged, r.StateVersion, r.HSMVersions = converge(e.Cluster(), 60*time.Second)
	r.Result = Check(w.History.Ops(), 60*time.Second)
	for _, m := range r.Result.Misleading {
		at := m.Op.Call.Seconds()
		if at < r.FaultAt {
			r.MisleadingBeforeFault++
		}
		if at > r.HealedAt {
			r.LastMisleadingAfterHeal = max(r.LastMisleadingAfterHeal, at-r.HealedAt)
		}
	}
	if !r.Passed() {
		r.History = filepath.Join(cfg.Dir, "history.json")
		if err := w.History.WriteFile(r.History); err != nil {
			cfg.Log("%s: %v", s.Name, err)
		}
		r.View = filepath.Join(cfg.Dir, "history.html")
		if err := r.Result.Visualize(r.View); err != nil {
			cfg.Log("%s: %v", s.Name, err)
		}
	}
	return r
}

// converge waits until every host sees every HSM at the latest state
// version any host reports.
func converge(c *dev.Cluster, limit time.Duration) (bool, uint64, map[string][]uint64) {
	deadline := time.Now().Add(limit)
	for {
		var latest uint64
		seen := map[string][]uint64{}
		ok := true
		for _, h := range c.Hosts {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := host.GetStatus(ctx, h.API)
			cancel()
			if err != nil {
				ok = false
				continue
			}
			latest = max(latest, st.StateVersion)
			for _, hs := range st.HSMs {
				seen[h.ID] = append(seen[h.ID], hs.StateVersion)
			}
			if len(st.HSMs) != len(c.HSMs) {
				ok = false
			}
		}
		for _, vs := range seen {
			for _, v := range vs {
				ok = ok && v == latest
			}
		}
		if ok || time.Now().After(deadline) {
			return ok, latest, seen
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Print writes a table of reports, then up to three examples of each
// report's misleading answers and lost writes. The column pre/+heal gives
// the misleading answers given before the fault, and how long after the
// heal the last one came; -mislead is the linearizability verdict without
// the misleading answers ("no": successful reads were stale too).
func Print(w io.Writer, reports []*Report) {
	fmt.Fprintf(w, "%-24s %6s %6s %5s %10s %12s %9s %15s %6s %8s %9s\n", "scenario", "ops", "acked", "lost", "misleading", "(pre/+heal)", "retryable", "window p50/max", "linear", "-mislead", "converged")
	for _, r := range reports {
		switch {
		case r.Skipped != "":
			fmt.Fprintf(w, "%-24s skipped: %s\n", r.Scenario, r.Skipped)
			continue
		case r.Result == nil:
			fmt.Fprintf(w, "%-24s error: %s\n", r.Scenario, r.Error)
			continue
		}
		x := r.Result
		fmt.Fprintf(w, "%-24s %6d %6d %5d %10d %12s %9d %15s %6s %8s %9v\n", r.Scenario, x.Operations, x.Acknowledged, len(x.Lost), len(x.Misleading),
			fmt.Sprintf("%d/%.1fs", r.MisleadingBeforeFault, r.LastMisleadingAfterHeal), x.Retryable,
			fmt.Sprintf("%.1fs/%.1fs", x.WindowP50.Seconds(), x.WindowMax.Seconds()), x.Linearizable, x.StaleReads, r.Converged)
	}
	for _, r := range reports {
		if r.Result == nil {
			continue
		}
		if r.Error != "" {
			fmt.Fprintf(w, "%s: error: %s\n", r.Scenario, r.Error)
		}
		if len(r.Result.Misleading) > 0 {
			counts := map[string]int{}
			for _, m := range r.Result.Misleading {
				counts[string(m.Op.Kind)+" "+m.Op.Outcome]++
			}
			var parts []string
			for k, n := range counts {
				parts = append(parts, fmt.Sprintf("%s: %d", k, n))
			}
			slices.Sort(parts)
			fmt.Fprintf(w, "%s: misleading answers: %s\n", r.Scenario, strings.Join(parts, ", "))
			for _, m := range r.Result.Misleading[:min(3, len(r.Result.Misleading))] {
				fmt.Fprintf(w, "  %s %s on %s at %.2fs (%s): %s\n", m.Op.Kind, m.Op.Outcome, m.Op.Host, m.Op.Call.Seconds(), m.Why, m.Op.Message)
			}
		}
		for _, l := range r.Result.Lost[:min(3, len(r.Result.Lost))] {
			fmt.Fprintf(w, "%s: lost: %s %s%s on %s: %s\n", r.Scenario, l.Kind, l.Key, l.Alias, l.Host, l.Outcome)
		}
		if r.History != "" {
			fmt.Fprintf(w, "%s: history %s, view %s\n", r.Scenario, r.History, r.View)
		}
	}
}

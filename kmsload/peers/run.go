package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/trentkms/trent/kmsload"
)

// Load is one kind of load: an operation at a number of clients.
type Load struct {
	Op      string // kmsload.OpEncrypt, OpDecrypt or OpGenerateDataKey
	Clients int
}

// DefaultLoads are issue 17's loads: the three operations at 16 clients,
// then at 1 client (for p50).
var DefaultLoads = []Load{
	{kmsload.OpEncrypt, 16}, {kmsload.OpDecrypt, 16}, {kmsload.OpGenerateDataKey, 16},
	{kmsload.OpEncrypt, 1}, {kmsload.OpDecrypt, 1}, {kmsload.OpGenerateDataKey, 1},
}

// Config configures Run.
type Config struct {
	Targets  []*Target // visited in this order in every round
	Loads    []Load
	Rounds   int
	Duration time.Duration // of each measured load
	WarmUp   time.Duration // of the same load just before it, unmeasured
	Progress io.Writer     // a line per round (nil: none)
	Raw      io.Writer     // a JSON line per Sample (nil: none)
}

// Sample is one measured load on one target.
type Sample struct {
	Target     string        `json:"target"`
	Op         string        `json:"op"`
	Clients    int           `json:"clients"`
	Round      int           `json:"round"`
	Start      time.Time     `json:"start"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	Requests   int64         `json:"requests"` // answered, successes and errors
	Errors     int64         `json:"errors"`
	ErrorTexts []string      `json:"error_texts,omitempty"`
	ReqPerSec  float64       `json:"req_per_s"` // successful requests per second
	P50        time.Duration `json:"p50_ns"`
	P99        time.Duration `json:"p99_ns"`
	ServerCPU  time.Duration `json:"server_cpu_ns"` // the server's process tree
	Procs      int           `json:"server_procs"`
	ClientCPU  time.Duration `json:"client_cpu_ns"` // this process (the load generator)
	// MachineCPU is the busy CPU time of the whole machine during the
	// load (/proc/stat), Steal the time the hypervisor took: what is
	// neither server nor client was other work on the machine.
	MachineCPU time.Duration `json:"machine_cpu_ns"`
	Steal      time.Duration `json:"steal_ns"`
	// TooManyErrors: more errors than the target tolerates.
	TooManyErrors bool `json:"too_many_errors,omitempty"`
}

// OtherCores is how many cores' worth of CPU went to neither the server
// nor the load generator during the load: other work on the machine.
func (s Sample) OtherCores() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return max(0, (s.MachineCPU-s.ServerCPU-s.ClientCPU).Seconds()/s.Elapsed.Seconds())
}

// ServerCPUPerReq is the server's CPU time per answered request.
func (s Sample) ServerCPUPerReq() time.Duration { return perReq(s.ServerCPU, s.Requests) }

// ClientCPUPerReq is the load generator's CPU time per answered request.
func (s Sample) ClientCPUPerReq() time.Duration { return perReq(s.ClientCPU, s.Requests) }

func perReq(d time.Duration, n int64) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}

// Run runs cfg's rounds and returns every sample. A load whose errors
// exceed what its target tolerates (none for Trent and local-kms) is
// recorded with TooManyErrors, not stopped: the table reports it. Run
// returns an error only if a target cannot be measured at all.
func Run(ctx context.Context, cfg Config) ([]Sample, error) {
	var out []Sample
	for _, l := range cfg.Loads {
		for round := 1; round <= cfg.Rounds; round++ {
			for _, t := range cfg.Targets {
				s, err := measure(ctx, t, l, cfg)
				if err != nil {
					return out, err
				}
				s.Round = round
				out = append(out, s)
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "%s %s/%d round %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms, server CPU %.1f µs/req (%d procs), client %.1f µs/req, %d errors; other work on the machine %.2f cores, steal %.2f\n",
						s.Target, s.Op, s.Clients, round, s.ReqPerSec, ms(s.P50), ms(s.P99), us(s.ServerCPUPerReq()), s.Procs, us(s.ClientCPUPerReq()), s.Errors,
						s.OtherCores(), s.Steal.Seconds()/s.Elapsed.Seconds())
				}
				if cfg.Raw != nil {
					line, _ := json.Marshal(s)
					fmt.Fprintf(cfg.Raw, "%s\n", line)
				}
			}
		}
	}
	return out, nil
}

func measure(ctx context.Context, t *Target, l Load, cfg Config) (Sample, error) {
	lc := t.Load
	lc.Op, lc.Clients = l.Op, l.Clients
	lc.Client = kmsload.ClientSigner // SigV4 on every request
	lc.EncryptionContext = map[string]string{"bench": "kms"}
	if cfg.WarmUp > 0 {
		w := lc
		w.Duration = cfg.WarmUp
		if _, err := kmsload.Run(ctx, w); err != nil {
			return Sample{}, fmt.Errorf("peers: %s: warm-up: %w", t.Name, err)
		}
	}
	lc.Duration = cfg.Duration
	cpu0, _, err := t.CPU()
	if err != nil {
		return Sample{}, err
	}
	self0 := selfCPU()
	busy0, steal0 := machineCPU()
	start := time.Now()
	r, err := kmsload.Run(ctx, lc)
	if err != nil {
		return Sample{}, fmt.Errorf("peers: %s: %w", t.Name, err)
	}
	self1 := selfCPU()
	busy1, steal1 := machineCPU()
	cpu1, procs, err := t.CPU()
	if err != nil {
		return Sample{}, err
	}
	n := r.Ops + r.Errors
	return Sample{
		Target: t.Name, Op: l.Op, Clients: l.Clients, Start: start, Elapsed: r.Elapsed,
		Requests: n, Errors: r.Errors, ErrorTexts: r.ErrorTexts, ReqPerSec: r.Throughput,
		P50: r.P50, P99: r.P99, ServerCPU: cpu1 - cpu0, Procs: procs, ClientCPU: self1 - self0,
		MachineCPU: busy1 - busy0, Steal: steal1 - steal0,
		TooManyErrors: float64(r.Errors) > t.maxErrors*float64(n),
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
func us(d time.Duration) float64 { return float64(d) / 1e3 }

// cell gathers one target's samples of one load.
type cell struct {
	reqs, cpu, p50, p99 []float64
	errs                int64
	bad                 int
}

func cells(samples []Sample) map[string]*cell {
	m := map[string]*cell{}
	for _, s := range samples {
		k := key(s.Target, Load{s.Op, s.Clients})
		c := m[k]
		if c == nil {
			c = &cell{}
			m[k] = c
		}
		c.reqs = append(c.reqs, s.ReqPerSec)
		c.cpu = append(c.cpu, us(s.ServerCPUPerReq()))
		c.p50 = append(c.p50, ms(s.P50))
		c.p99 = append(c.p99, ms(s.P99))
		c.errs += s.Errors
		if s.TooManyErrors {
			c.bad++
		}
	}
	return m
}

func key(target string, l Load) string { return fmt.Sprintf("%s %s %d", target, l.Op, l.Clients) }

// Table is the markdown summary: medians of the rounds for each load and
// target, the ratios Trent/local-kms on requests per second and on CPU
// per request, and Trent's CPU per request as a multiple of the bound.
func Table(samples []Sample, loads []Load, targets []string, b Bound) string {
	m := cells(samples)
	var w strings.Builder
	has := func(t string) bool {
		for _, x := range targets {
			if x == t {
				return true
			}
		}
		return false
	}
	fmt.Fprintf(&w, "| operation | clients |")
	for _, t := range targets {
		fmt.Fprintf(&w, " %s req/s |", t)
	}
	lk := has(Trent) && has(LocalKMS)
	if lk {
		fmt.Fprintf(&w, " trent ÷ local-kms, req/s |")
	}
	for _, t := range targets {
		fmt.Fprintf(&w, " %s CPU/req |", t)
	}
	if lk {
		fmt.Fprintf(&w, " trent ÷ local-kms, CPU/req |")
	}
	for _, t := range targets {
		fmt.Fprintf(&w, " %s p50 / p99 |", t)
	}
	fmt.Fprintf(&w, " errors |")
	if has(Trent) && b != nil {
		fmt.Fprintf(&w, " trent CPU/req ÷ bound |")
	}
	w.WriteString("\n|" + strings.Repeat(" --- |", strings.Count(firstLine(w.String()), "|")-1) + "\n")
	for _, l := range loads {
		fmt.Fprintf(&w, "| %s | %d |", l.Op, l.Clients)
		get := func(t string) *cell {
			if c := m[key(t, l)]; c != nil {
				return c
			}
			return &cell{}
		}
		for _, t := range targets {
			fmt.Fprintf(&w, " %s |", comma(median(get(t).reqs)))
		}
		if lk {
			fmt.Fprintf(&w, " %.2f× |", ratio(median(get(Trent).reqs), median(get(LocalKMS).reqs)))
		}
		for _, t := range targets {
			fmt.Fprintf(&w, " %.0f µs |", median(get(t).cpu))
		}
		if lk {
			fmt.Fprintf(&w, " %.2f× |", ratio(median(get(Trent).cpu), median(get(LocalKMS).cpu)))
		}
		for _, t := range targets {
			fmt.Fprintf(&w, " %.2f / %.2f ms |", median(get(t).p50), median(get(t).p99))
		}
		var errs []string
		for _, t := range targets {
			c := get(t)
			e := fmt.Sprintf("%d", c.errs)
			if c.bad > 0 {
				e += fmt.Sprintf(" (%d rounds over the limit)", c.bad)
			}
			errs = append(errs, e)
		}
		fmt.Fprintf(&w, " %s |", strings.Join(errs, " / "))
		if has(Trent) && b != nil {
			fmt.Fprintf(&w, " %.1f× |", ratio(median(get(Trent).cpu)*1e3, b.Total()))
		}
		w.WriteString("\n")
	}
	return w.String()
}

// RoundsTable lists every round's requests per second and server CPU per
// request, target by target.
func RoundsTable(samples []Sample, loads []Load, targets []string) string {
	m := map[string][]Sample{}
	for _, s := range samples {
		k := key(s.Target, Load{s.Op, s.Clients})
		m[k] = append(m[k], s)
	}
	var w strings.Builder
	w.WriteString("| operation | clients | target | req/s, each round | server CPU per request, each round | p99, each round | errors | other work on the machine (cores), each round |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, l := range loads {
		for _, t := range targets {
			ss := m[key(t, l)]
			if len(ss) == 0 {
				continue
			}
			var r, c, p, o []string
			var e int64
			for _, s := range ss {
				r = append(r, comma(s.ReqPerSec))
				c = append(c, fmt.Sprintf("%.0f µs", us(s.ServerCPUPerReq())))
				p = append(p, fmt.Sprintf("%.2f ms", ms(s.P99)))
				o = append(o, fmt.Sprintf("%.2f", s.OtherCores()))
				e += s.Errors
			}
			fmt.Fprintf(&w, "| %s | %d | %s | %s | %s | %s | %d | %s |\n", l.Op, l.Clients, t,
				strings.Join(r, " · "), strings.Join(c, " · "), strings.Join(p, " · "), e, strings.Join(o, " · "))
		}
	}
	return w.String()
}

// BoundTable lists the bound's primitives, their medians and the total.
func BoundTable(b Bound) string {
	var w strings.Builder
	w.WriteString("| primitive (one goroutine) | median | samples |\n| --- | --- | --- |\n")
	for _, p := range Primitives {
		var s []string
		for _, v := range b[p] {
			s = append(s, fmt.Sprintf("%.2f", v/1e3))
		}
		fmt.Fprintf(&w, "| %s | %.2f µs | %s |\n", p, b.Median(p)/1e3, strings.Join(s, " · "))
	}
	fmt.Fprintf(&w, "| **the bound (sum of the medians)** | **%.2f µs** | |\n", b.Total()/1e3)
	return w.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// comma formats a rate with thousands separators: 12,345.
func comma(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// IdleCPU is each target's CPU at rest, in cores (CPU seconds per
// second), measured over d with no load: background work (raft
// heartbeats, token resync, timers) that every round's CPU per request
// includes.
func IdleCPU(targets []*Target, d time.Duration) (map[string]float64, error) {
	before := map[string]time.Duration{}
	for _, t := range targets {
		c, _, err := t.CPU()
		if err != nil {
			return nil, err
		}
		before[t.Name] = c
	}
	start := time.Now()
	time.Sleep(d)
	out := map[string]float64{}
	for _, t := range targets {
		c, _, err := t.CPU()
		if err != nil {
			return nil, err
		}
		out[t.Name] = (c - before[t.Name]).Seconds() / time.Since(start).Seconds()
	}
	return out, nil
}

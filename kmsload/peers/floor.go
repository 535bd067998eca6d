package peers

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The floor's parts beyond the bound's primitives, by name in a Bound.
const (
	PartAuditRedact   = "audit record: redaction of the request"
	PartAuditWrite    = "audit record: encoding and write(2) of the line"
	PartBarrier       = "read barrier on one host, 16 readers: CPU per barrier"
	PartBarrierSerial = "read barrier on one host, 1 reader: time per barrier"
	PartHop           = "bare process hop, 16 callers: CPU of both processes per round trip"
	PartHopSerial     = "bare process hop, 1 caller: time per round trip"
)

// FloorParts are the parts of the floor: the CPU per request of the work
// Trent's design requires and local-kms does none of. The bound's AES-GCM
// is not among them: local-kms seals with AES-GCM too.
var FloorParts = []string{PrimSigV4, PrimTokenMAC, PrimEnvelope, PartAuditRedact, PartAuditWrite, PartBarrier, PartHop}

// SerialParts are the parts of the serial extra: the time the same extra
// work adds to one request when there is one client, the hop and the
// barrier taken at 1 caller.
var SerialParts = []string{PartHopSerial, PartBarrierSerial, PrimTokenMAC, PrimEnvelope, PrimSigV4, PartAuditRedact, PartAuditWrite}

// partSource says how each primitive and part is measured.
var partSource = map[string]string{
	PrimSigV4:         "this package, testing.Benchmark",
	PrimTokenMAC:      "hsm BenchmarkHMAC64/impl=backend, ns/op",
	PrimGCM:           "this package, testing.Benchmark",
	PrimEnvelope:      "session BenchmarkEnvelope, ns/op",
	PartAuditRedact:   "audit BenchmarkEvent/Redact, ns/op",
	PartAuditWrite:    "audit BenchmarkEvent/Write, ns/op",
	PartBarrier:       "host BenchmarkReadBarrierOneHost/parallel16, cpu-ns/op",
	PartBarrierSerial: "host BenchmarkReadBarrierOneHost/serial, ns/op",
	PartHop:           "hopfloor -callers 16, µs of CPU per round trip",
	PartHopSerial:     "hopfloor -callers 1, µs of time per round trip",
}

// Floor is the sum of the medians of FloorParts, in ns of CPU per
// request (0 if any part is missing).
func (b Bound) Floor() float64 { return b.sum(FloorParts) }

// SerialExtra is the sum of the medians of SerialParts, in ns of time
// per request at 1 client (0 if any part is missing).
func (b Bound) SerialExtra() float64 { return b.sum(SerialParts) }

func (b Bound) sum(parts []string) float64 {
	var t float64
	for _, p := range parts {
		if len(b[p]) == 0 {
			return 0
		}
		t += b.Median(p)
	}
	return t
}

// FloorConfig says where the binaries of the floor's benchmarks are.
type FloorConfig struct {
	BoundConfig
	AuditTest string // go test -c ./audit/ (BenchmarkEvent)
	HostTest  string // go test -c ./host/ (BenchmarkReadBarrierOneHost)
	Hopfloor  string // go build ./kmsload/cmd/hopfloor
}

// MeasureFloor measures the bound (MeasureBound) and the floor's other
// parts, each cfg.Count times, into b. hopfloor runs about cfg.Benchtime
// at 16 callers and about as long at 1.
func MeasureFloor(cfg FloorConfig, b Bound) error {
	if err := MeasureBound(cfg.BoundConfig, b); err != nil {
		return err
	}
	bt := cfg.Benchtime.String()
	audit, out, err := runGoBenches(cfg.AuditTest, "^BenchmarkEvent$/^(Redact|Write)$", bt, cfg.Count)
	if err != nil {
		return err
	}
	barrier, out2, err := runGoBenches(cfg.HostTest, "^BenchmarkReadBarrierOneHost$/^(serial|parallel16)$", bt, cfg.Count)
	if err != nil {
		return err
	}
	out = append(out, out2...)
	for _, m := range []struct {
		res             map[string]map[string][]float64
		bench, unit, to string
	}{
		{audit, "BenchmarkEvent/Redact", "ns/op", PartAuditRedact},
		{audit, "BenchmarkEvent/Write", "ns/op", PartAuditWrite},
		{barrier, "BenchmarkReadBarrierOneHost/parallel16", "cpu-ns/op", PartBarrier},
		{barrier, "BenchmarkReadBarrierOneHost/serial", "ns/op", PartBarrierSerial},
	} {
		v := m.res[m.bench][m.unit]
		if len(v) == 0 {
			return fmt.Errorf("peers: no %s of %s\n%s", m.unit, m.bench, out)
		}
		b[m.to] = append(b[m.to], v...)
	}
	trips16 := max(1600, int(cfg.Benchtime/(20*time.Microsecond)))
	trips1 := max(200, int(cfg.Benchtime/(60*time.Microsecond)))
	for range cfg.Count {
		cpu, _, err := runHopfloor(cfg.Hopfloor, 16, trips16)
		if err != nil {
			return err
		}
		b[PartHop] = append(b[PartHop], cpu)
		_, t, err := runHopfloor(cfg.Hopfloor, 1, trips1)
		if err != nil {
			return err
		}
		b[PartHopSerial] = append(b[PartHopSerial], t)
	}
	return nil
}

// runHopfloor runs hopfloor between two processes and returns its CPU
// and time per round trip in ns.
func runHopfloor(bin string, callers, trips int) (cpu, elapsed float64, err error) {
	out, err := exec.Command(bin, "-callers", strconv.Itoa(callers), "-n", strconv.Itoa(trips)).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("peers: %s -callers %d: %v\n%s", bin, callers, err, out)
	}
	return parseHopfloor(string(out))
}

var hopfloorLine = regexp.MustCompile(`two processes, \d+ callers, \d+ round trips: ([0-9.]+) µs of CPU per round trip \(both sides\), ([0-9.]+) µs of time`)

// parseHopfloor reads hopfloor's line (two processes) into ns of CPU and
// of time per round trip.
func parseHopfloor(out string) (cpu, elapsed float64, err error) {
	m := hopfloorLine.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("peers: hopfloor: no result between two processes in %q", out)
	}
	cpu, err = strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, 0, fmt.Errorf("peers: hopfloor: %w", err)
	}
	elapsed, err = strconv.ParseFloat(m[2], 64)
	if err != nil {
		return 0, 0, fmt.Errorf("peers: hopfloor: %w", err)
	}
	return cpu * 1e3, elapsed * 1e3, nil
}

// FloorTable lists every measured primitive and part (the bound's and the
// floor's), its median and samples, whether the floor and the serial
// extra count it, and their totals.
func FloorTable(b Bound) string {
	var w strings.Builder
	w.WriteString("| part | measured by | median | samples | in the floor (CPU, 16 clients) | in the serial extra (time, 1 client) |\n| --- | --- | --- | --- | --- | --- |\n")
	in := func(p string, parts []string) string {
		for _, x := range parts {
			if x == p {
				return "yes"
			}
		}
		if p == PrimGCM {
			return "no: local-kms seals with AES-GCM too"
		}
		return "no"
	}
	for _, p := range []string{PrimSigV4, PrimTokenMAC, PrimGCM, PrimEnvelope, PartAuditRedact, PartAuditWrite,
		PartBarrier, PartBarrierSerial, PartHop, PartHopSerial} {
		var s []string
		for _, v := range b[p] {
			s = append(s, fmt.Sprintf("%.2f", v/1e3))
		}
		fmt.Fprintf(&w, "| %s | %s | %.2f µs | %s | %s | %s |\n", p, partSource[p], b.Median(p)/1e3, strings.Join(s, " · "),
			in(p, FloorParts), in(p, SerialParts))
	}
	fmt.Fprintf(&w, "| **the floor of the extra work (sum of its medians)** | | **%.2f µs** | | | |\n", b.Floor()/1e3)
	fmt.Fprintf(&w, "| **the serial extra (sum of its medians)** | | **%.2f µs** | | | |\n", b.SerialExtra()/1e3)
	return w.String()
}

// TargetRow is issue 17's target for one load, from the medians of the
// run's rounds and the floor. CPU per request and p50 are in µs.
type TargetRow struct {
	Load
	LocalCPU, Floor, TargetCPU, TrentCPU float64 // server CPU per request; TargetCPU = LocalCPU + Floor
	LocalClientCPU, TrentClientCPU       float64 // the load generator's CPU per request
	PredictedRatio, MeasuredRatio        float64 // trent ÷ local-kms, requests per second
	LocalP50, SerialExtra, TargetP50     float64 // TargetP50 = LocalP50 + SerialExtra
	TrentP50                             float64
}

// CPUMet: Trent's CPU per request is at most the target's.
func (r TargetRow) CPUMet() bool { return r.TrentCPU <= r.TargetCPU }

// RateMet: Trent's requests per second, as a ratio to local-kms's, are at
// least what the target CPU allows.
func (r TargetRow) RateMet() bool { return r.MeasuredRatio >= r.PredictedRatio }

// P50Met: Trent's p50 is at most the target's.
func (r TargetRow) P50Met() bool { return r.TrentP50 <= r.TargetP50 }

// PredictedRatio is the ratio of requests per second, Trent's to
// local-kms's, that a server spending targetCPU a request allows when
// both servers are CPU-bound. On cores they share with the load generator
// (split false) each serves about cores ÷ (server CPU + client CPU) a
// second; on cores of their own (split true, Cores), cores ÷ server CPU.
// The cores cancel out.
func PredictedRatio(targetCPU, trentClientCPU, localCPU, localClientCPU float64, split bool) float64 {
	if split {
		return ratio(localCPU, targetCPU)
	}
	return ratio(localCPU+localClientCPU, targetCPU+trentClientCPU)
}

// TargetRows computes, for each load on which both trent and local-kms
// have samples, issue 17's target from the medians of the rounds and b's
// floor and serial extra, and Trent's measured figures beside it.
func TargetRows(samples []Sample, loads []Load, b Bound, split bool) []TargetRow {
	type med struct{ cpu, client, rps, p50 []float64 }
	m := map[string]*med{}
	for _, s := range samples {
		k := key(s.Target, Load{s.Op, s.Clients})
		if m[k] == nil {
			m[k] = &med{}
		}
		c := m[k]
		c.cpu = append(c.cpu, us(s.ServerCPUPerReq()))
		c.client = append(c.client, us(s.ClientCPUPerReq()))
		c.rps = append(c.rps, s.ReqPerSec)
		c.p50 = append(c.p50, us(s.P50))
	}
	floor, serial := b.Floor()/1e3, b.SerialExtra()/1e3
	var rows []TargetRow
	for _, l := range loads {
		t, lk := m[key(Trent, l)], m[key(LocalKMS, l)]
		if t == nil || lk == nil {
			continue
		}
		r := TargetRow{Load: l,
			LocalCPU: median(lk.cpu), Floor: floor, TrentCPU: median(t.cpu),
			LocalClientCPU: median(lk.client), TrentClientCPU: median(t.client),
			MeasuredRatio: ratio(median(t.rps), median(lk.rps)),
			LocalP50:      median(lk.p50), SerialExtra: serial, TrentP50: median(t.p50)}
		r.TargetCPU = r.LocalCPU + r.Floor
		r.TargetP50 = r.LocalP50 + r.SerialExtra
		r.PredictedRatio = PredictedRatio(r.TargetCPU, r.TrentClientCPU, r.LocalCPU, r.LocalClientCPU, split)
		rows = append(rows, r)
	}
	return rows
}

// TargetTable is the target against the run: for loads at more than one
// client, CPU per request and requests per second; at 1 client, p50.
func TargetTable(rows []TargetRow) string {
	var multi, one strings.Builder
	for _, r := range rows {
		if r.Clients > 1 {
			fmt.Fprintf(&multi, "| %s | %d | %.1f µs | %.1f µs | **%.1f µs** | %.1f µs | %s | %.1f · %.1f µs | **%.2f×** | %.2f× | %s |\n",
				r.Op, r.Clients, r.LocalCPU, r.Floor, r.TargetCPU, r.TrentCPU, verdict(r.CPUMet(), r.TrentCPU-r.TargetCPU, "µs", 1),
				r.LocalClientCPU, r.TrentClientCPU, r.PredictedRatio, r.MeasuredRatio,
				verdict(r.RateMet(), r.MeasuredRatio-r.PredictedRatio, "×", 2))
		} else {
			fmt.Fprintf(&one, "| %s | %d | %.3f ms | %.3f ms | **%.3f ms** | %.3f ms | %s |\n",
				r.Op, r.Clients, r.LocalP50/1e3, r.SerialExtra/1e3, r.TargetP50/1e3, r.TrentP50/1e3,
				verdict(r.P50Met(), (r.TrentP50-r.TargetP50)/1e3, "ms", 3))
		}
	}
	var w strings.Builder
	if multi.Len() > 0 {
		w.WriteString("| operation | clients | local-kms CPU/req | + the floor | = target CPU/req | trent CPU/req | CPU/req target met? | client CPU/req, local-kms · trent | predicted req/s ratio at the target | measured req/s ratio | req/s target met? |\n")
		w.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		w.WriteString(multi.String())
	}
	if one.Len() > 0 {
		if w.Len() > 0 {
			w.WriteString("\n")
		}
		w.WriteString("| operation | clients | local-kms p50 | + the serial extra | = target p50 | trent p50 | p50 target met? |\n")
		w.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
		w.WriteString(one.String())
	}
	return w.String()
}

// verdict says whether a target is met and how far Trent's figure is
// from it: diff is Trent's figure minus the target's.
func verdict(met bool, diff float64, unit string, prec int) string {
	if unit != "×" {
		unit = " " + unit
	}
	side := "above"
	if diff < 0 {
		side, diff = "below", -diff
	}
	if met {
		return fmt.Sprintf("yes, %.*f%s %s", prec, diff, unit, side)
	}
	return fmt.Sprintf("**no**, %.*f%s %s", prec, diff, unit, side)
}

package peers

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// parseGoBench keeps each metric apart by its unit and each benchmark by
// its name without the -GOMAXPROCS suffix, in the order printed.
func TestParseGoBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/trentkms/trent/host
BenchmarkReadBarrierOneHost/serial         	20825828	        11.42 ns/op	        11.47 cpu-ns/op
BenchmarkReadBarrierOneHost/parallel16     	21016449	        10.11 ns/op	        10.20 cpu-ns/op
BenchmarkReadBarrierOneHost/parallel16-2   	1000	        9.5 ns/op	        8.25 cpu-ns/op
BenchmarkEvent/Write          	   56036	      4985 ns/op	     184 B/op	       3 allocs/op
BenchmarkEvent/Write
    bench_test.go:1: a log line from the benchmark
PASS
`
	got := parseGoBench(out)
	for _, c := range []struct {
		bench, unit string
		want        []float64
	}{
		{"BenchmarkReadBarrierOneHost/serial", "ns/op", []float64{11.42}},
		{"BenchmarkReadBarrierOneHost/serial", "cpu-ns/op", []float64{11.47}},
		{"BenchmarkReadBarrierOneHost/parallel16", "cpu-ns/op", []float64{10.20, 8.25}},
		{"BenchmarkReadBarrierOneHost/parallel16", "ns/op", []float64{10.11, 9.5}},
		{"BenchmarkEvent/Write", "ns/op", []float64{4985}},
		{"BenchmarkEvent/Write", "B/op", []float64{184}},
	} {
		if v := got[c.bench][c.unit]; !slices.Equal(v, c.want) {
			t.Errorf("%s %s = %v, want %v", c.bench, c.unit, v, c.want)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d benchmarks, want 3: %v", len(got), got)
	}
}

// parseHopfloor reads the two-process line's CPU and time per round trip
// in ns and refuses one process's line.
func TestParseHopfloor(t *testing.T) {
	for _, c := range []struct {
		out       string
		cpu, time float64
		ok        bool
	}{
		{"two processes, 16 callers, 20000 round trips: 36.5 µs of CPU per round trip (both sides), 22.2 µs of time\n", 36500, 22200, true},
		{"two processes, 1 callers, 4000 round trips: 91.5 µs of CPU per round trip (both sides), 71.2 µs of time\n", 91500, 71200, true},
		{"one process, 16 callers, 20000 round trips: 16.5 µs of CPU per round trip (both sides), 10.0 µs of time\n", 0, 0, false},
		{"hopfloor: want 1 ≤ callers ≤ n\n", 0, 0, false},
	} {
		cpu, tm, err := parseHopfloor(c.out)
		if (err == nil) != c.ok || math.Abs(cpu-c.cpu) > 1e-6 || math.Abs(tm-c.time) > 1e-6 {
			t.Errorf("parseHopfloor(%q) = %v, %v, %v; want %v, %v, ok %v", c.out, cpu, tm, err, c.cpu, c.time, c.ok)
		}
	}
}

// testFloor is a Bound with every part of the floor, in ns.
func testFloor() Bound {
	return Bound{PrimSigV4: {2000}, PrimTokenMAC: {4000, 3000, 5000}, PrimGCM: {1000}, PrimEnvelope: {3000},
		PartAuditRedact: {1000}, PartAuditWrite: {2500}, PartBarrier: {10}, PartBarrierSerial: {11},
		PartHop: {20000, 25000}, PartHopSerial: {44000}}
}

// The floor counts the extra work local-kms does none of (not AES-GCM)
// at 16 clients; the serial extra counts the hop and the barrier at 1
// caller instead; a missing part makes them 0, not a smaller sum.
func TestFloorSums(t *testing.T) {
	b := testFloor()
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"floor", b.Floor(), 2000 + 4000 + 3000 + 1000 + 2500 + 10 + 22500},
		{"serial extra", b.SerialExtra(), 44000 + 11 + 4000 + 3000 + 2000 + 1000 + 2500},
		{"bound", b.Total(), 2000 + 4000 + 1000 + 3000},
	} {
		if math.Abs(c.got-c.want) > 1e-6 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	delete(b, PartHop)
	if f := b.Floor(); f != 0 {
		t.Errorf("floor without the hop = %v, want 0", f)
	}
	delete(b, PartBarrierSerial)
	if s := b.SerialExtra(); s != 0 {
		t.Errorf("serial extra without the barrier = %v, want 0", s)
	}
	ft := FloorTable(testFloor())
	for _, want := range []string{"**35.01 µs**", "**56.51 µs**", "| " + PartHop + " | hopfloor -callers 16, µs of CPU per round trip | 22.50 µs | 20.00 · 25.00 | yes | no |",
		"| " + PrimGCM + " | this package, testing.Benchmark | 1.00 µs | 1.00 | no: local-kms seals with AES-GCM too | no: local-kms seals with AES-GCM too |"} {
		if !strings.Contains(ft, want) {
			t.Errorf("floor table lacks %q:\n%s", want, ft)
		}
	}
}

func TestPredictedRatio(t *testing.T) {
	for _, c := range []struct {
		target, trentClient, local, localClient, want float64
	}{
		{100, 50, 100, 50, 1},           // the same cost: the same rate
		{87.5, 50, 55, 45, 100 / 137.5}, // the doc's shape: about 0.73×
		{150, 50, 50, 50, 0.5},          // twice the CPU with the clients: half the rate
		{50, 30, 60, 40, 100.0 / 80.0},  // a target below local-kms: above 1×
		{90, 10, 40, 60, 1},             // only the sums count
		{90, 60, 40, 60, 100.0 / 150.0}, // Trent's client CPU counts against it
		{0, 0, 50, 50, 0},               // nothing measured
	} {
		if got := PredictedRatio(c.target, c.trentClient, c.local, c.localClient, false); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("PredictedRatio(%v, %v, %v, %v, shared) = %v, want %v", c.target, c.trentClient, c.local, c.localClient, got, c.want)
		}
	}
	// On cores of their own, the clients' CPU does not count.
	for _, c := range []struct {
		target, trentClient, local, localClient, want float64
	}{
		{100, 50, 100, 50, 1},
		{150, 50, 50, 50, 50.0 / 150.0},
		{90, 60, 40, 60, 40.0 / 90.0},
		{50, 30, 60, 40, 60.0 / 50.0},
		{0, 0, 50, 50, 0},
	} {
		if got := PredictedRatio(c.target, c.trentClient, c.local, c.localClient, true); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("PredictedRatio(%v, %v, %v, %v, split) = %v, want %v", c.target, c.trentClient, c.local, c.localClient, got, c.want)
		}
	}
}

func TestTargetRows(t *testing.T) {
	var samples []Sample
	add := func(target, op string, clients int, cpu, client, p50 time.Duration, rps float64) {
		samples = append(samples, Sample{Target: target, Op: op, Clients: clients, Requests: 1000,
			ServerCPU: 1000 * cpu, ClientCPU: 1000 * client, P50: p50, ReqPerSec: rps, Elapsed: time.Second})
	}
	const µs = time.Microsecond
	// Encrypt/16: Trent over the target CPU and under the predicted rate.
	for i, c := range []time.Duration{100, 90, 110} {
		add(Trent, "Encrypt", 16, c*µs, 50*µs, time.Millisecond, []float64{6000, 7000, 8000}[i])
	}
	for _, c := range []time.Duration{50, 60, 55} {
		add(LocalKMS, "Encrypt", 16, c*µs, 45*µs, time.Millisecond, 10000)
	}
	add(Moto, "Encrypt", 16, 2000*µs, 45*µs, time.Millisecond, 500)
	// Decrypt/16: Trent meets both.
	add(Trent, "Decrypt", 16, 80*µs, 50*µs, time.Millisecond, 8000)
	add(LocalKMS, "Decrypt", 16, 55*µs, 45*µs, time.Millisecond, 10000)
	// Encrypt/1: p50 over the target; Decrypt/1: under it.
	add(Trent, "Encrypt", 1, 300*µs, 100*µs, 300*µs, 3000)
	add(LocalKMS, "Encrypt", 1, 100*µs, 100*µs, 160*µs, 6000)
	add(Trent, "Decrypt", 1, 300*µs, 100*µs, 200*µs, 3000)
	add(LocalKMS, "Decrypt", 1, 100*µs, 100*µs, 160*µs, 6000)
	// GenerateDataKey/16: local-kms not measured, no row.
	add(Trent, "GenerateDataKey", 16, 80*µs, 50*µs, time.Millisecond, 8000)

	loads := []Load{{"Encrypt", 16}, {"Decrypt", 16}, {"GenerateDataKey", 16}, {"Encrypt", 1}, {"Decrypt", 1}}
	b := testFloor() // floor 35.01 µs, serial extra 56.511 µs
	if split := TargetRows(samples, loads, b, true); len(split) != 4 || math.Abs(split[0].PredictedRatio-55/(55+35.01)) > 1e-6 {
		t.Errorf("split cores: %+v; want Encrypt/16's predicted ratio local-kms CPU ÷ target CPU", split)
	}
	rows := TargetRows(samples, loads, b, false)
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4: %+v", len(rows), rows)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	e := rows[0]
	near("Encrypt/16 local CPU", e.LocalCPU, 55)
	near("Encrypt/16 target CPU", e.TargetCPU, 55+35.01)
	near("Encrypt/16 trent CPU", e.TrentCPU, 100)
	near("Encrypt/16 predicted ratio", e.PredictedRatio, (55+45)/(55+35.01+50))
	near("Encrypt/16 measured ratio", e.MeasuredRatio, 0.7)
	if e.CPUMet() || e.RateMet() {
		t.Errorf("Encrypt/16: CPU met %v, rate met %v; want neither", e.CPUMet(), e.RateMet())
	}
	d := rows[1]
	if d.Op != "Decrypt" || !d.CPUMet() || !d.RateMet() {
		t.Errorf("Decrypt/16: %+v; want both met", d)
	}
	e1, d1 := rows[2], rows[3]
	near("Encrypt/1 target p50", e1.TargetP50, 160+56.511)
	near("Encrypt/1 trent p50", e1.TrentP50, 300)
	if e1.P50Met() || !d1.P50Met() {
		t.Errorf("p50 met: Encrypt/1 %v, Decrypt/1 %v; want false, true", e1.P50Met(), d1.P50Met())
	}

	tt := TargetTable(rows)
	for _, want := range []string{
		"| Encrypt | 16 | 55.0 µs | 35.0 µs | **90.0 µs** | 100.0 µs | **no**, 10.0 µs above | 45.0 · 50.0 µs | **0.71×** | 0.70× | **no**, 0.01× below |",
		"| Decrypt | 16 | 55.0 µs | 35.0 µs | **90.0 µs** | 80.0 µs | yes, 10.0 µs below |",
		"| 0.80× | yes, 0.09× above |",
		"| Encrypt | 1 | 0.160 ms | 0.057 ms | **0.217 ms** | 0.300 ms | **no**, 0.083 ms above |",
		"| Decrypt | 1 | 0.160 ms | 0.057 ms | **0.217 ms** | 0.200 ms | yes, 0.017 ms below |",
	} {
		if !strings.Contains(tt, want) {
			t.Errorf("target table lacks %q:\n%s", want, tt)
		}
	}
	for _, part := range strings.Split(strings.TrimSpace(tt), "\n\n") {
		lines := strings.Split(part, "\n")
		for _, l := range lines[1:] {
			if strings.Count(l, "|") != strings.Count(lines[0], "|") {
				t.Errorf("row %q has not the header's columns %q", l, lines[0])
			}
		}
	}
	if strings.Contains(tt, "GenerateDataKey") {
		t.Errorf("a load local-kms did not run has a row:\n%s", tt)
	}
}

package host_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/trentkms/trent/domain"
	"github.com/trentkms/trent/host"
	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/quorum"
)

func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
}

// BenchmarkCommit measures, on 3 hosts and 2 HSMs over TCP on loopback:
// bare raft Apply of a key-store entry (consensus on the same stores), the
// checks every FSM runs on a domain change (VerifyTransition: the quorum's
// signatures, the token's, Apply, re-encoding), and a quorum command's
// commit (submit → exported on an HSM → committed → imported by every HSM).
// It reports p50 and p99 in milliseconds.
func BenchmarkCommit(b *testing.B) {
	c := newTestCluster(b, 3, 2)
	ctx := context.Background()
	var leader *host.Host
	for leader == nil {
		for _, h := range c.hosts {
			if h.IsLeader() {
				leader = h
			}
		}
	}
	var bare, checks, commit, export []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e, _ := domain.PutKeyEntry(fmt.Sprintf("k%d", i), make([]byte, 200))
		start := time.Now()
		if err := leader.ApplyForTest(e); err != nil {
			b.Fatal(err)
		}
		bare = append(bare, time.Since(start))

		b.StopTimer()
		st, _ := leader.FSM().State()
		ret, _ := domain.ParamsRetention(3 + i%2)
		cmd := signed(b, "prod", st.Version, quorum.SetRetention, ret, c.alice, c.bob)
		b.StartTimer()
		start = time.Now()
		v, err := leader.Submit(ctx, cmd)
		if err != nil {
			b.Fatal(err)
		}
		for {
			done := true
			for _, hv := range leader.HSMVersions(ctx) {
				done = done && hv == v
			}
			if done {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		commit = append(commit, time.Since(start))

		b.StopTimer()
		_, tok := leader.FSM().State()
		p, err := domain.ParseToken(tok)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := domain.VerifyTransition(st, p, time.Now().Unix()); err != nil {
			b.Fatal(err)
		}
		checks = append(checks, time.Since(start))
		// The HSM's part: exporting the next token (not enacted).
		next, _ := leader.FSM().State()
		ret, _ = domain.ParamsRetention(3 + (i+1)%2)
		probe, _, _ := quorum.ParseSignedCommand(signed(b, "prod", next.Version, quorum.SetRetention, ret, c.alice, c.bob))
		start = time.Now()
		if _, err := c.hsms[0].n.Export(probe, time.Now()); err != nil {
			b.Fatal(err)
		}
		export = append(export, time.Since(start))
		b.StartTimer()
	}
	b.ReportMetric(percentile(bare, 0.5), "bare-p50-ms")
	b.ReportMetric(percentile(bare, 0.99), "bare-p99-ms")
	b.ReportMetric(percentile(checks, 0.5), "checks-p50-ms")
	b.ReportMetric(percentile(export, 0.5), "hsm-export-p50-ms")
	b.ReportMetric(percentile(commit, 0.5), "commit-p50-ms")
	b.ReportMetric(percentile(commit, 0.99), "commit-p99-ms")
}

// BenchmarkReadBarrier measures the read barrier every KMS request but
// GenerateRandom pays (Host.ReadBarrier), on 3 hosts over TCP on loopback:
// on the leader (a quorum's confirmation of its leadership) and on a
// follower (one request to the leader, then its own FSM caught up), one
// reader at a time and 16 at once (readers share rounds).
func BenchmarkReadBarrier(b *testing.B) {
	c := newTestCluster(b, 3, 1)
	ctx := context.Background()
	leader, follower := c.hosts[0], c.hosts[1]
	if !leader.IsLeader() {
		b.Skip("host-1 does not lead")
	}
	for _, bc := range []struct {
		name string
		h    *host.Host
	}{{"leader", leader}, {"follower", follower}} {
		b.Run(bc.name+"/serial", func(b *testing.B) {
			for b.Loop() {
				if err := bc.h.ReadBarrier(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/parallel16", func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.h.ReadBarrier(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkReadBarrierOneHost measures the read barrier on the one host of
// `trent dev` (its own leader, no peer to confirm leadership with), from
// one reader and from 16 at once: cpu-ns/op is the process's CPU per
// barrier, the figure the side-by-side benchmark's floor uses
// (docs/benchmarks.md, "Issue 17's target against the design's floor").
func BenchmarkReadBarrierOneHost(b *testing.B) {
	c := newTestCluster(b, 1, 1)
	h := c.hosts[0]
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); h.ReadBarrier(ctx) != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("host-1 did not become ready")
		}
	}
	b.Run("serial", func(b *testing.B) {
		cpu0 := processCPU()
		for b.Loop() {
			if err := h.ReadBarrier(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("parallel16", func(b *testing.B) {
		b.SetParallelism(16 / max(1, runtime.GOMAXPROCS(0)))
		cpu0 := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := h.ReadBarrier(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

// BenchmarkHSMHop measures one Encrypt of 64 bytes as the KMS service
// sends it (hsmClient: the batcher, a session envelope, the transport, the
// HSM's batch and hierarchy code, SoftHSM's HMAC), on 1 host and 3 HSMs
// over TCP on loopback, all in this process: from 1 caller (its p50 and
// p99 in µs) and from 16 at once. cpu-ns/op is the process's CPU (host and
// HSMs together) per command, which a shared machine disturbs less than
// the time per command.
func BenchmarkHSMHop(b *testing.B) {
	c := newTestCluster(b, 1, 3)
	h := c.hosts[0]
	ctx := context.Background()
	var tok []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := h.HSMDoForTest(ctx, hsmcmd.CreateHBKRequest{KeyID: "1234abcd-12ab-34cd-56ef-1234567890ab"})
		if err == nil {
			r, err := hsmcmd.ParseCreateHBKResponse(out)
			if err != nil {
				b.Fatal(err)
			}
			tok = r.Token
			break
		}
		if time.Now().After(deadline) {
			b.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for st, _ := h.FSM().State(); ; time.Sleep(20 * time.Millisecond) {
		done := true
		for _, v := range h.HSMVersions(ctx) {
			done = done && v == st.Version
		}
		if done {
			break
		}
	}
	req := hsmcmd.EncryptRequest{Token: tok, Plaintext: make([]byte, 64)}
	encrypt := func() error {
		_, err := h.HSMDoForTest(ctx, req)
		return err
	}
	for range 100 { // every HSM's session and HBK cache warm
		if err := encrypt(); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("callers=1", func(b *testing.B) {
		ds := make([]time.Duration, 0, b.N)
		cpu0 := processCPU()
		for b.Loop() {
			start := time.Now()
			if err := encrypt(); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(percentile(ds, 0.5)*1000, "p50-µs")
		b.ReportMetric(percentile(ds, 0.99)*1000, "p99-µs")
	})
	b.Run("callers=16", func(b *testing.B) {
		b.SetParallelism(16 / max(1, runtime.GOMAXPROCS(0)))
		cpu0 := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := encrypt(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

// processCPU is the process's user and system CPU time so far, in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

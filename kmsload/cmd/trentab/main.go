// Command trentab compares trent binaries under one load, rounds
// interleaved: each binary runs its own `trent dev` (the production shape
// kmspeers measures: 3 HSM processes, 1 host process, the audit trail on),
// and every round visits each in turn, so that the machine's other work
// falls on all of them alike. It prints each round and the medians of
// CPU per request (every process of each cluster), requests per second
// and the median latency (p50). As kmspeers does, it runs the load
// generator and the servers on every CPU (-cores shared, the default), or
// on separate halves of them (-cores split).
// docs/benchmarks.md's A/B figures of single changes come from it:
//
//	go build -o /tmp/trent-A ./cmd/trent   # at the commit before
//	go build -o /tmp/trent-B ./cmd/trent   # at the commit after
//	go run ./kmsload/cmd/trentab -trent /tmp/trent-A,/tmp/trent-B -load Encrypt/16
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trentkms/trent/kmsload/peers"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "trentab:", err)
		os.Exit(1)
	}
}

func run() error {
	bins := flag.String("trent", "", "trent binaries, comma-separated (at least two)")
	load := flag.String("load", "Encrypt/16", "the load: Op/clients (Encrypt, Decrypt, GenerateDataKey)")
	rounds := flag.Int("rounds", 3, "rounds; each visits every binary once")
	duration := flag.Duration("duration", 5*time.Second, "measured time of each load")
	warmup := flag.Duration("warmup", 2*time.Second, "warm-up before each measured load")
	coreFlag := flag.String("cores", "shared", peers.CoresUsage)
	flag.Parse()
	cores, err := peers.ParseCores(*coreFlag)
	if err != nil {
		return err
	}
	if err := cores.Apply(); err != nil {
		return err
	}
	exes := strings.Split(*bins, ",")
	if len(exes) < 2 {
		return fmt.Errorf("-trent needs two binaries or more")
	}
	op, n, ok := strings.Cut(*load, "/")
	clients, err := strconv.Atoi(n)
	if !ok || err != nil || clients < 1 {
		return fmt.Errorf("-load %q: want Op/clients", *load)
	}
	work, err := os.MkdirTemp("", "trentab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var ts []*peers.Target
	defer func() {
		for _, t := range ts {
			t.Stop(10 * time.Second)
		}
	}()
	for i, exe := range exes {
		t, err := peers.StartTrent(exe, work, 0)
		if err != nil {
			return err
		}
		t.Name = fmt.Sprintf("%c %s", 'A'+i, exe)
		ts = append(ts, t)
	}
	samples, err := peers.Run(context.Background(), peers.Config{Targets: ts, Loads: []peers.Load{{Op: op, Clients: clients}},
		Rounds: *rounds, Duration: *duration, WarmUp: *warmup, Progress: os.Stdout})
	if err != nil {
		return err
	}
	fmt.Printf("\n| binary | CPU per request, each round | median | req/s, each round | median | p50, each round | median |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, t := range ts {
		var cpu, rps, p50 []float64
		for _, s := range samples {
			if s.Target == t.Name {
				cpu = append(cpu, float64(s.ServerCPUPerReq())/1e3)
				rps = append(rps, s.ReqPerSec)
				p50 = append(p50, float64(s.P50)/1e3)
			}
		}
		fmt.Printf("| %s | %s µs | **%.1f µs** | %s | **%.0f** | %s µs | **%.1f µs** |\n", t.Name, join(cpu, "%.1f"), median(cpu),
			join(rps, "%.0f"), median(rps), join(p50, "%.1f"), median(p50))
	}
	return nil
}

func join(v []float64, f string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(f, x)
	}
	return strings.Join(s, " · ")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

package node

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// A command's counters, kept after their first look-up, count into the
// vector's series of their labels, from many goroutines at once; a result
// never met has no series.
func TestCommandCounters(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c"}, []string{"command", "result"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(vec)
	c := &commandCounters{vec: vec, name: "decrypt"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.inc(resultOK)
			}
			c.inc(resultError)
		})
	}
	wg.Wait()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["command"]+"/"+labels["result"]] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"decrypt/ok": 800, "decrypt/error": 8}
	if len(got) != len(want) || got["decrypt/ok"] != 800 || got["decrypt/error"] != 8 {
		t.Errorf("series %v, want %v (refused never counted, so absent)", got, want)
	}
}

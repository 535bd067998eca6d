package host

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kmsRequest counts successes through its cache and failures by
// exception, into the one CounterVec /metrics serves.
func TestKMSRequestCounter(t *testing.T) {
	m := newHostMetrics(nil)
	for range 3 {
		m.kmsRequest("Encrypt", "")
	}
	m.kmsRequest("Encrypt", "NotFoundException")
	m.kmsRequest("Decrypt", "")
	m.kmsRequest("", "IncompleteSignatureException")
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.kms)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	got := map[string]float64{}
	for _, mt := range mfs[0].GetMetric() {
		var op, exception string
		for _, l := range mt.GetLabel() {
			switch l.GetName() {
			case "operation":
				op = l.GetValue()
			case "exception":
				exception = l.GetValue()
			}
		}
		got[op+"/"+exception] = mt.GetCounter().GetValue()
	}
	assert.Equal(t, map[string]float64{"Encrypt/": 3, "Encrypt/NotFoundException": 1, "Decrypt/": 1, "/IncompleteSignatureException": 1}, got)
}

// BenchmarkKMSRequestCounter compares kmsRequest's cached counter with
// the CounterVec lookup it replaced, 16 goroutines at once.
func BenchmarkKMSRequestCounter(b *testing.B) {
	m := newHostMetrics(nil)
	for _, bc := range []struct {
		name string
		inc  func()
	}{
		{"cached", func() { m.kmsRequest("Encrypt", "") }},
		{"WithLabelValues", func() { m.kms.WithLabelValues("Encrypt", "").Inc() }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bc.inc()
				}
			})
		})
	}
}

package host

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// pathMetrics serves the host's Prometheus metrics on its API (GET). They
// count requests and show the replicated state's version, the raft role
// and the re-encryption backlog; nothing in them is secret.
const pathMetrics = "/metrics"

// hostMetrics is one host's registry (one per host: several hosts may
// share a process, as under trent dev).
type hostMetrics struct {
	reg *prometheus.Registry
	kms *prometheus.CounterVec
	// kmsOK caches kms's counter of each operation's successes (operation
	// name → prometheus.Counter): CounterVec.WithLabelValues hashes the
	// labels and takes a lock on every request.
	kmsOK   sync.Map
	submits *prometheus.CounterVec
	batches prometheus.Histogram
}

func newHostMetrics(h *Host) *hostMetrics {
	m := &hostMetrics{
		reg: prometheus.NewRegistry(),
		kms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trent_kms_requests_total",
			Help: "AWS KMS API requests, by operation and the KMS exception answered (empty: success).",
		}, []string{"operation", "exception"}),
		submits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trent_host_submits_total",
			Help: "Quorum commands submitted to this host, by result (committed, failed).",
		}, []string{"result"}),
	}
	m.batches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "trent_host_hsm_batch_commands",
		Help:    "Hierarchy commands per request to an HSM (1: sent alone; more: one CmdBatch).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
	})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.kms, m.submits, m.batches,
		gauge("trent_domain_version", "Version of the replicated domain state (0: none).", func() float64 {
			if st, _ := h.fsm.State(); st != nil {
				return float64(st.Version)
			}
			return 0
		}),
		gauge("trent_raft_leader", "Whether this host is the raft leader (1) or not (0).", func() float64 {
			if h.IsLeader() {
				return 1
			}
			return 0
		}),
		gauge("trent_ekts_outdated", "Key-store EKTs not yet under the active domain key.", func() float64 {
			outdated, _ := h.EKTProgress()
			return float64(outdated)
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *hostMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// submitted counts one Submit.
func (m *hostMetrics) submitted(err error) {
	result := "committed"
	if err != nil {
		result = "failed"
	}
	m.submits.WithLabelValues(result).Inc()
}

// kmsRequest counts one KMS API request; op is empty when the request
// failed authentication (its operation is not trusted), exception when it
// succeeded.
func (m *hostMetrics) kmsRequest(op, exception string) {
	if exception != "" {
		m.kms.WithLabelValues(op, exception).Inc()
		return
	}
	// Only operations that succeeded, so only names of the operation
	// table, reach the cache.
	if c, ok := m.kmsOK.Load(op); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.kms.WithLabelValues(op, "")
	m.kmsOK.Store(op, c)
	c.Inc()
}

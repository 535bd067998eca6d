package node

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trentkms/trent/hsmcmd"
	"github.com/trentkms/trent/session"
)

// PathMetrics serves the node's Prometheus metrics (GET, outside any
// session). They count commands and show the domain version; nothing in
// them is secret.
const PathMetrics = "/metrics"

// commandNames label the commands in metrics (the others by their
// number).
var commandNames = map[hsmcmd.Code]string{
	hsmcmd.Ping: "ping", hsmcmd.Export: "export", hsmcmd.Import: "import", hsmcmd.ReencryptEKTs: "reencrypt_ekts",
	hsmcmd.DomainStatus: "domain_status", hsmcmd.Random: "random",
}

// nodeMetrics is one node's registry (one per node: several nodes may share
// a process, as under trent dev).
type nodeMetrics struct {
	reg      *prometheus.Registry
	commands *prometheus.CounterVec
}

func newNodeMetrics(n *Node) *nodeMetrics {
	m := &nodeMetrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trent_hsm_commands_total",
			Help: "Commands served inside sessions, by command and result (ok, refused, error).",
		}, []string{"command", "result"}),
	}
	m.reg.MustRegister(m.commands,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "trent_hsm_domain_version",
			Help: "Version of the domain state the HSM holds (0: none).",
		}, func() float64 {
			if st, _ := n.DomainState(); st != nil {
				return float64(st.Version)
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "trent_hsm_handshakes_total",
			Help:        "Handshakes answered, by mode (classical ECDHE P-384, or hybrid ML-KEM-1024 + P-384).",
			ConstLabels: prometheus.Labels{"mode": "classical"},
		}, func() float64 { c, _ := n.hsm.HandshakeCounts(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "trent_hsm_handshakes_total",
			Help:        "Handshakes answered, by mode (classical ECDHE P-384, or hybrid ML-KEM-1024 + P-384).",
			ConstLabels: prometheus.Labels{"mode": "hybrid"},
		}, func() float64 { _, h := n.hsm.HandshakeCounts(); return float64(h) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *nodeMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// countCommands wraps each handler to count its outcomes.
func (n *Node) countCommands(cmds map[uint16]session.CommandHandler) map[uint16]session.CommandHandler {
	out := make(map[uint16]session.CommandHandler, len(cmds))
	for typ, h := range cmds {
		name, ok := commandNames[hsmcmd.Code(typ)]
		if !ok {
			name = strconv.Itoa(int(typ))
		}
		c := &commandCounters{vec: n.metrics.commands, name: name}
		out[typ] = func(r *session.Request) ([]byte, error) {
			resp, err := h(r)
			result := resultOK
			switch {
			case errors.Is(err, session.ErrRefused):
				result = resultRefused
			case err != nil:
				result = resultError
			}
			c.inc(result)
			return resp, err
		}
	}
	return out
}

// The results a command is counted by: the label values of resultNames.
const (
	resultOK = iota
	resultRefused
	resultError
)

var resultNames = [...]string{resultOK: "ok", resultRefused: "refused", resultError: "error"}

// commandCounters are one command's counters in the vector, by result,
// each looked up in it (label values hashed, a map read) once, when the
// command first has that result, then kept: an HSM counts every batch it
// serves. A result never met is not in the vector, as before.
type commandCounters struct {
	vec  *prometheus.CounterVec
	name string
	c    [len(resultNames)]atomic.Pointer[prometheus.Counter]
}

func (c *commandCounters) inc(result int) {
	if p := c.c[result].Load(); p != nil {
		(*p).Inc()
		return
	}
	ctr := c.vec.WithLabelValues(c.name, resultNames[result]) // the same counter for whoever looks first
	c.c[result].Store(&ctr)
	ctr.Inc()
}

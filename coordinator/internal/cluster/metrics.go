package cluster

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	applies   *prometheus.CounterVec
	applyDur  prometheus.Histogram
	forwarded *prometheus.CounterVec
	gauges    []prometheus.Collector
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_raft_applies_total",
			Help: "Commands this node applied through raft as leader, by result (ok, error).",
		}, []string{"result"}),
		applyDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_raft_apply_seconds",
			Help:    "Time from raft.Apply to commit and FSM apply on the leader.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_raft_forwarded_total",
			Help: "Calls this node passed on to the leader, by kind (apply, read).",
		}, []string{"kind"}),
	}
	states := []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown}
	for _, s := range states {
		s := s
		m.gauges = append(m.gauges, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "shoal_raft_state",
			Help:        "1 for this node's current raft state.",
			ConstLabels: prometheus.Labels{"state": s.String()},
		}, func() float64 {
			if n.raft.State() == s {
				return 1
			}
			return 0
		}))
	}
	m.gauges = append(m.gauges,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoal_raft_last_contact_seconds",
			Help: "Seconds since this node last heard from the leader (0 on the leader).",
		}, func() float64 {
			if n.IsLeader() {
				return 0
			}
			lc := n.raft.LastContact()
			if lc.IsZero() {
				return -1
			}
			return time.Since(lc).Seconds()
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoal_raft_applied_index",
			Help: "Last raft index applied to the FSM.",
		}, func() float64 { return float64(n.raft.AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoal_raft_term",
			Help: "Current raft term.",
		}, func() float64 { return float64(n.raft.CurrentTerm()) }),
		rejections{n: n, desc: prometheus.NewDesc("shoal_fsm_rejected_commands_total",
			"Committed commands the FSM refused to apply, by kind (invalid, not_found, exists, conflict); every node refuses the same ones.",
			[]string{"kind"}, nil)},
	)
	return m
}

// rejections exports the FSM's count of refused commands. The count lives
// in the FSM, beside the state it protects, so it is read at scrape time.
type rejections struct {
	n    *Node
	desc *prometheus.Desc
}

func (r rejections) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r rejections) Collect(ch chan<- prometheus.Metric) {
	for kind, v := range r.n.FSM().Rejected().ByKind {
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.CounterValue, float64(v), string(kind))
	}
}

func (m *metrics) observeApply(d time.Duration, err error) {
	if err != nil && !errors.Is(err, raft.ErrNotLeader) {
		m.applies.WithLabelValues("error").Inc()
		return
	}
	if err == nil {
		m.applies.WithLabelValues("ok").Inc()
		m.applyDur.Observe(d.Seconds())
	}
}

// Collectors are the node's Prometheus metrics, for the HTTP server to
// register.
func (n *Node) Collectors() []prometheus.Collector {
	out := []prometheus.Collector{n.metrics.applies, n.metrics.applyDur, n.metrics.forwarded}
	return append(out, n.metrics.gauges...)
}

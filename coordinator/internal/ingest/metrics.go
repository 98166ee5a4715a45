package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
)

// Reasons samples and streams are rejected, as metric label values.
const (
	reasonNotFinite     = "not_finite"
	reasonNegative      = "negative"
	reasonFuture        = "future_timestamp"
	reasonTooOld        = "too_old"
	reasonOversized     = "oversized_batch"
	reasonEmpty         = "empty_sample"
	reasonBadName       = "bad_metric_name"
	reasonTooManyCustom = "too_many_custom_metrics"

	reasonUnknownFleet = "unknown_fleet"
	reasonDuplicate    = "duplicate_instance"
	reasonNoIdentity   = "no_identity"
	reasonBadIdentity  = "bad_identity"
	reasonTooManyNew   = "too_many_new_instances"
	reasonNoLeader     = "no_leader"
	// reasonWrongIdentity: the caller's certificate names another instance.
	reasonWrongIdentity = "wrong_identity"
)

type metrics struct {
	accepted       prometheus.Counter
	rejected       *prometheus.CounterVec
	streamRejected *prometheus.CounterVec
	agentDropped   prometheus.Counter
	streams        prometheus.Gauge
	forwarded      prometheus.Counter
	commits        *prometheus.CounterVec
	// latency is live sample-to-aggregate latency on the leader; backlog
	// counts the samples left out of it because they were already old.
	latency prometheus.Histogram
	backlog prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_ingest_samples_accepted_total", Help: "Agent samples accepted by this node."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_ingest_samples_rejected_total", Help: "Agent samples rejected by this node, by reason."}, []string{"reason"}),
		streamRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_ingest_streams_rejected_total", Help: "Agent streams refused by this node, by reason."}, []string{"reason"}),
		agentDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_ingest_agent_dropped_samples_total", Help: "Samples agents report having dropped from their buffers while disconnected."}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_ingest_agent_streams", Help: "Agent streams held by this node."}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_ingest_forwarded_reports_total", Help: "Instance reports this follower forwarded to the leader."}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_ingest_registry_commits_total", Help: "Registry commits (raft) made by ingest, by operation."}, []string{"op"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shoal_ingest_sample_latency_seconds",
			Help:    "Time from a sample's timestamp to its entry into the leader's ring, live samples only.",
			Buckets: latencyBuckets}),
		backlog: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_ingest_backlog_samples_total", Help: "Samples older than the live bound when they reached the leader (replayed agent buffers), left out of the latency histogram."}),
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.rejected, m.streamRejected, m.agentDropped, m.streams, m.forwarded, m.commits, m.latency, m.backlog)
	}
	return m
}

// latencyBuckets are fine from 1 ms to 200 ms, where the 100 ms goal of the
// capacity benchmark lies, then coarse up to the live bound.
var latencyBuckets = []float64{
	0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09,
	0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5,
}

// liveBound separates live samples from replayed backlog: an agent back from
// a disconnect sends minutes of buffered samples whose age says nothing
// about ingest latency.
const liveBound = 5 * time.Second

// observeLatency records each sample of a report the leader just put into
// its rings. Service.mu is held; the histogram is safe without it.
func (m *metrics) observeLatency(rep *clusterv1.InstanceReport, now time.Time) {
	nowMs := now.UnixMilli()
	for _, smp := range rep.GetSamples() {
		age := time.Duration(nowMs-smp.GetUnixMs()) * time.Millisecond
		if age > liveBound {
			m.backlog.Inc()
			continue
		}
		// A sample a little ahead of this node's clock (skew within
		// MaxFuture) counts as zero latency.
		m.latency.Observe(max(age, 0).Seconds())
	}
}

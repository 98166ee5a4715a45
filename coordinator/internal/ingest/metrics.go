package ingest

import "github.com/prometheus/client_golang/prometheus"

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
	reasonNoLeader     = "no_leader"
)

type metrics struct {
	accepted       prometheus.Counter
	rejected       *prometheus.CounterVec
	streamRejected *prometheus.CounterVec
	agentDropped   prometheus.Counter
	streams        prometheus.Gauge
	forwarded      prometheus.Counter
	commits        *prometheus.CounterVec
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
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.rejected, m.streamRejected, m.agentDropped, m.streams, m.forwarded, m.commits)
	}
	return m
}

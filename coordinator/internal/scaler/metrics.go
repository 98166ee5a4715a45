package scaler

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	tick        prometheus.Histogram
	actuation   prometheus.Histogram
	drain       prometheus.Histogram
	decisions   *prometheus.CounterVec
	outcomes    *prometheus.CounterVec
	cloudErrors *prometheus.CounterVec
	launches    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		tick: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shoal_scaler_tick_seconds", Help: "Duration of one evaluation of every fleet.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		actuation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shoal_scaler_set_desired_seconds", Help: "Duration of SetDesiredCapacity calls.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		drain: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shoal_scaler_drain_seconds", Help: "From draining to terminated, per instance.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		decisions:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_scaler_decisions_total", Help: "Automatic decisions committed, by direction."}, []string{"direction"}),
		outcomes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_scaler_decision_outcomes_total", Help: "Decision outcomes recorded, by status."}, []string{"status"}),
		cloudErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_scaler_cloud_errors_total", Help: "Failed cloud calls, by error class."}, []string{"class"}),
		launches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_scaler_launch_samples_total",
			Help: "Timed launches, by outcome: committed, commit_failed (not retried), out_of_range (dropped: above fsm.MaxLaunchDelay)."}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.tick, m.actuation, m.drain, m.decisions, m.outcomes, m.cloudErrors, m.launches)
	}
	return m
}

package trust

import (
	"crypto/x509"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the agent's counts of enrollments and renewals by result:
// "success", the coordinator's refusal reason (ip_mismatch, not_in_fleet,
// ...), "refused", "unavailable" or "error".
type Metrics struct {
	enrollments *prometheus.CounterVec
	renewals    *prometheus.CounterVec
	expiry      prometheus.Gauge
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_agent_enrollments_total", Help: "Enrollment attempts by result: success or the reason of the failure."}, []string{"result"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_agent_certificate_renewals_total", Help: "Certificate renewal attempts by result: success or the reason of the failure."}, []string{"result"}),
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_agent_certificate_expiry_timestamp_seconds", Help: "When the agent's certificate expires (Unix seconds)."}),
	}
	m.enrollments.WithLabelValues(resultSuccess)
	m.renewals.WithLabelValues(resultSuccess)
	if reg != nil {
		reg.MustRegister(m.enrollments, m.renewals, m.expiry)
	}
	return m
}

func (m *Metrics) enrolled(result string) {
	if m != nil {
		m.enrollments.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) renewed(result string) {
	if m != nil {
		m.renewals.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) expires(c *x509.Certificate) {
	if m != nil && c != nil {
		m.expiry.Set(float64(c.NotAfter.Unix()))
	}
}

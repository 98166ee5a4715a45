package publish

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxCustomMetrics is --max-custom-metrics' default.
const DefaultMaxCustomMetrics = 10

// ErrTooManyCustomMetrics is returned for a custom metric beyond a fleet's cap.
var ErrTooManyCustomMetrics = errors.New("too many custom metrics")

// CustomMetrics enforces the per-fleet cap on custom metrics, first come
// first served: the first Max distinct custom names a fleet sends are
// admitted for as long as the process lives (or until Forget), and every
// later name is refused with an error that says which names hold the cap.
// Ingestion calls Admit so the agent hears the error; the publisher calls it
// again so nothing over the cap is ever published.
type CustomMetrics struct {
	max     int
	refused *prometheus.CounterVec

	mu     sync.Mutex
	fleets map[string][]string
}

// NewCustomMetrics returns a cap of max custom metrics per fleet. Refusals are
// counted in shoal_custom_metrics_refused_total{fleet}, registered on reg when
// it is not nil.
func NewCustomMetrics(max int, reg prometheus.Registerer) (*CustomMetrics, error) {
	if max < 0 {
		return nil, fmt.Errorf("max custom metrics (%d) must be >= 0", max)
	}
	c := &CustomMetrics{
		max:    max,
		fleets: map[string][]string{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_custom_metrics_refused_total",
			Help: "Custom metrics refused because their fleet already has --max-custom-metrics of them.",
		}, []string{"fleet"}),
	}
	if reg != nil {
		if err := reg.Register(c.refused); err != nil {
			return nil, fmt.Errorf("register custom metric counter: %w", err)
		}
	}
	return c, nil
}

// Admit returns nil when fleet may publish metric: a vocabulary metric, a
// custom one it already has, or a new one while under the cap.
func (c *CustomMetrics) Admit(fleet, metric string) error {
	if !IsCustom(metric) {
		return nil
	}
	if err := ValidateMetricName(metric); err != nil {
		c.refused.WithLabelValues(fleet).Inc()
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	have := c.fleets[fleet]
	for _, m := range have {
		if m == metric {
			return nil
		}
	}
	if len(have) >= c.max {
		c.refused.WithLabelValues(fleet).Inc()
		return fmt.Errorf("%w: fleet %q already has %d custom metrics (%s), the --max-custom-metrics cap; %q refused",
			ErrTooManyCustomMetrics, fleet, len(have), strings.Join(have, ", "), metric)
	}
	c.fleets[fleet] = append(have, metric)
	return nil
}

// Forget drops a fleet's admitted names (the fleet was deleted).
func (c *CustomMetrics) Forget(fleet string) {
	c.mu.Lock()
	delete(c.fleets, fleet)
	c.mu.Unlock()
}

// Refused returns the refusal counter (for tests and the /metrics page).
func (c *CustomMetrics) Refused() *prometheus.CounterVec { return c.refused }

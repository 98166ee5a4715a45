package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/agent/internal/collect"
	"github.com/shoal-dev/shoal/agent/internal/health"
	"github.com/shoal-dev/shoal/agent/internal/stream"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Source is what the runner collects from (collect.Set, collect.Scrape).
type Source interface {
	Collect(now time.Time) (map[string]float64, error)
}

// Sink receives samples (stream.Client).
type Sink interface {
	Push(s *shoalv1.Sample, ready bool, reason string)
	Stats() stream.Stats
}

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("invalid runner config")

// Config of a Runner.
type Config struct {
	Interval time.Duration
	Scope    collect.Scope
	Sources  []Source
	Health   health.Checker
	// HealthTimeout bounds one check (default: the interval).
	HealthTimeout time.Duration
	Sink          Sink
	Now           func() time.Time
	Logger        *slog.Logger
	// Registerer gets the agent's own metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Runner collects and pushes.
type Runner struct {
	cfg      Config
	interval atomic.Int64 // ns; changed by the coordinator's AgentConfig

	values      *prometheus.GaugeVec
	builtin     map[string]prometheus.Gauge
	collectErrs prometheus.Counter
	ready       prometheus.Gauge

	lastErr   string // Tick runs on one goroutine
	lastErrAt time.Time
}

// New validates cfg and registers the agent's metrics.
func New(cfg Config) (*Runner, error) {
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("%w: interval (%s) must be > 0", ErrConfig, cfg.Interval)
	}
	if cfg.Sink == nil {
		return nil, fmt.Errorf("%w: no sink", ErrConfig)
	}
	if cfg.Health == nil {
		cfg.Health = health.None{}
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = cfg.Interval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Runner{cfg: cfg, builtin: map[string]prometheus.Gauge{}}
	r.interval.Store(int64(cfg.Interval))
	r.values = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "shoal_agent_custom_metric", Help: "Latest value of each forwarded application metric, by alias.",
	}, []string{"metric"})
	for name, help := range collect.Help(cfg.Scope) {
		r.builtin[name] = prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_agent_" + name, Help: help})
	}
	r.collectErrs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "shoal_agent_collect_errors_total", Help: "Collections in which some source failed.",
	})
	r.ready = prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_agent_ready", Help: "1 when the application's health check passes."})
	if reg := cfg.Registerer; reg != nil {
		cs := []prometheus.Collector{r.values, r.collectErrs, r.ready}
		for _, g := range r.builtin {
			cs = append(cs, g)
		}
		stats := func(f func(stream.Stats) float64) func() float64 {
			return func() float64 { return f(cfg.Sink.Stats()) }
		}
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shoal_agent_stream_connected", Help: "1 while a coordinator stream is up."},
				stats(func(s stream.Stats) float64 { return b2f(s.Connected) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shoal_agent_buffered_samples", Help: "Samples waiting to be sent."},
				stats(func(s stream.Stats) float64 { return float64(s.Buffered) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_agent_dropped_samples_total", Help: "Samples dropped (oldest first) because the buffer was full while disconnected."},
				stats(func(s stream.Stats) float64 { return float64(s.Dropped) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_agent_stream_reconnects_total", Help: "Coordinator streams that ended and were retried."},
				stats(func(s stream.Stats) float64 { return float64(s.Reconnects) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_agent_sent_samples_total", Help: "Samples sent to a coordinator."},
				stats(func(s stream.Stats) float64 { return float64(s.SentSamples) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_agent_rejected_samples_total", Help: "Samples the coordinator rejected."},
				stats(func(s stream.Stats) float64 { return float64(s.Rejected) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_agent_events_sent_total", Help: "Instance events (IMDS notices) sent to a coordinator, replays after a reconnect included."},
				stats(func(s stream.Stats) float64 { return float64(s.EventsSent) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_agent_events_dropped_total", Help: "Instance events dropped (oldest first) because too many waited for a stream."},
				stats(func(s stream.Stats) float64 { return float64(s.EventsDropped) })),
		)
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register agent metrics: %w", err)
			}
		}
	}
	return r, nil
}

// SetInterval changes the collection interval (from an AgentConfig); values
// under 100 ms are ignored as nonsense.
func (r *Runner) SetInterval(d time.Duration) {
	if d >= 100*time.Millisecond {
		r.interval.Store(int64(d))
	}
}

// Run collects every interval until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	cur := time.Duration(r.interval.Load())
	t := time.NewTicker(cur)
	defer t.Stop()
	for {
		r.Tick(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if d := time.Duration(r.interval.Load()); d != cur {
			cur = d
			t.Reset(d)
		}
	}
}

// Tick collects and pushes one sample.
func (r *Runner) Tick(ctx context.Context) {
	now := r.cfg.Now()
	values := make(map[string]float64, 8)
	var errs []error
	for _, s := range r.cfg.Sources {
		v, err := s.Collect(now)
		if err != nil {
			errs = append(errs, err)
		}
		for k, x := range v {
			values[k] = x
		}
	}
	if len(errs) > 0 {
		r.collectErrs.Inc()
		// A source that stays down (an application without its metrics
		// endpoint yet) would log every second; say it when it changes and
		// once a minute.
		msg := errors.Join(errs...).Error()
		if msg != r.lastErr || now.Sub(r.lastErrAt) >= time.Minute {
			r.cfg.Logger.Warn("collect", "err", msg)
			r.lastErr, r.lastErrAt = msg, now
		}
	} else {
		r.lastErr = ""
	}
	hctx, cancel := context.WithTimeout(ctx, r.cfg.HealthTimeout)
	h := r.cfg.Health.Check(hctx)
	cancel()
	r.ready.Set(b2f(h.Ready))
	for k, v := range values {
		if g, ok := r.builtin[k]; ok {
			g.Set(v)
		} else {
			r.values.WithLabelValues(k).Set(v)
		}
	}
	// Rate sources have nothing on their first call; an empty sample would
	// only cost bandwidth.
	if len(values) == 0 {
		return
	}
	r.cfg.Sink.Push(&shoalv1.Sample{UnixMs: now.UnixMilli(), Values: values}, h.Ready, h.Reason)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/lb/internal/balance"
)

// Collector exports the balancer's counters at scrape time, so the request
// path pays for atomics only, not for Prometheus label lookups.
type Collector struct {
	bal *balance.Balancer

	requests, errs, inflight, lat, ejections, healthy, retries, exhausted, nobackend *prometheus.Desc
}

// NewCollector returns a collector for bal.
func NewCollector(bal *balance.Balancer) *Collector {
	fleet := prometheus.Labels{"fleet": bal.Config().Fleet}
	be := []string{"backend", "instance", "state"}
	return &Collector{
		bal:       bal,
		requests:  prometheus.NewDesc("shoal_lb_backend_requests_total", "Requests completed per backend.", be, fleet),
		errs:      prometheus.NewDesc("shoal_lb_backend_errors_total", "Failed requests (5xx, connect or transport errors) per backend.", be, fleet),
		inflight:  prometheus.NewDesc("shoal_lb_backend_in_flight", "Requests in flight per backend.", be, fleet),
		lat:       prometheus.NewDesc("shoal_lb_backend_latency_seconds", "Request latency per backend, to response end.", be, fleet),
		ejections: prometheus.NewDesc("shoal_lb_backend_ejections_total", "Passive outlier ejections per backend.", be, fleet),
		healthy:   prometheus.NewDesc("shoal_lb_backend_healthy", "1 when the last active health check passed.", be, fleet),
		retries:   prometheus.NewDesc("shoal_lb_retries_total", "Requests retried on another backend.", nil, fleet),
		exhausted: prometheus.NewDesc("shoal_lb_retry_budget_exhausted_total", "Retries refused because the retry budget was spent.", nil, fleet),
		nobackend: prometheus.NewDesc("shoal_lb_no_backend_total", "Requests failed because no backend could be picked.", nil, fleet),
	}
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.errs, c.inflight, c.lat, c.ejections, c.healthy, c.retries, c.exhausted, c.nobackend} {
		ch <- d
	}
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, be := range c.bal.Backends() {
		l := []string{be.Addr, be.ID, be.State().String()}
		s := be.Stats()
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(s.Requests), l...)
		ch <- prometheus.MustNewConstMetric(c.errs, prometheus.CounterValue, float64(s.Errors), l...)
		ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(s.InFlight), l...)
		ch <- prometheus.MustNewConstMetric(c.ejections, prometheus.CounterValue, float64(be.Ejections.Load()), l...)
		h := 0.0
		if be.Healthy() {
			h = 1
		}
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, h, l...)
		buckets := make(map[float64]uint64, len(balance.LatencyBounds))
		var cum uint64
		for i, ub := range balance.LatencyBounds {
			cum += s.Buckets[i]
			buckets[ub] = cum
		}
		cum += s.Buckets[len(balance.LatencyBounds)]
		ch <- prometheus.MustNewConstHistogram(c.lat, cum, float64(s.LatSumNs)/1e9, buckets, l...)
	}
	ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(c.bal.RetriesTotal.Load()))
	ch <- prometheus.MustNewConstMetric(c.exhausted, prometheus.CounterValue, float64(c.bal.BudgetExhausted.Load()))
	ch <- prometheus.MustNewConstMetric(c.nobackend, prometheus.CounterValue, float64(c.bal.NoBackendTotal.Load()))
}

var (
	refusedDesc = prometheus.NewDesc("shoal_lb_connections_refused_total",
		"Client connections closed at accept, by reason (max_conns: --max-conns were open).", []string{"reason"}, nil)
	openDesc = prometheus.NewDesc("shoal_lb_connections_open", "Client connections being served.", nil, nil)

	loopServedDesc = prometheus.NewDesc("shoal_lb_h1_loop_requests_total",
		"HTTP/1.1 requests served by event loops (--h1-engine loop).", nil, nil)
	loopHandedDesc = prometheus.NewDesc("shoal_lb_h1_loop_handovers_total",
		"HTTP/1.1 connections event loops handed to the goroutine engine (a request body, Upgrade or Expect; a chunked or close-delimited response).", nil, nil)
	loopStallDesc = prometheus.NewDesc("shoal_lb_h1_loop_client_stalls_total",
		"Times an event loop stopped reading a backend until its client took the output written so far.", nil, nil)
)

// ConnCollector exports the proxy's connection counters.
type ConnCollector struct{ p *Proxy }

// NewConnCollector returns a collector for p's connections.
func NewConnCollector(p *Proxy) ConnCollector { return ConnCollector{p} }

func (c ConnCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- refusedDesc
	ch <- openDesc
	ch <- loopServedDesc
	ch <- loopHandedDesc
	ch <- loopStallDesc
}

func (c ConnCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(c.p.RefusedMaxConns()), "max_conns")
	ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(c.p.OpenConns()))
	st := c.p.H1LoopStats()
	ch <- prometheus.MustNewConstMetric(loopServedDesc, prometheus.CounterValue, float64(st.Served))
	ch <- prometheus.MustNewConstMetric(loopHandedDesc, prometheus.CounterValue, float64(st.Handed))
	ch <- prometheus.MustNewConstMetric(loopStallDesc, prometheus.CounterValue, float64(st.Stalled))
}

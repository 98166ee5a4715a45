package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
)

// API is the part of the CloudWatch client this package calls;
// *cloudwatch.Client implements it.
type API interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
	PutMetricAlarm(ctx context.Context, in *cloudwatch.PutMetricAlarmInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricAlarmOutput, error)
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	DeleteAlarms(ctx context.Context, in *cloudwatch.DeleteAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DeleteAlarmsOutput, error)
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

var _ API = (*cloudwatch.Client)(nil)

// Every CloudWatch operation this package can call, as IAM names it.
const (
	OpPutMetricData  = "cloudwatch:PutMetricData"
	OpPutMetricAlarm = "cloudwatch:PutMetricAlarm"
	OpDescribeAlarms = "cloudwatch:DescribeAlarms"
	OpDeleteAlarms   = "cloudwatch:DeleteAlarms"
	OpGetMetricData  = "cloudwatch:GetMetricData"
)

// Operations returns every operation the package can call, sorted.
func Operations() []string {
	return []string{OpDeleteAlarms, OpDescribeAlarms, OpGetMetricData, OpPutMetricAlarm, OpPutMetricData}
}

// Config configures a Publisher.
type Config struct {
	// Cluster is --cluster-name, the ShoalCluster dimension.
	Cluster string
	// Interval is --publish-interval, the length of a period. Under 60 s the
	// series are stored at 1 s (high) resolution.
	Interval time.Duration
	// QueueSize is how many requests wait at most; beyond it the oldest
	// is dropped.
	QueueSize int
	// MaxDatums and MaxBytes bound one PutMetricData request.
	MaxDatums int
	MaxBytes  int
	// StandardMetrics are the vocabulary metrics published; other
	// vocabulary metrics are left out. Custom metrics are published up to
	// the cap.
	StandardMetrics []string
	// Custom enforces --max-custom-metrics. Share it with ingestion so the
	// agent and the publisher agree on which names hold the cap; nil makes
	// one with MaxCustomMetrics.
	Custom           *CustomMetrics
	MaxCustomMetrics int
	// RetryBase and RetryMax bound the jittered exponential wait between
	// failed requests (each already retried by the SDK).
	RetryBase, RetryMax time.Duration
	// Commit writes "published up to start" through raft. It is called
	// before the first request of a period is sent, and the period is sent
	// only once it returns nil: a new leader that restores the committed
	// value therefore never sends a period again, and skips at most the one
	// that was in flight. Nil disables the watermark (one node, tests).
	Commit func(ctx context.Context, start time.Time) error
	// CommitSettled writes "settled up to start" through raft once the last
	// request of a period was sent or dropped, so a new leader can tell
	// whether the newest committed period was still in flight (counted
	// lost, reason in_flight). Nil disables it.
	CommitSettled func(ctx context.Context, start time.Time) error
	// TakeoverGrace is --publish-takeover-grace: after Takeover, periods
	// that ended before it runs out wait for it, so that agents that lost
	// their stream (their backoff reaches 10 s) reconnect and resend their
	// buffered samples before those periods are rebuilt.
	TakeoverGrace time.Duration
	// CatchUpLimit is how far back a new leader rebuilds periods: no node
	// keeps samples longer (ingest's ring and max age, 15 min).
	CatchUpLimit time.Duration
	// Registerer receives the publisher's counters; nil keeps them private.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is RunPeriods' clock.
	Now func() time.Time
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	return Config{
		Cluster:          "shoal",
		Interval:         10 * time.Second,
		QueueSize:        60,
		MaxDatums:        MaxDatumsPerRequest,
		MaxBytes:         MaxRequestBytes - requestOverhead,
		StandardMetrics:  DefaultStandardMetrics,
		MaxCustomMetrics: DefaultMaxCustomMetrics,
		RetryBase:        500 * time.Millisecond,
		RetryMax:         30 * time.Second,
		TakeoverGrace:    15 * time.Second,
		CatchUpLimit:     15 * time.Minute,
		Now:              time.Now,
	}
}

// Validate reports the first wrong field and why.
func (c Config) Validate() error {
	switch {
	case c.Cluster == "":
		return errors.New("cluster: must not be empty")
	case c.Interval < time.Second:
		return fmt.Errorf("interval (%v) must be >= 1s", c.Interval)
	case c.QueueSize < 1:
		return fmt.Errorf("queue size (%d) must be >= 1", c.QueueSize)
	case c.MaxDatums < 1 || c.MaxDatums > MaxDatumsPerRequest:
		return fmt.Errorf("max datums (%d) must be between 1 and %d", c.MaxDatums, MaxDatumsPerRequest)
	case c.MaxBytes < 1024 || c.MaxBytes > MaxRequestBytes-requestOverhead:
		return fmt.Errorf("max bytes (%d) must be between 1024 and %d", c.MaxBytes, MaxRequestBytes-requestOverhead)
	case c.Custom == nil && c.MaxCustomMetrics < 0:
		return fmt.Errorf("max custom metrics (%d) must be >= 0", c.MaxCustomMetrics)
	case c.RetryBase <= 0:
		return fmt.Errorf("retry base (%v) must be > 0", c.RetryBase)
	case c.RetryMax < c.RetryBase:
		return fmt.Errorf("retry max (%v) must be >= retry base (%v)", c.RetryMax, c.RetryBase)
	case c.TakeoverGrace < 0 || c.TakeoverGrace > 5*time.Minute:
		return fmt.Errorf("takeover grace (%v) must be between 0 and 5m", c.TakeoverGrace)
	case c.CatchUpLimit < c.Interval:
		return fmt.Errorf("catch-up limit (%v) must be >= the interval (%v)", c.CatchUpLimit, c.Interval)
	case c.Now == nil:
		return errors.New("now: required")
	}
	for _, m := range c.StandardMetrics {
		if IsCustom(m) {
			return fmt.Errorf("standard metrics: %q is not a vocabulary metric", m)
		}
	}
	return nil
}

// Errors Publish returns.
var (
	ErrAlreadyPublished = errors.New("period already published")
	ErrMisaligned       = errors.New("period start not aligned to the interval")
	ErrBadPeriod        = errors.New("bad period")
	ErrCommit           = errors.New("commit publish watermark")
)

// Publisher queues periods and sends them from Run. Publish never blocks on
// the network.
type Publisher struct {
	api    API
	cfg    Config
	custom *CustomMetrics
	log    *slog.Logger
	m      publisherMetrics
	tm     takeoverMetrics

	mu        sync.Mutex
	queue     []request
	accepted  time.Time // start of the newest period queued
	committed time.Time // start of the newest period whose watermark is committed
	wake      chan struct{}

	// The term's takeover (zero before one): periods ending by catchUpUntil
	// are catch-up periods, held until then.
	takeoverAt, catchUpUntil time.Time
	// pendingLost are loss records not yet handed to CloudWatch; lostLog
	// the newest ones, for Lost.
	pendingLost, lostLog []Loss
	lastLost             time.Time // the newest period counted lost for a drop
	settleDue, settled   time.Time // newest period settled; newest committed as settled
}

type publisherMetrics struct {
	droppedBatches *prometheus.CounterVec
	droppedDatums  prometheus.Counter
	requests       *prometheus.CounterVec
	datums         prometheus.Counter
	queued         prometheus.Gauge
}

// New returns a Publisher; start it with Run.
func New(api API, cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Publisher{api: api, cfg: cfg, custom: cfg.Custom, log: cfg.Logger, wake: make(chan struct{}, 1), tm: newTakeoverMetrics()}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.custom == nil {
		c, err := NewCustomMetrics(cfg.MaxCustomMetrics, cfg.Registerer)
		if err != nil {
			return nil, err
		}
		p.custom = c
	}
	p.m = publisherMetrics{
		droppedBatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_publish_dropped_batches_total",
			Help: "PutMetricData batches dropped: queue_full (the oldest made room) or rejected (CloudWatch refused it for good).",
		}, []string{"reason"}),
		droppedDatums: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_publish_dropped_datums_total", Help: "Datums in dropped batches.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_publish_requests_total", Help: "PutMetricData requests by result (ok or error).",
		}, []string{"result"}),
		datums: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_publish_datums_total", Help: "Datums CloudWatch accepted.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_publish_queue_batches", Help: "Batches waiting to be sent.",
		}),
	}
	// Touch the labels so the series exist (at zero) before the first drop.
	p.m.droppedBatches.WithLabelValues("queue_full")
	p.m.droppedBatches.WithLabelValues("rejected")
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{p.m.droppedBatches, p.m.droppedDatums, p.m.requests, p.m.datums, p.m.queued, p.tm.lost, p.tm.rebuilt} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register publisher metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Restore sets the watermark a new leader read from raft: periods starting
// at or before upTo are refused by Publish, and the next one to publish is
// NextPeriod. Call it before the first Publish.
func (p *Publisher) Restore(upTo time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if upTo.After(p.accepted) {
		p.accepted = upTo
	}
	if upTo.After(p.committed) {
		p.committed = upTo
	}
}

// Committed returns the start of the newest period whose watermark was
// committed (zero before any).
func (p *Publisher) Committed() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.committed
}

// NextPeriod returns the start of the next period to publish: the one after
// the newest accepted, or, before any, the last complete period at now.
func (p *Publisher) NextPeriod(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.accepted.IsZero() {
		return now.Truncate(p.cfg.Interval).Add(-p.cfg.Interval)
	}
	return p.accepted.Add(p.cfg.Interval)
}

// QueueLen returns how many requests wait to be sent.
func (p *Publisher) QueueLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// Publish queues one period. It refuses a period that is not after the
// newest one accepted (or restored), so no period goes out twice, and one
// whose start is not a multiple of the interval. It never waits: when the
// queue is full the oldest requests are dropped and counted.
func (p *Publisher) Publish(per Period) error {
	if !per.Start.Equal(per.Start.Truncate(p.cfg.Interval)) {
		return fmt.Errorf("%w: %s is not a multiple of %v", ErrMisaligned, per.Start.UTC().Format(time.RFC3339Nano), p.cfg.Interval)
	}
	seen := map[string]bool{}
	for i, f := range per.Fleets {
		switch {
		case f.Fleet == "":
			return fmt.Errorf("%w: fleets[%d].fleet: must not be empty", ErrBadPeriod, i)
		case f.Group == "":
			return fmt.Errorf("%w: fleets[%d].group (fleet %q): must not be empty", ErrBadPeriod, i, f.Fleet)
		case seen[f.Fleet]:
			return fmt.Errorf("%w: fleets[%d].fleet: %q listed twice", ErrBadPeriod, i, f.Fleet)
		}
		seen[f.Fleet] = true
	}
	p.mu.Lock()
	accepted := p.accepted
	p.mu.Unlock()
	if !accepted.IsZero() && !per.Start.After(accepted) {
		return fmt.Errorf("%w: %s is not after %s", ErrAlreadyPublished, per.Start.UTC().Format(time.RFC3339), accepted.UTC().Format(time.RFC3339))
	}
	reqs := p.build(per)

	p.mu.Lock()
	if !p.accepted.IsZero() && !per.Start.After(p.accepted) {
		p.mu.Unlock()
		return fmt.Errorf("%w: %s (raced)", ErrAlreadyPublished, per.Start.UTC().Format(time.RFC3339))
	}
	p.accepted = per.Start
	p.queue = append(p.queue, reqs...)
	for len(p.queue) > p.cfg.QueueSize {
		p.dropLocked(p.queue[0], "queue_full")
		p.queue = p.queue[1:]
	}
	p.m.queued.Set(float64(len(p.queue)))
	p.mu.Unlock()

	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

func (p *Publisher) dropLocked(r request, reason string) {
	p.m.droppedBatches.WithLabelValues(reason).Inc()
	p.m.droppedDatums.Add(float64(len(r.datums)))
	p.log.Warn("dropped CloudWatch batch", "reason", reason, "period", r.period, "datums", len(r.datums))
	if !r.period.Equal(p.lastLost) {
		p.lastLost = r.period
		p.lostLocked(Loss{Start: r.period, Reason: reason, Count: 1})
	}
	if r.last && r.period.After(p.settleDue) {
		p.settleDue = r.period
	}
}

// build turns a period into requests: the heartbeat, then each fleet's
// series (fleets, metrics and instances in name order, so the batches of a
// period are deterministic), split under the request limits.
func (p *Publisher) build(per Period) []request {
	res := int32(60)
	if p.cfg.Interval < time.Minute {
		res = 1
	}
	standard := map[string]bool{}
	for _, m := range p.cfg.StandardMetrics {
		standard[m] = true
	}
	s := &splitter{maxDatums: p.cfg.MaxDatums, maxBytes: p.cfg.MaxBytes, period: per.Start}
	one := Stats{SampleCount: 1, Sum: 1, Min: 1, Max: 1}
	ts := sdkaws.Time(per.Start)
	s.add(datum(HeartbeatMetric, "Count", ts, one, res, dims(DimCluster, p.cfg.Cluster)))
	for _, l := range per.Lost {
		n := float64(l.Count)
		// CloudWatch refuses a datum older than two weeks, and with it the
		// whole request: the heartbeat and the period's first series. A
		// loss older than that (the cluster was down for weeks, or its
		// watermark came back from an old backup) is recorded at the oldest
		// time CloudWatch still takes.
		s.add(datum(PeriodsLostMetric, "Count", sdkaws.Time(latest(l.Start, per.Start.Add(-maxDatumAge))), Stats{SampleCount: 1, Sum: n, Min: n, Max: n}, res, dims(DimCluster, p.cfg.Cluster)))
	}

	fleets := append([]FleetStats(nil), per.Fleets...)
	sortFleets(fleets)
	for _, f := range fleets {
		publishable := func(metric string, st Stats) bool {
			if st.SampleCount <= 0 {
				return false // CloudWatch refuses an empty statistic set
			}
			if !finite(st.SampleCount, st.Sum, st.Min, st.Max) {
				// One NaN would make CloudWatch refuse the whole request,
				// every other fleet's series with it.
				p.log.Warn("non-finite statistics not published", "fleet", f.Fleet, "metric", metric)
				return false
			}
			if !IsCustom(metric) {
				return standard[metric]
			}
			if err := p.custom.Admit(f.Fleet, metric); err != nil {
				p.log.Warn("custom metric not published", "fleet", f.Fleet, "err", err)
				return false
			}
			return true
		}
		// Datums share their dimension slices and timestamp: the SDK only
		// reads them.
		fleetDims := dims(DimGroup, f.Group, DimCluster, p.cfg.Cluster)
		for _, m := range sortedKeys(f.Metrics) {
			if st := f.Metrics[m]; publishable(m, st) {
				s.add(datum(CloudWatchName(m), unitOf(m), ts, st, res, fleetDims))
			}
		}
		if !f.PerInstance {
			continue
		}
		for _, id := range sortedKeys(f.Instances) {
			instDims := append(fleetDims[:len(fleetDims):len(fleetDims)], dims(DimInstance, id)...)
			for _, m := range sortedKeys(f.Instances[id]) {
				if st := f.Instances[id][m]; publishable(m, st) {
					s.add(datum(CloudWatchName(m), unitOf(m), ts, st, res, instDims))
				}
			}
		}
	}
	return s.done()
}

// maxDatumAge is how old a datum CloudWatch still accepts (two weeks),
// less an hour for the time a request may wait in the queue.
const maxDatumAge = 14*24*time.Hour - time.Hour

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

func sortFleets(fs []FleetStats) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Fleet < fs[j-1].Fleet; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// Run sends queued requests until ctx ends. Each request is sent with the
// SDK's own retries (throttling, 5xx); when those give up on a retryable
// error the request goes back to the head of the queue and Run waits a
// jittered, growing delay before trying again, so a throttled CloudWatch is
// not hammered and a long outage ends in drop-oldest rather than unbounded
// memory. A request CloudWatch refuses for good is dropped and counted.
func (p *Publisher) Run(ctx context.Context) error {
	failures := 0
	for {
		r, ok := p.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-p.wake:
				continue
			}
		}
		err := p.send(ctx, r)
		if err == nil {
			failures = 0
			if r.last {
				p.mu.Lock()
				if r.period.After(p.settleDue) {
					p.settleDue = r.period
				}
				p.mu.Unlock()
			}
			p.settle(ctx)
			continue
		}
		if ctx.Err() != nil {
			p.requeue(r)
			return ctx.Err()
		}
		if cloud.Classify(err) == cloud.ClassFatal && !errors.Is(err, ErrCommit) {
			p.log.Error("CloudWatch refused a batch", "period", r.period, "datums", len(r.datums), "err", err)
			p.mu.Lock()
			p.dropLocked(r, "rejected")
			p.mu.Unlock()
			p.settle(ctx)
			failures = 0
			continue
		}
		p.log.Warn("CloudWatch batch failed; will retry", "period", r.period, "err", err)
		p.requeue(r)
		failures++
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.backoff(failures)):
		}
	}
}

// backoff is full-jitter exponential: uniform in [0, min(max, base·2^(n-1))].
func (p *Publisher) backoff(n int) time.Duration {
	d := p.cfg.RetryMax
	if n < 31 {
		if e := p.cfg.RetryBase << (n - 1); e > 0 && e < d {
			d = e
		}
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

func (p *Publisher) pop() (request, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return request{}, false
	}
	r := p.queue[0]
	p.queue = p.queue[1:]
	p.m.queued.Set(float64(len(p.queue)))
	return r, true
}

// requeue puts a failed request back at the head, unless the queue filled up
// meanwhile: then it is the oldest and is dropped.
func (p *Publisher) requeue(r request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) >= p.cfg.QueueSize {
		p.dropLocked(r, "queue_full")
		return
	}
	p.queue = append([]request{r}, p.queue...)
	p.m.queued.Set(float64(len(p.queue)))
}

func (p *Publisher) send(ctx context.Context, r request) error {
	p.mu.Lock()
	needCommit := p.cfg.Commit != nil && r.period.After(p.committed)
	p.mu.Unlock()
	if needCommit {
		if err := p.cfg.Commit(ctx, r.period); err != nil {
			return fmt.Errorf("%w up to %s: %w", ErrCommit, r.period.UTC().Format(time.RFC3339), err)
		}
		p.mu.Lock()
		if r.period.After(p.committed) {
			p.committed = r.period
		}
		p.mu.Unlock()
	}
	_, err := p.api.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{
		Namespace:  sdkaws.String(Namespace),
		MetricData: r.datums,
	})
	if err != nil {
		p.m.requests.WithLabelValues("error").Inc()
		return awscloud.Translate(OpPutMetricData, err)
	}
	p.m.requests.WithLabelValues("ok").Inc()
	p.m.datums.Add(float64(len(r.datums)))
	return nil
}

// datumsOf is for tests and debugging: the datums of queued requests.
func datumsOf(rs []request) []types.MetricDatum {
	var out []types.MetricDatum
	for _, r := range rs {
		out = append(out, r.datums...)
	}
	return out
}

package publish

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// ringSource is what a new leader's ingestion holds: per fleet, the
// periods (by start) for which it has cpu samples.
type ringSource struct {
	fleets  []*shoalv1.Fleet
	samples map[string]map[time.Time]bool
}

func (s *ringSource) Fleets() []*shoalv1.Fleet { return s.fleets }

func (s *ringSource) PeriodStats(fleet string, from, _ time.Time) (map[string]Stats, map[string]map[string]Stats) {
	if !s.samples[fleet][from] {
		return map[string]Stats{}, nil
	}
	return map[string]Stats{"cpu": {SampleCount: 4, Sum: 200, Min: 40, Max: 60}}, nil
}

// The LB reports a request rate whether or not any agent sample came.
func (s *ringSource) RequestsPerTarget(string) (float64, bool) { return 3, true }

func periodsAt(offsets ...int) map[time.Time]bool {
	out := map[time.Time]bool{}
	for _, o := range offsets {
		out[t0.Add(time.Duration(o)*time.Second)] = true
	}
	return out
}

// queuedPeriods are the distinct periods in the queue, in order.
func queuedPeriods(p *Publisher) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []time.Time
	for _, r := range p.queue {
		if len(out) == 0 || !out[len(out)-1].Equal(r.period) {
			out = append(out, r.period)
		}
	}
	return out
}

// lostDatums are the PeriodsLost datums queued: timestamp → value.
func lostDatums(p *Publisher) map[time.Time]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[time.Time]float64{}
	for _, d := range datumsOf(p.queue) {
		if sdkaws.ToString(d.MetricName) == PeriodsLostMetric {
			out[sdkaws.ToTime(d.Timestamp).UTC()] += sdkaws.ToFloat64(d.StatisticValues.Sum)
		}
	}
	return out
}

func lost(p *Publisher, reason string) float64 {
	return testutil.ToFloat64(p.tm.lost.WithLabelValues(reason))
}

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// TestTakeoverRebuildsAfterTheGraceAndCountsWhatItCannot: the old leader
// committed and sent period 0 and died at about 45 s; the new leader takes
// over at 45 s. It publishes nothing until the grace (15 s) has let the
// agents reconnect and resend their buffers, then every period after the
// watermark once: those with samples of each reporting fleet as rebuilt,
// the one without (20 s) counted lost and recorded in CloudWatch. A fleet
// that reports nowhere (api) is not expected.
func TestTakeoverRebuildsAfterTheGraceAndCountsWhatItCannot(t *testing.T) {
	src := &ringSource{
		fleets:  []*shoalv1.Fleet{{Name: "api", Asg: "api-asg"}, {Name: "web", Asg: "web-asg"}},
		samples: map[string]map[time.Time]bool{"web": periodsAt(10, 30, 40, 50)},
	}
	p := newTestPublisher(t, nil, func(c *Config) { c.CommitSettled = func(context.Context, time.Time) error { return nil } })
	p.Takeover(Watermarks{PublishedUpTo: t0, SettledUpTo: t0}, at(45))
	p.closeDue(at(59), src)
	if n := p.QueueLen(); n != 0 {
		t.Fatalf("%d requests queued within the grace, want none", n)
	}
	p.closeDue(at(60), src)
	if got, want := queuedPeriods(p), []time.Time{at(10), at(20), at(30), at(40), at(50)}; !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Fatalf("queued periods %v, want %v", got, want)
	}
	if got := lost(p, LostFailover); got != 1 {
		t.Errorf("lost (failover) = %v, want 1", got)
	}
	// 10 s and 30 s ended before the takeover and were rebuilt; 20 s is
	// lost; 40 s and 50 s are this leader's own.
	if got := testutil.ToFloat64(p.tm.rebuilt); got != 2 {
		t.Errorf("rebuilt = %v, want 2", got)
	}
	if got := lostDatums(p); len(got) != 1 || got[at(20)] != 1 {
		t.Errorf("PeriodsLost datums %v, want one at %v", got, at(20))
	}
	if l := p.Lost(); len(l) != 1 || !l[0].Start.Equal(at(20)) || l[0].Reason != LostFailover || !slices.Equal(l[0].Fleets, []string{"web"}) {
		t.Errorf("Lost() = %+v", l)
	}
	for _, r := range []string{LostInFlight, LostExpired, LostQueueFull, LostRejected} {
		if got := lost(p, r); got != 0 {
			t.Errorf("lost (%s) = %v, want 0", r, got)
		}
	}
	// After the catch-up every period closes as it ends, and none is
	// judged again.
	p.closeDue(at(70), src)
	if got := queuedPeriods(p); !got[len(got)-1].Equal(at(60)) || lost(p, LostFailover) != 1 {
		t.Errorf("after the catch-up: periods %v, lost %v", got, lost(p, LostFailover))
	}
}

// TestTakeoverAccountsInFlightAndExpired: a watermark committed but not
// settled is counted in flight (never republished) and recorded with the
// next period; a watermark older than the catch-up limit counts the periods
// no node can rebuild and restarts at the limit.
func TestTakeoverAccountsInFlightAndExpired(t *testing.T) {
	settled := func(context.Context, time.Time) error { return nil }
	src := &ringSource{fleets: []*shoalv1.Fleet{{Name: "web", Asg: "web-asg"}}, samples: map[string]map[time.Time]bool{"web": periodsAt(10, 20, 30)}}

	p := newTestPublisher(t, nil, func(c *Config) { c.CommitSettled = settled; c.TakeoverGrace = 0 })
	p.Takeover(Watermarks{PublishedUpTo: at(0), SettledUpTo: at(-10)}, at(20))
	if got := lost(p, LostInFlight); got != 1 {
		t.Fatalf("lost (in_flight) = %v, want 1", got)
	}
	if next := p.NextPeriod(at(20)); !next.Equal(at(10)) {
		t.Fatalf("next period %v: the in-flight one must not be sent again", next)
	}
	p.closeDue(at(20), src)
	if got := lostDatums(p); len(got) != 1 || got[at(0)] != 1 {
		t.Fatalf("PeriodsLost datums %v, want one for the in-flight period", got)
	}

	// Settled up to the watermark: nothing in flight.
	q := newTestPublisher(t, nil, func(c *Config) { c.CommitSettled = settled })
	q.Takeover(Watermarks{PublishedUpTo: at(0), SettledUpTo: at(0)}, at(20))
	if got := lost(q, LostInFlight); got != 0 {
		t.Fatalf("lost (in_flight) = %v with the period settled", got)
	}

	// Without CommitSettled (one node) nothing is known, nothing counted.
	r := newTestPublisher(t, nil, nil)
	r.Takeover(Watermarks{PublishedUpTo: at(0)}, at(20))
	if got := lost(r, LostInFlight); got != 0 {
		t.Fatalf("lost (in_flight) = %v without a settled watermark to read", got)
	}

	e := newTestPublisher(t, nil, func(c *Config) { c.CommitSettled = settled })
	now := at(3600)
	e.Takeover(Watermarks{PublishedUpTo: at(0), SettledUpTo: at(0)}, now)
	oldest := now.Add(-15 * time.Minute)
	// Periods 10 s … oldest-10 s: (3600-900)/10 - 1 of them.
	if got := lost(e, LostExpired); got != 269 {
		t.Fatalf("lost (expired) = %v, want 269", got)
	}
	if next := e.NextPeriod(now); !next.Equal(oldest) {
		t.Fatalf("next period %v, want the oldest rebuildable %v", next, oldest)
	}
}

// TestTakeoverForgetsItsOldTerm: what a node queued in an earlier term is
// dropped (the periods after the watermark are rebuilt from the samples),
// and it restarts at the committed watermark, even one behind what it had
// accepted then. The cluster's first leader has no predecessor: it neither
// waits nor counts, and starts at the last complete period.
func TestTakeoverForgetsItsOldTerm(t *testing.T) {
	p := newTestPublisher(t, nil, nil)
	for s := 0; s <= 50; s += 10 {
		if err := p.Publish(Period{Start: at(s)}); err != nil {
			t.Fatal(err)
		}
	}
	p.Takeover(Watermarks{PublishedUpTo: at(20), SettledUpTo: at(20)}, at(65))
	if n := p.QueueLen(); n != 0 {
		t.Fatalf("%d stale requests kept", n)
	}
	if next := p.NextPeriod(at(65)); !next.Equal(at(30)) {
		t.Fatalf("next period %v, want %v", next, at(30))
	}

	first := newTestPublisher(t, nil, nil)
	first.Takeover(Watermarks{}, at(65))
	src := &ringSource{fleets: []*shoalv1.Fleet{{Name: "web", Asg: "web-asg"}}, samples: map[string]map[time.Time]bool{"web": periodsAt(60)}}
	first.closeDue(at(70), src)
	if got := queuedPeriods(first); !slices.EqualFunc(got, []time.Time{at(60)}, time.Time.Equal) || lost(first, LostFailover) != 0 {
		t.Fatalf("first leader queued %v and lost %v; want the last complete period at once, nothing counted", got, lost(first, LostFailover))
	}
}

// settleLog records CommitSettled calls.
type settleLog struct {
	mu  sync.Mutex
	got []time.Time
}

func (s *settleLog) commit(_ context.Context, start time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, start)
	return nil
}

func (s *settleLog) list() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// TestSettledOnceAPeriodIsOut: the settled watermark moves only when a
// period's last request has gone, once per period; dropped batches count
// their period lost once and settle it too.
func TestSettledOnceAPeriodIsOut(t *testing.T) {
	s := &cborServer{}
	cw := startCBOR(t, s, 1)
	log := &settleLog{}
	p := newTestPublisher(t, cw, func(c *Config) { c.CommitSettled = log.commit; c.MaxDatums = 4 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	per := bigPeriod(10) // three requests of at most 4 datums
	if err := p.Publish(per); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "three requests sent", func() bool { return len(s.putRequests()) == 3 })
	eventually(t, 5*time.Second, "the period settled", func() bool { return len(log.list()) == 1 })
	cancel()
	<-done
	if got := log.list(); !got[0].Equal(t0) {
		t.Fatalf("settled %v, want %v", got, t0)
	}

	q := newTestPublisher(t, nil, func(c *Config) { c.QueueSize = 1; c.MaxDatums = 4 })
	for _, start := range []time.Time{at(0), at(10)} {
		b := bigPeriod(8) // two requests
		b.Start = start
		if err := q.Publish(b); err != nil {
			t.Fatal(err)
		}
	}
	if got := lost(q, LostQueueFull); got != 2 {
		t.Fatalf("lost (queue_full) = %v, want 2: each period once, whatever its batches", got)
	}
	q.mu.Lock()
	due := q.settleDue
	q.mu.Unlock()
	if !due.Equal(at(0)) {
		t.Fatalf("settle due %v, want %v (period 0 wholly dropped)", due, at(0))
	}
	// The loss records go out with the next period.
	q.mu.Lock()
	pending := slices.Clone(q.pendingLost)
	q.mu.Unlock()
	if len(pending) != 2 || !pending[0].Start.Equal(at(0)) || !pending[1].Start.Equal(at(10)) {
		t.Fatalf("pending loss records %+v", pending)
	}
	per2 := Period{Start: at(20), Lost: pending}
	var lostTS []time.Time
	for _, r := range q.build(per2) {
		for _, d := range r.datums {
			if sdkaws.ToString(d.MetricName) == PeriodsLostMetric {
				lostTS = append(lostTS, sdkaws.ToTime(d.Timestamp))
				if !slices.EqualFunc(d.Dimensions, dims(DimCluster, "shoal"), func(a, b types.Dimension) bool {
					return sdkaws.ToString(a.Name) == sdkaws.ToString(b.Name) && sdkaws.ToString(a.Value) == sdkaws.ToString(b.Value)
				}) {
					t.Fatalf("PeriodsLost dimensions %v", d.Dimensions)
				}
			}
		}
	}
	if !slices.EqualFunc(lostTS, []time.Time{at(0), at(10)}, time.Time.Equal) {
		t.Fatalf("PeriodsLost datums at %v", lostTS)
	}
}

// TestLossOlderThanCloudWatchTakesIsRecordedAtItsLimit: after weeks with
// the whole cluster down, the in-flight and expired periods start weeks
// back. CloudWatch refuses a datum older than two weeks and with it the
// whole request (the heartbeat too), so their records go at the oldest
// time it still takes, and every datum of the request is within it.
func TestLossOlderThanCloudWatchTakesIsRecordedAtItsLimit(t *testing.T) {
	src := &ringSource{fleets: []*shoalv1.Fleet{{Name: "web", Asg: "web-asg"}}, samples: map[string]map[time.Time]bool{}}
	p := newTestPublisher(t, nil, func(c *Config) {
		c.CommitSettled = func(context.Context, time.Time) error { return nil }
		c.TakeoverGrace = 0
		c.QueueSize = 1000 // the 90 periods of the catch-up all stay queued
	})
	now := at(30 * 24 * 3600)
	p.Takeover(Watermarks{PublishedUpTo: at(0), SettledUpTo: at(-10)}, now)
	if lost(p, LostInFlight) != 1 || lost(p, LostExpired) == 0 {
		t.Fatalf("lost: in_flight %v, expired %v", lost(p, LostInFlight), lost(p, LostExpired))
	}
	p.closeDue(now, src)
	p.mu.Lock()
	ds := datumsOf(p.queue)
	p.mu.Unlock()
	limit := now.Add(-14 * 24 * time.Hour)
	lostRecords := 0
	for _, d := range ds {
		if ts := sdkaws.ToTime(d.Timestamp); ts.Before(limit) {
			t.Errorf("%s datum at %v, before %v: CloudWatch would refuse the request", sdkaws.ToString(d.MetricName), ts.UTC(), limit.UTC())
		}
		if sdkaws.ToString(d.MetricName) == PeriodsLostMetric {
			lostRecords++
		}
	}
	if lostRecords != 2 {
		t.Errorf("%d PeriodsLost datums, want 2 (in flight, expired)", lostRecords)
	}
}

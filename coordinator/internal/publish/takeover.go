package publish

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SettledKey is the FSM watermark holding the start of the newest period
// whose every request was sent or dropped (and counted). Next to WatermarkKey
// it tells a new leader whether the period its predecessor committed last was
// still in flight.
const SettledKey = "cloudwatch.settled_up_to"

// PeriodsLostMetric is the cluster's record of lost periods in CloudWatch:
// one datum per lost period (value 1) at that period's timestamp, or one
// datum whose value is the number of periods too old to rebuild. A record
// older than CloudWatch accepts (two weeks) is put at the oldest time it
// does. It has the ShoalCluster dimension only, as the heartbeat.
const PeriodsLostMetric = "PeriodsLost"

// Why a period was lost (the reason label of
// shoal_cloudwatch_periods_lost_total).
const (
	// LostInFlight: the previous leader committed the period's watermark
	// but not that it finished sending it. It may be in CloudWatch in part
	// or whole; it is never sent again, since that could double it.
	LostInFlight = "in_flight"
	// LostFailover: a period after the watermark that the new leader
	// rebuilt from its own samples, but in which a fleet that reports now
	// has none (its samples reached only the old leader, or its agents came
	// back after the takeover grace). It is published with what there is.
	LostFailover = "failover"
	// LostExpired: periods older than CatchUpLimit when leadership came,
	// past what any node keeps (the whole cluster was down).
	LostExpired = "expired"
	// LostQueueFull and LostRejected: a batch of the period was dropped.
	LostQueueFull = "queue_full"
	LostRejected  = "rejected"
)

// lostReasons are every reason, so each series exists at zero.
var lostReasons = []string{LostInFlight, LostFailover, LostExpired, LostQueueFull, LostRejected}

// Loss is one lost period (or, for LostExpired, Count periods from Start).
type Loss struct {
	Start  time.Time
	Reason string
	Count  int
	// Fleets are the fleets without samples (LostFailover).
	Fleets []string
}

// Watermarks are what a new leader reads from raft; zero times are unset.
type Watermarks struct {
	PublishedUpTo time.Time
	SettledUpTo   time.Time
}

// maxPendingLost bounds the loss records waiting to go to CloudWatch.
const maxPendingLost = 256

type takeoverMetrics struct {
	lost    *prometheus.CounterVec
	rebuilt prometheus.Counter
}

func newTakeoverMetrics() takeoverMetrics {
	m := takeoverMetrics{
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_cloudwatch_periods_lost_total",
			Help: "CloudWatch periods lost or possibly lost, by reason: in_flight, failover, expired, queue_full, rejected (ARCHITECTURE.md, \"Publishing across a leader change\").",
		}, []string{"reason"}),
		rebuilt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_cloudwatch_periods_rebuilt_total",
			Help: "Periods of a previous leader's term that a new leader published from its own samples.",
		}),
	}
	for _, r := range lostReasons {
		m.lost.WithLabelValues(r)
	}
	return m
}

// Takeover starts a term of leadership: it forgets what a previous term of
// this node left queued (the periods after the watermark are rebuilt from
// the samples, the others were someone else's to send), restarts from the
// committed watermark, accounts for the period that was in flight and for
// periods too old to rebuild, and holds the periods that ended before
// now+TakeoverGrace until then, so that agents that lost their stream
// reconnect and resend their buffered samples first. Call it before
// RunPeriods in each term.
func (p *Publisher) Takeover(w Watermarks, now time.Time) {
	p.mu.Lock()
	stale := len(p.queue)
	p.queue = nil
	p.m.queued.Set(0)
	p.accepted, p.committed = w.PublishedUpTo, w.PublishedUpTo
	p.takeoverAt, p.catchUpUntil = now, now.Add(p.cfg.TakeoverGrace)
	p.settled, p.settleDue, p.lastLost = w.SettledUpTo, w.SettledUpTo, time.Time{}
	if w.PublishedUpTo.IsZero() {
		// The cluster's first publisher has no predecessor: nothing to
		// wait for, rebuild or count. It starts with the last period
		// complete, as ever.
		p.takeoverAt, p.catchUpUntil = time.Time{}, time.Time{}
	}
	var losses []Loss
	if !w.PublishedUpTo.IsZero() && p.cfg.CommitSettled != nil && w.SettledUpTo.Before(w.PublishedUpTo) {
		losses = append(losses, Loss{Start: w.PublishedUpTo, Reason: LostInFlight, Count: 1})
	}
	if !w.PublishedUpTo.IsZero() {
		first := w.PublishedUpTo.Add(p.cfg.Interval)
		oldest := now.Add(-p.cfg.CatchUpLimit).Truncate(p.cfg.Interval)
		if first.Before(oldest) {
			n := int(oldest.Sub(first) / p.cfg.Interval)
			losses = append(losses, Loss{Start: first, Reason: LostExpired, Count: n})
			p.accepted = oldest.Add(-p.cfg.Interval)
		}
	}
	for _, l := range losses {
		p.lostLocked(l)
	}
	until := p.catchUpUntil
	p.mu.Unlock()
	p.log.Info("publish: taking over CloudWatch periods", "published_up_to", w.PublishedUpTo, "settled_up_to", w.SettledUpTo,
		"catch_up_from", p.NextPeriod(now), "hold_until", until, "stale_requests_dropped", stale)
}

// lostLocked counts a loss, logs it and keeps its record for CloudWatch.
func (p *Publisher) lostLocked(l Loss) {
	p.tm.lost.WithLabelValues(l.Reason).Add(float64(l.Count))
	p.log.Warn("publish: CloudWatch period lost", "period", l.Start, "reason", l.Reason, "periods", l.Count, "fleets_without_samples", l.Fleets)
	p.lostLog = append(p.lostLog, l)
	if over := len(p.lostLog) - maxPendingLost; over > 0 {
		p.lostLog = p.lostLog[over:]
	}
	p.pendingLost = append(p.pendingLost, l)
	if over := len(p.pendingLost) - maxPendingLost; over > 0 {
		p.pendingLost = p.pendingLost[over:]
	}
}

// Lost returns the newest losses this node accounted (at most 256).
func (p *Publisher) Lost() []Loss {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lostLog)
}

// closeDue hands Publish every period complete at at. Periods that ended
// before the takeover grace ran out are catch-up periods: they wait for the
// grace, and one in which a fleet that reports now has no sample is counted
// lost (and still published with what there is).
func (p *Publisher) closeDue(at time.Time, src Source) {
	p.mu.Lock()
	until, takeoverAt := p.catchUpUntil, p.takeoverAt
	p.mu.Unlock()
	if at.Before(until) {
		return
	}
	var reporting []string
	for {
		start := p.NextPeriod(at)
		end := start.Add(p.cfg.Interval)
		if end.After(at) {
			return
		}
		per := Period{Start: start}
		have := map[string]bool{}
		for _, f := range src.Fleets() {
			fs := p.periodStats(src, f, start, end)
			if sampled(fs) {
				have[f.Name] = true
			}
			if len(fs.Metrics) > 0 {
				per.Fleets = append(per.Fleets, fs)
			}
		}
		var loss *Loss
		if !until.IsZero() && !end.After(until) {
			if reporting == nil {
				reporting = reportingFleets(src, at.Truncate(p.cfg.Interval).Add(-p.cfg.Interval), p.cfg.Interval)
			}
			var missing []string
			for _, f := range reporting {
				if !have[f] {
					missing = append(missing, f)
				}
			}
			if len(missing) > 0 {
				loss = &Loss{Start: start, Reason: LostFailover, Count: 1, Fleets: missing}
			}
		}
		p.mu.Lock()
		if loss != nil {
			p.lostLocked(*loss)
		}
		per.Lost, p.pendingLost = p.pendingLost, nil
		p.mu.Unlock()
		if err := p.Publish(per); err != nil {
			p.mu.Lock()
			p.pendingLost = append(per.Lost, p.pendingLost...)
			p.mu.Unlock()
			if !errors.Is(err, ErrAlreadyPublished) {
				p.log.Warn("publish: period", "period", start, "err", err)
			}
			return
		}
		if loss == nil && !until.IsZero() && !end.After(takeoverAt) {
			p.tm.rebuilt.Inc()
		}
	}
}

// sampled says whether a fleet's period holds any agent sample (the LBs'
// requests_per_target is there with or without one).
func sampled(fs FleetStats) bool {
	for m := range fs.Metrics {
		if m != "requests_per_target" {
			return true
		}
	}
	return false
}

// reportingFleets are the fleets with samples in [from, from+interval),
// sorted.
func reportingFleets(src Source, from time.Time, interval time.Duration) []string {
	out := []string{}
	for _, f := range src.Fleets() {
		st, _ := src.PeriodStats(f.Name, from, from.Add(interval))
		for _, s := range st {
			if s.SampleCount > 0 {
				out = append(out, f.Name)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// settle commits SettledKey up to the newest settled period, if it moved.
func (p *Publisher) settle(ctx context.Context) {
	if p.cfg.CommitSettled == nil {
		return
	}
	p.mu.Lock()
	due := p.settleDue
	done := !due.After(p.settled)
	p.mu.Unlock()
	if done {
		return
	}
	if err := p.cfg.CommitSettled(ctx, due); err != nil {
		// The next leader then counts this period as in flight: a
		// conservative count, never a double publication.
		p.log.Warn("publish: commit settled watermark", "period", due, "err", err)
		return
	}
	p.mu.Lock()
	if due.After(p.settled) {
		p.settled = due
	}
	p.mu.Unlock()
}

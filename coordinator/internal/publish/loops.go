package publish

import (
	"context"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// WatermarkKey is the FSM watermark holding the start of the newest
// CloudWatch period whose publication was committed.
const WatermarkKey = "cloudwatch.published_up_to"

// Fleets lists the replicated fleets (the leader's FSM).
type Fleets interface {
	Fleets() []*shoalv1.Fleet
}

// Source is what the publish loop reads for each period.
type Source interface {
	Fleets
	// PeriodStats is a fleet's statistics over [from, to): per metric, and
	// per instance then metric.
	PeriodStats(fleet string, from, to time.Time) (map[string]Stats, map[string]map[string]Stats)
	// RequestsPerTarget is the LBs' request rate per backend, when known.
	RequestsPerTarget(fleet string) (float64, bool)
}

// RunPeriods hands Publish each complete period until ctx ends. Call
// Takeover with the committed watermarks first, so a new leader neither
// repeats a period nor loses one without counting it.
func (p *Publisher) RunPeriods(ctx context.Context, src Source) {
	t := time.NewTicker(min(p.cfg.Interval/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.closeDue(p.cfg.Now(), src)
	}
}

// periodStats keeps the metrics the fleet may publish: sampled ones, custom
// ones only within the cap, per instance only when the fleet asks for it.
func (p *Publisher) periodStats(src Source, f *shoalv1.Fleet, from, to time.Time) FleetStats {
	fleetStats, perInstance := src.PeriodStats(f.Name, from, to)
	fs := FleetStats{Fleet: f.Name, Group: f.Asg, Metrics: map[string]Stats{}, PerInstance: f.PublishPerInstance}
	for m, s := range fleetStats {
		if s.SampleCount == 0 {
			continue
		}
		if IsCustom(m) {
			if err := p.custom.Admit(f.Name, m); err != nil {
				continue
			}
		}
		fs.Metrics[m] = s
	}
	if rpt, ok := src.RequestsPerTarget(f.Name); ok {
		fs.Metrics["requests_per_target"] = Stats{SampleCount: 1, Sum: rpt, Min: rpt, Max: rpt}
	}
	if f.PublishPerInstance {
		fs.Instances = map[string]map[string]Stats{}
		for id, ms := range perInstance {
			fs.Instances[id] = map[string]Stats{}
			for m, s := range ms {
				if _, ok := fs.Metrics[m]; ok && s.SampleCount > 0 {
					fs.Instances[id][m] = s
				}
			}
		}
	}
	return fs
}

// RunAlarms brings CloudWatch's alarms in step with the fleets' policies
// now and every interval until ctx ends.
func (r *Reconciler) RunAlarms(ctx context.Context, fleets Fleets, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var fas []FleetAlarms
		for _, f := range fleets.Fleets() {
			fas = append(fas, FleetAlarms{Fleet: f.Name, Group: f.Asg, Policy: f.Policy, Actions: f.AlarmActions})
		}
		if ch, err := r.Reconcile(ctx, fas); err != nil {
			if ctx.Err() == nil {
				r.log.Warn("publish: reconcile alarms", "err", err)
			}
		} else if len(ch.Created)+len(ch.Updated)+len(ch.Deleted) > 0 {
			r.log.Info("publish: alarms reconciled", "created", ch.Created, "updated", ch.Updated, "deleted", ch.Deleted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

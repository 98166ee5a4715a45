package console

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// HistoryLen is the chart's length in points, one a second: 15 minutes.
const HistoryLen = 900

// decisionsShown is how many of the newest decisions the page lists (and
// marks on the chart).
const decisionsShown = 50

// fleetProducer builds one fleet's detail page and keeps its chart: one
// point a second, for HistoryLen seconds.
type fleetProducer struct {
	c     *Console
	fleet string

	mu      sync.Mutex
	history []view.ChartPoint // oldest first, at most HistoryLen
	last    *view.ConsoleFleet
	alarms  alarmCache
}

func newFleetProducer(c *Console, fleet string) *fleetProducer {
	return &fleetProducer{c: c, fleet: fleet}
}

// first is the whole page with the whole history: a new viewer's chart
// starts full.
func (p *fleetProducer) first(ctx context.Context) event {
	p.mu.Lock()
	if p.last == nil {
		p.mu.Unlock()
		p.tick(ctx)
		p.mu.Lock()
	}
	snap := *p.last
	snap.History = append([]view.ChartPoint(nil), p.history...)
	p.mu.Unlock()
	return event{name: "snapshot", data: mustJSON(snap)}
}

// tick reads the fleet, adds a point, and returns an update carrying only
// that point.
func (p *fleetProducer) tick(ctx context.Context) *event {
	ev := p.read(p.c.readCtx(ctx))
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(ev.History) == 1 {
		p.history = append(p.history, ev.History[0])
		if n := len(p.history) - HistoryLen; n > 0 {
			p.history = append(p.history[:0], p.history[n:]...)
		}
	}
	p.last = &ev
	return &event{name: "update", data: mustJSON(ev)}
}

func (p *fleetProducer) read(ctx context.Context) view.ConsoleFleet {
	c := p.c
	ev := view.ConsoleFleet{ConsoleHeader: c.header(), Targets: []view.Target{}, History: []view.ChartPoint{},
		Instances: []view.ConsoleInstance{}, Decisions: []view.Decision{}, Alarms: []view.Alarm{}}
	var f *shoalv1.Fleet
	err := c.readState(ctx, &ev.ConsoleHeader, func(ctx context.Context, stale bool) error {
		r, err := c.cfg.API.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: p.fleet, Stale: stale})
		if err == nil {
			f = r.Fleet
		}
		return err
	})
	if err != nil {
		ev.Errors = append(ev.Errors, "fleet: "+status.Convert(err).Message())
		ev.Fleet.Name = p.fleet
		return ev
	}
	stale := ev.Stale
	ev.Fleet, ev.PolicyWords = view.FleetOf(f), view.PolicyWords(f.Policy)
	metrics := policyMetrics(f.Policy, &ev)
	now := c.cfg.Now()
	pt := view.ChartPoint{T: now.UnixMilli(), Metrics: map[string]float64{}, Desired: f.Desired}

	var ins []*shoalv1.Instance
	if r, err := c.cfg.API.ListInstances(ctx, &shoalv1.ListInstancesRequest{Fleet: p.fleet, Stale: stale}); err == nil {
		ins = r.Instances
	} else {
		ev.Errors = append(ev.Errors, "instances: "+status.Convert(err).Message())
	}
	inFlight := p.inFlight(ctx, stale)
	for _, in := range ins {
		ci := view.ConsoleInstance{Instance: view.InstanceOf(in)}
		switch in.State {
		case shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE:
			pt.InService++
		case shoalv1.InstanceState_INSTANCE_STATE_DRAINING:
			pt.Draining++
			ci.InFlight = inFlight[in.Id]
		}
		ev.Instances = append(ev.Instances, ci)
	}
	if r, err := c.cfg.API.ListDecisions(ctx, &shoalv1.ListDecisionsRequest{Fleet: p.fleet, Limit: decisionsShown, Stale: stale}); err == nil {
		for _, d := range r.Decisions {
			ev.Decisions = append(ev.Decisions, view.DecisionOf(d))
		}
	} else {
		ev.Errors = append(ev.Errors, "decisions: "+status.Convert(err).Message())
	}
	if stale {
		ev.ExplainError = "explain needs the leader"
	} else if x, err := c.cfg.API.ExplainFleet(ctx, &shoalv1.ExplainFleetRequest{Fleet: p.fleet}); err == nil {
		ev.Explain = explainText(x)
		for _, m := range metrics {
			if v, ok := x.Inputs[m]; ok {
				pt.Metrics[m] = v
			}
		}
	} else {
		ev.ExplainError = status.Convert(err).Message()
	}
	if !stale {
		p.mu.Lock()
		ev.Alarms = p.alarms.get(ctx, c, p.fleet)
		p.mu.Unlock()
	}
	for _, a := range ev.Alarms {
		if a.State == "ALARM" {
			pt.Alarm = true
		}
	}
	ev.History = []view.ChartPoint{pt}
	return ev
}

// inFlight is each instance's in-flight requests per LB, from the LB
// reports the leader holds; empty when it cannot be read.
func (p *fleetProducer) inFlight(ctx context.Context, stale bool) map[string]map[string]uint32 {
	out := map[string]map[string]uint32{}
	if stale {
		return out
	}
	r, err := p.c.cfg.API.ListLoadBalancers(ctx, &shoalv1.ListLoadBalancersRequest{Fleet: p.fleet})
	if err != nil {
		return out
	}
	for _, lb := range r.LoadBalancers {
		for _, b := range lb.Backends {
			if out[b.InstanceId] == nil {
				out[b.InstanceId] = map[string]uint32{}
			}
			out[b.InstanceId][lb.Id] = b.InFlight
		}
	}
	return out
}

// policyMetrics lists the metrics the policy acts on and records their
// targets in ev.
func policyMetrics(pol *shoalv1.ScalingPolicy, ev *view.ConsoleFleet) []string {
	var ms []string
	if pol == nil {
		return ms
	}
	for _, t := range pol.TargetTracking {
		ms = append(ms, t.Metric)
		ev.Targets = append(ev.Targets, view.Target{Metric: t.Metric, Target: t.Target})
	}
	for _, s := range pol.StepScaling {
		ms = append(ms, s.Metric)
	}
	return ms
}

// explainText is the `explain` command's text.
func explainText(x *shoalv1.ExplainFleetResponse) string {
	v := view.ExplainOf(x)
	var b strings.Builder
	fmt.Fprintf(&b, "fleet %s: current %d, recommended %d\n", v.Fleet, v.Current, v.Recommended)
	if v.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", v.Reason)
	}
	if v.Blocked != "" {
		fmt.Fprintf(&b, "not acting: %s\n", v.Blocked)
	}
	for _, d := range v.Details {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	keys := make([]string, 0, len(v.Inputs))
	for k := range v.Inputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%-24s %.4g\n", k, v.Inputs[k])
	}
	return b.String()
}

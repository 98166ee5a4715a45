package console

import (
	"context"
	"sort"
	"sync"

	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// clusterProducer builds the cluster page: the status as the leader sees
// it, or as this node does when it has none (GetStatus answers so itself).
type clusterProducer struct{ c *Console }

func (p *clusterProducer) first(ctx context.Context) event { return *p.tick(ctx) }

func (p *clusterProducer) tick(ctx context.Context) *event {
	ctx = p.c.readCtx(ctx)
	ev := view.ConsoleCluster{ConsoleHeader: p.c.header()}
	st, err := p.c.cfg.API.GetStatus(ctx, &shoalv1.GetStatusRequest{})
	if err != nil {
		ev.Stale, ev.StaleReason = true, status.Convert(err).Message()
		st, err = p.c.cfg.API.GetStatus(ctx, &shoalv1.GetStatusRequest{Stale: true})
	}
	if err == nil {
		ev.Status = view.StatusOf(st)
		if st.NoLeader != "" {
			ev.Stale, ev.StaleReason = true, "no leader ("+st.NoLeader+")"
		}
	}
	return &event{name: "cluster", data: mustJSON(ev)}
}

// fleetsProducer builds the fleets page: one card per fleet.
type fleetsProducer struct {
	c      *Console
	mu     sync.Mutex
	alarms alarmCache
}

func (p *fleetsProducer) first(ctx context.Context) event { return *p.tick(ctx) }

func (p *fleetsProducer) tick(ctx context.Context) *event {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx = p.c.readCtx(ctx)
	ev := view.ConsoleFleets{ConsoleHeader: p.c.header(), Fleets: []view.FleetCard{}}
	var fs []*shoalv1.Fleet
	err := p.c.readState(ctx, &ev.ConsoleHeader, func(ctx context.Context, stale bool) error {
		r, err := p.c.cfg.API.ListFleets(ctx, &shoalv1.ListFleetsRequest{Stale: stale})
		if err == nil {
			fs = r.Fleets
		}
		return err
	})
	if err != nil {
		ev.Stale, ev.StaleReason = true, status.Convert(err).Message()
	}
	for _, f := range fs {
		card := view.FleetCard{Fleet: view.FleetOf(f), PolicyWords: view.PolicyWords(f.Policy), Counts: map[string]int{}, Alarms: []view.Alarm{}}
		stale := ev.Stale
		if r, err := p.c.cfg.API.ListInstances(ctx, &shoalv1.ListInstancesRequest{Fleet: f.Name, Stale: stale}); err == nil {
			card.Counts = counts(r.Instances)
		} else {
			card.Error = status.Convert(err).Message()
		}
		if r, err := p.c.cfg.API.ListDecisions(ctx, &shoalv1.ListDecisionsRequest{Fleet: f.Name, Limit: 1, Stale: stale}); err == nil && len(r.Decisions) > 0 {
			d := view.DecisionOf(r.Decisions[len(r.Decisions)-1])
			card.LastDecision = &d
		}
		if !stale {
			card.Alarms = p.alarms.get(ctx, p.c, f.Name)
		}
		ev.Fleets = append(ev.Fleets, card)
	}
	return &event{name: "fleets", data: mustJSON(ev)}
}

// lbsProducer builds the load balancers page from the leader's LB
// sessions (LB streams end on the leader).
type lbsProducer struct{ c *Console }

func (p *lbsProducer) first(ctx context.Context) event { return *p.tick(ctx) }

func (p *lbsProducer) tick(ctx context.Context) *event {
	ctx = p.c.readCtx(ctx)
	ev := view.ConsoleLBs{ConsoleHeader: p.c.header(), LBs: []view.LoadBalancer{}}
	r, err := p.c.cfg.API.ListLoadBalancers(ctx, &shoalv1.ListLoadBalancersRequest{})
	if err != nil {
		ev.Stale, ev.StaleReason = true, status.Convert(err).Message()
		ev.Note = "load balancers report to the leader, and it did not answer"
		return &event{name: "lbs", data: mustJSON(ev)}
	}
	ev.LBs = view.LoadBalancersOf(r.LoadBalancers)
	sort.Slice(ev.LBs, func(i, j int) bool {
		if ev.LBs[i].Fleet != ev.LBs[j].Fleet {
			return ev.LBs[i].Fleet < ev.LBs[j].Fleet
		}
		return ev.LBs[i].ID < ev.LBs[j].ID
	})
	return &event{name: "lbs", data: mustJSON(ev)}
}

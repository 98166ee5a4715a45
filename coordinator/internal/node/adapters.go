package node

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/feed"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/ingest"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
	"github.com/shoal-dev/shoal/coordinator/internal/scaler"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// store adapts a cluster node to what ingestion, the scaler and the publish
// loops read and write: reads from the local FSM, writes through raft
// (forwarded to the leader when need be).
type store struct{ node *cluster.Node }

var (
	_ ingest.Registry = store{}
	_ scaler.Store    = store{}
	_ publish.Fleets  = store{}
)

func (s store) Apply(ctx context.Context, c fsm.Command) (*fsm.Result, error) {
	r, _, err := s.node.Apply(ctx, c.Encode())
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s store) applyErr(ctx context.Context, c fsm.Command) error {
	r, err := s.Apply(ctx, c)
	if err != nil {
		return err
	}
	return r.Error()
}

func (s store) Fleets() []*shoalv1.Fleet { return s.node.FSM().Fleets() }

func (s store) Instances(fleet string) []*shoalv1.Instance { return s.node.FSM().Instances(fleet) }

func (s store) Decisions(fleet string, limit int) ([]*shoalv1.Decision, error) {
	return s.node.FSM().Decisions(fleet, limit)
}

func (s store) LaunchSamples(fleet string) map[string][]time.Duration {
	return s.node.FSM().LaunchSamples(fleet)
}

func (s store) FleetForASG(asg string) (string, bool) {
	for _, f := range s.node.FSM().Fleets() {
		if f.Asg == asg {
			return f.Name, true
		}
	}
	return "", false
}

func (s store) FleetExists(name string) bool {
	_, err := s.node.FSM().Fleet(name)
	return err == nil
}

func (s store) Instance(id string) (*shoalv1.Instance, bool) {
	in, err := s.node.FSM().Instance(id)
	return in, err == nil
}

func (s store) ListInstances() []*shoalv1.Instance { return s.node.FSM().Instances("") }

func (s store) RegisterInstance(ctx context.Context, in *shoalv1.Instance) error {
	return s.applyErr(ctx, fsm.RegisterInstance(in))
}

func (s store) SetInstanceState(ctx context.Context, id string, st shoalv1.InstanceState) error {
	return s.applyErr(ctx, fsm.SetInstanceState(id, st))
}

func (s store) LeaveInstance(ctx context.Context, id string) error {
	return s.applyErr(ctx, fsm.InstanceLeave(id))
}

// leaderStore is store for the leader-only loops (the scaler, the publish
// watermark): a write commits only while this node leads and is never
// forwarded. A deposed leader's loops run on until they notice; forwarded,
// a decision it made from its stale FSM would be committed by the new
// leader, beside the new leader's own decision from the same numbers.
type leaderStore struct{ store }

var _ scaler.Store = leaderStore{}

func (s leaderStore) Apply(ctx context.Context, c fsm.Command) (*fsm.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, _, err := s.node.ApplyLocal(c.Encode())
	if err != nil {
		return nil, err
	}
	return r, nil
}

// commitWatermark is the publisher's Commit: "published up to start"
// through raft, from the leader only, in the term its loops started in.
func (s leaderStore) commitWatermark(ctx context.Context, start time.Time) error {
	return s.commitFenced(ctx, publish.WatermarkKey, start)
}

// commitSettled is the publisher's CommitSettled: "every request up to
// start sent or dropped" through raft, from the leader only, in the term
// its loops started in.
func (s leaderStore) commitSettled(ctx context.Context, start time.Time) error {
	return s.commitFenced(ctx, publish.SettledKey, start)
}

// commitFenced writes a publish watermark only while this node still leads
// in the term ctx's loops started in (cloud.WithTerm). A term's loops can
// outlive it: leadership lost and won back between two looks of runLoops
// shows only as a newer term. Without the check the old term's publisher
// would commit its next period in the new term, moving the watermark back
// below what the leader in between published, and send those periods to
// CloudWatch a second time (PutMetricData has no fence of its own). The
// check and the apply are not atomic, but a term would have to be lost and
// another won in between.
func (s leaderStore) commitFenced(ctx context.Context, key string, start time.Time) error {
	t, ok := cloud.TermFrom(ctx)
	if !ok {
		return fmt.Errorf("%w: watermark %s written outside any leadership term", cluster.ErrNotLeader, key)
	}
	if cur := s.node.LeaderTerm(); cur != t {
		return fmt.Errorf("%w: watermark %s from the loops of term %d, but this node leads term %d (0: none)", cluster.ErrNotLeader, key, t, cur)
	}
	r, err := s.Apply(ctx, fsm.SetWatermark(key, start.UnixMilli()))
	if err != nil {
		return err
	}
	return r.Error()
}

// liveMetrics gives the scaler each instance's latest values from the
// leader's ingestion, leaving out instances whose agent went quiet.
type liveMetrics struct {
	in    *ingest.Service
	stale time.Duration
}

func (m liveMetrics) Latest(fleet string) map[string]map[string]float64 {
	ins, err := m.in.Instances(fleet)
	if err != nil {
		return nil
	}
	out := make(map[string]map[string]float64, len(ins))
	for _, in := range ins {
		if in.LastReportAge == nil || in.LastReportAge.AsDuration() > m.stale || len(in.Metrics) == 0 {
			continue
		}
		out[in.Id] = in.Metrics
	}
	return out
}

// agents runs on-drain hooks through ingestion.
type agents struct{ in *ingest.Service }

func (a agents) Drain(ctx context.Context, id string) error {
	res, err := a.in.Drain(ctx, id)
	if err != nil {
		return err
	}
	if !res.Ok {
		return fmt.Errorf("on-drain hook of %s failed (exit %d): %s", id, res.ExitCode, res.Error)
	}
	return nil
}

// periods is what the publish loop reads: the registry's fleets, ingestion's
// period statistics and the LBs' request rate.
type periods struct {
	store
	in   *ingest.Service
	feed *feed.Service
}

var _ publish.Source = periods{}

func (p periods) PeriodStats(fleet string, from, to time.Time) (map[string]publish.Stats, map[string]map[string]publish.Stats) {
	fleetStats, perInstance := p.in.PeriodStats(fleet, from, to)
	out := make(map[string]publish.Stats, len(fleetStats))
	for m, s := range fleetStats {
		out[m] = statsOf(s)
	}
	per := make(map[string]map[string]publish.Stats, len(perInstance))
	for id, ms := range perInstance {
		per[id] = make(map[string]publish.Stats, len(ms))
		for m, s := range ms {
			per[id][m] = statsOf(s)
		}
	}
	return out, per
}

func (p periods) RequestsPerTarget(fleet string) (float64, bool) {
	return p.feed.RequestsPerTarget(fleet)
}

func statsOf(s ingest.Stats) publish.Stats {
	return publish.Stats{SampleCount: float64(s.Count), Sum: s.Sum, Min: s.Min, Max: s.Max}
}

// backends builds a fleet's backend set for the LB feed from the registry
// and the leader's live view.
func backends(node *cluster.Node, in *ingest.Service, now func() time.Time, drainTimeout time.Duration) feed.BackendsFunc {
	return func(fleet string) ([]*shoalv1.Backend, error) {
		f, err := node.FSM().Fleet(fleet)
		if err != nil {
			return nil, feed.ErrUnknownFleet
		}
		ins, err := in.Instances(fleet)
		if err != nil {
			return nil, err
		}
		return feed.BackendSet(f, ins, now(), drainTimeout), nil
	}
}

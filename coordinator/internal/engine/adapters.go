package engine

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/feed"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/ingest"
	"github.com/shoal-dev/shoal/coordinator/internal/scaler"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// store adapts a cluster node to what ingestion and the scaler read and
// write: reads from the local FSM, writes through raft (forwarded to the
// leader when need be).
type store struct{ node *cluster.Node }

var (
	_ ingest.Registry = store{}
	_ scaler.Store    = store{}
)

func (s store) apply(ctx context.Context, c fsm.Command) (*fsm.Result, error) {
	r, _, err := s.node.Apply(ctx, c.Encode())
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s store) Apply(ctx context.Context, c fsm.Command) (*fsm.Result, error) { return s.apply(ctx, c) }

func (s store) applyErr(ctx context.Context, c fsm.Command) error {
	r, err := s.apply(ctx, c)
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
		if in.LastReportAgeMs < 0 || time.Duration(in.LastReportAgeMs)*time.Millisecond > m.stale || len(in.Metrics) == 0 {
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

// backends builds a fleet's backend set for the LB feed from the registry
// and the leader's live view.
func (e *Engine) backends(fleet string) ([]*shoalv1.Backend, error) {
	f, err := e.node.FSM().Fleet(fleet)
	if err != nil {
		return nil, feed.ErrUnknownFleet
	}
	ins, err := e.ingest.Instances(fleet)
	if err != nil {
		return nil, err
	}
	return backendSet(f, ins, e.cfg.Now(), e.cfg.DrainTimeout), nil
}

// backendSet maps instances to backends: in service is active (warming
// while inside the policy's warm-up), draining is draining with its drain
// deadline, and anything else (pending, unhealthy, terminated, or without an
// address) gets no traffic.
func backendSet(f *shoalv1.Fleet, ins []*shoalv1.Instance, now time.Time, drainTimeout time.Duration) []*shoalv1.Backend {
	warmup := time.Duration(f.GetPolicy().GetWarmupMs()) * time.Millisecond
	var out []*shoalv1.Backend
	for _, in := range ins {
		if in.PrivateIp == "" || f.AppPort == 0 {
			continue
		}
		b := &shoalv1.Backend{InstanceId: in.Id, Address: net.JoinHostPort(in.PrivateIp, strconv.Itoa(int(f.AppPort))), AvailabilityZone: in.AvailabilityZone, Load: load(in)}
		changed := time.UnixMilli(in.StateChangedAtUnixMs)
		switch in.State {
		case shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE:
			b.State = shoalv1.BackendState_BACKEND_STATE_ACTIVE
			if now.Sub(changed) < warmup {
				b.State = shoalv1.BackendState_BACKEND_STATE_WARMING
			}
		case shoalv1.InstanceState_INSTANCE_STATE_DRAINING:
			b.State = shoalv1.BackendState_BACKEND_STATE_DRAINING
			b.DrainDeadlineUnixMs = changed.Add(drainTimeout).UnixMilli()
		default:
			continue
		}
		out = append(out, b)
	}
	return out
}

// load is the backend's relative load for the LB's picker: its CPU as a
// fraction of half a core's worth (1 = nominal at 50 %), never below a floor
// so a fresh instance is not treated as free.
func load(in *shoalv1.Instance) float64 {
	cpu, ok := in.Metrics["cpu"]
	if !ok {
		return 1
	}
	return max(cpu/50, 0.1)
}

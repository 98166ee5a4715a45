package ingest

import (
	"context"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

const (
	statePending   = shoalv1.InstanceState_INSTANCE_STATE_PENDING
	stateInService = shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE
	stateUnhealthy = shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY
	stateDraining  = shoalv1.InstanceState_INSTANCE_STATE_DRAINING
	stateGone      = shoalv1.InstanceState_INSTANCE_STATE_TERMINATED
)

// reconcileLoop runs the leader's membership commits every ReconcileEvery.
func (s *Service) reconcileLoop(ctx context.Context) error {
	t := time.NewTicker(s.cfg.ReconcileEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.reconcile(ctx)
	}
}

// change is one registry commit the leader decided on.
type change struct {
	id       string
	register *shoalv1.Instance
	state    shoalv1.InstanceState
	leave    bool
}

// reconcile compares what agents say with the registry and commits only the
// differences: a registration, a state change, a leave. Samples never get
// here, so a steady fleet commits nothing.
func (s *Service) reconcile(ctx context.Context) {
	now := s.cfg.Now()
	if !s.cluster.IsLeader() {
		s.mu.Lock()
		if s.wasLeader {
			// What this node knew as leader goes stale at once; a later
			// term rebuilds it from fresh reports.
			s.store = newStore(s.cfg.RingSize, s.cfg.StaleAfter)
			clear(s.draining)
			s.wasLeader = false
		}
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	if !s.wasLeader {
		s.wasLeader, s.leaderSince = true, now
	}
	leaderFor := now.Sub(s.leaderSince)
	s.mu.Unlock()

	regs := map[string]*shoalv1.Instance{}
	for _, r := range s.reg.ListInstances() {
		regs[r.GetId()] = r
	}
	var changes []change
	s.mu.Lock()
	for id, in := range s.store.byID {
		reg := regs[id]
		// A stream that ended without a goodbye keeps the instance's last
		// readiness for the rest of StaleAfter (the agent grace): agents
		// reconnect within a second or two after a cut connection or a node
		// going away, and pulling the instance from the LBs for that blink
		// turned every request into a 503 (chaos harness, disconnect step).
		// An instance that is really gone stops reporting and is unhealthy
		// once the grace ends; the LB retries refused connections meanwhile.
		fresh := now.Sub(in.lastReport) < s.cfg.StaleAfter
		streaming := in.connected && fresh
		if in.left {
			if reg != nil && reg.GetState() != stateGone {
				changes = append(changes, change{id: id, leave: true})
			}
			if reg == nil || reg.GetState() == stateGone {
				s.store.remove(id)
				delete(s.draining, id)
			}
			continue
		}
		want := desired(reg, in, fresh, s.draining[id])
		switch {
		case reg == nil || reg.GetFleet() != in.fleet || (reg.GetPrivateIp() == "" && in.hello.GetPrivateIp() != ""):
			// Unknown, moved, or registered from the group's view (the
			// scaler does that at launch) before its agent told us its address.
			if !streaming {
				// Never register an instance that is already gone; once it
				// has left the registry too (the scaler retired it), forget it.
				if reg == nil {
					s.store.remove(id)
					delete(s.draining, id)
				}
				continue
			}
			h := in.hello
			changes = append(changes, change{id: id, register: &shoalv1.Instance{Id: id, Fleet: in.fleet, State: want,
				PrivateIp: h.GetPrivateIp(), AvailabilityZone: h.GetAvailabilityZone(), ImageId: h.GetImageId()}})
		case reg.GetState() == stateGone:
			// Terminated is final; a late agent does not bring it back.
		case reg.GetState() != want:
			changes = append(changes, change{id: id, state: want})
		}
	}
	// Registered instances no agent reported to this leader: after a grace
	// of StaleAfter from taking office (agents need time to find it), they
	// are unhealthy. A pending one (launched, its agent not up yet) stays
	// pending; the scaler flags it if its agent never comes.
	if leaderFor >= s.cfg.StaleAfter {
		for id, reg := range regs {
			if _, ok := s.store.byID[id]; ok {
				continue
			}
			switch reg.GetState() {
			case stateGone, stateUnhealthy, stateDraining, statePending:
			default:
				changes = append(changes, change{id: id, state: stateUnhealthy})
			}
		}
	}
	s.mu.Unlock()

	for _, c := range changes {
		var err error
		switch {
		case c.leave:
			err = s.commit(ctx, "leave", func(ctx context.Context) error { return s.reg.LeaveInstance(ctx, c.id) })
		case c.register != nil:
			err = s.commit(ctx, "register", func(ctx context.Context) error { return s.reg.RegisterInstance(ctx, c.register) })
		default:
			err = s.commit(ctx, "state", func(ctx context.Context) error { return s.reg.SetInstanceState(ctx, c.id, c.state) })
		}
		if err != nil {
			// The next round retries: the difference is still there.
			s.cfg.Logger.Warn("registry commit failed", "instance", c.id, "err", err)
			if ctx.Err() != nil || !s.cluster.IsLeader() {
				return
			}
		}
	}
}

// desired is the state an instance should be in, given what its agent says.
func desired(reg *shoalv1.Instance, in *live, fresh, draining bool) shoalv1.InstanceState {
	cur := reg.GetState()
	switch {
	case draining || cur == stateDraining:
		return stateDraining // sticky: only the instance going away ends it
	case !fresh:
		if reg == nil {
			return statePending
		}
		return stateUnhealthy
	case in.ready:
		return stateInService
	case cur == stateInService || cur == stateUnhealthy:
		return stateUnhealthy
	default:
		return statePending
	}
}

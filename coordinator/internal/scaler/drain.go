package scaler

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// progressDrains moves every draining instance of the fleet one step: it
// starts drains for instances the group is terminating on its own, keeps
// their lifecycle actions alive, and finishes drains that are complete or
// out of time. Finishing (hook, terminate) runs in the background so one
// slow instance never holds the loop; all of it is idempotent, so a new
// leader simply picks up where the old one stopped.
func (s *Scaler) progressDrains(ctx context.Context, fs *fleetState, v *view) {
	now := s.cfg.Now()
	waiting := map[string]string{}
	for id, gi := range v.inGroup {
		if gi.LifecycleState != cloud.LifecycleTerminatingWait {
			continue
		}
		in, known := v.insts[id]
		switch {
		case !known:
			// Never registered, so no LB sends it requests: let it go.
			s.completeAction(ctx, v, id)
		case in.State == shoalv1.InstanceState_INSTANCE_STATE_TERMINATED:
			// Shoal drained and terminated it; the hook now holds it.
			s.completeAction(ctx, v, id)
		case in.State != shoalv1.InstanceState_INSTANCE_STATE_DRAINING:
			if _, err := s.apply(ctx, fsm.SetInstanceState(id, shoalv1.InstanceState_INSTANCE_STATE_DRAINING)); err != nil {
				s.cfg.Logger.Warn("scaler: drain on lifecycle hook", "instance", id, "err", err)
				continue
			}
			in.State = shoalv1.InstanceState_INSTANCE_STATE_DRAINING
			in.StateChangeTime = timestamppb.New(now)
			s.cfg.Logger.Info("scaler: draining instance the group is terminating", "fleet", v.f.Name, "instance", id)
		}
	}
	for id, in := range v.insts {
		if in.State != shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
			continue
		}
		gi, inGroup := v.inGroup[id]
		if !inGroup {
			continue // syncRegistry retires it
		}
		s.mu.Lock()
		busy := s.inflight[id] || v.finishing[id]
		s.mu.Unlock()
		if busy {
			waiting[id] = "finishing"
			continue
		}
		started := in.GetStateChangeTime().AsTime()
		drained, why := true, ""
		if s.deps.LBs != nil {
			drained, why = s.deps.LBs.Drained(v.f.Name, id)
		}
		timedOut := now.Sub(started) >= s.cfg.DrainTimeout || drainDeadlinePassed(in, now)
		if !drained && !timedOut {
			waiting[id] = why
			if gi.LifecycleState == cloud.LifecycleTerminatingWait && now.Sub(fs.heartbeatAt[id]) >= fs.heartbeatEvery(s.cfg.HookHeartbeat) {
				err := s.deps.Cloud.RecordLifecycleActionHeartbeat(ctx, cloud.LifecycleAction{Group: v.g.Name, Hook: s.cfg.HookName, InstanceID: id})
				if err != nil {
					s.cloudErr("lifecycle heartbeat", v.g.Name, err)
				} else {
					fs.heartbeatAt[id] = now
				}
			}
			continue
		}
		note := "drained on every live LB"
		if !drained {
			note = fmt.Sprintf("drain deadline %v passed (%s)", s.cfg.DrainTimeout, why)
			if drainDeadlinePassed(in, now) {
				note = fmt.Sprintf("drain deadline %s passed (%s)", in.GetDrainDeadline().AsTime().UTC().Format(time.RFC3339), why)
			}
		}
		decrement := s.terminateDecrements(v, in)
		if decrement && replacing(in) && holdForReplacement(v, in, started, now, s.cfg.DrainTimeout) {
			waiting[id] = "its replacement is not in service yet"
			continue
		}
		s.mu.Lock()
		s.inflight[id] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.finishDrain(ctx, v.f.Name, v.g.Name, id, gi.LifecycleState, started, note, decrement)
	}
	s.mu.Lock()
	fs.drainWaiting = waiting
	for id := range fs.heartbeatAt {
		if _, ok := waiting[id]; !ok {
			delete(fs.heartbeatAt, id)
		}
	}
	s.mu.Unlock()
}

// finishDrain runs the on-drain hook, then ends the instance: a lifecycle
// action held by the hook is completed, anything else is terminated with the
// group's desired capacity decremented, so nothing replaces it. If the term
// ends midway the instance stays draining and the next leader finishes it.
func (s *Scaler) finishDrain(ctx context.Context, fleet, group, id, lifecycle string, started time.Time, note string, decrement bool) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.inflight, id)
		s.mu.Unlock()
	}()
	log := s.cfg.Logger.With("fleet", fleet, "instance", id)
	if s.deps.Agents != nil {
		hctx, cancel := context.WithTimeout(ctx, s.cfg.HookTimeout)
		err := s.deps.Agents.Drain(hctx, id)
		cancel()
		if err != nil {
			// The hook is the application's courtesy; the LB already stopped
			// sending requests, so a failed hook does not hold termination.
			log.Warn("scaler: on-drain hook", "err", err)
		}
	}
	inject("scaler.before-terminate")
	if lifecycle == cloud.LifecycleTerminatingWait {
		if err := s.deps.Cloud.CompleteLifecycleAction(ctx, cloud.LifecycleAction{Group: group, Hook: s.cfg.HookName, InstanceID: id}, cloud.ResultContinue); err != nil && !errors.Is(err, cloud.ErrLifecycleActionNotFound) {
			s.cloudErr("complete lifecycle action", group, err)
			return
		}
	} else {
		if decrement {
			// Not across a scale-out's SetDesiredCapacity (act).
			s.desiredMu.Lock()
		}
		_, err := s.deps.Cloud.TerminateInstance(ctx, id, decrement)
		if decrement {
			s.mu.Lock()
			s.termGen[fleet]++
			s.mu.Unlock()
			s.desiredMu.Unlock()
		}
		if err != nil && !errors.Is(err, cloud.ErrInstanceNotFound) {
			s.cloudErr("terminate instance", group, err)
			return
		}
	}
	if _, err := s.apply(ctx, fsm.SetInstanceState(id, shoalv1.InstanceState_INSTANCE_STATE_TERMINATED)); err != nil {
		log.Warn("scaler: mark terminated", "err", err)
		return
	}
	took := s.cfg.Now().Sub(started)
	s.met.drain.Observe(took.Seconds())
	log.Info("scaler: drained and terminated", "took", took.Round(time.Millisecond), "why", note)
}

// completeAction lets an instance waiting in Shoal's hook continue to
// termination.
func (s *Scaler) completeAction(ctx context.Context, v *view, id string) {
	err := s.deps.Cloud.CompleteLifecycleAction(ctx, cloud.LifecycleAction{Group: v.g.Name, Hook: s.cfg.HookName, InstanceID: id}, cloud.ResultContinue)
	if err != nil && !errors.Is(err, cloud.ErrLifecycleActionNotFound) {
		s.cloudErr("complete lifecycle action", v.g.Name, err)
	}
}

// heartbeatEvery is how often a drain heartbeats the group's hook: a third
// of the hook's own timeout, or of the configured one until the hook has
// been looked at.
func (fs *fleetState) heartbeatEvery(configured time.Duration) time.Duration {
	if fs.hookHeartbeat > 0 {
		return fs.hookHeartbeat / 3
	}
	return configured / 3
}

// holdForReplacement says whether a drained, replaced interruption should
// stay until its replacement serves, in Capacity Rebalancing's order
// (launch, wait, terminate): a drained instance costs nothing to keep, one
// whose LB drain timed out keeps finishing its last requests, and the
// notice usually leaves time. Its own deadline (the notice less the
// margin) ends the wait; without one (a rebalance recommendation) the
// drain timeout does.
func holdForReplacement(v *view, in *shoalv1.Instance, started, now time.Time, drainTimeout time.Duration) bool {
	if dl := in.GetDrainDeadline(); dl != nil {
		if !now.Before(dl.AsTime()) {
			return false
		}
	} else if now.Sub(started) >= drainTimeout {
		return false
	}
	serving := int32(0)
	for id, o := range v.insts {
		if _, ok := v.inGroup[id]; ok && o.State == shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE {
			serving++
		}
	}
	return serving < v.current()
}

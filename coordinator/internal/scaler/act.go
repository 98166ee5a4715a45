package scaler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/decide"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

const (
	pending    = shoalv1.DecisionStatus_DECISION_STATUS_PENDING
	applied    = shoalv1.DecisionStatus_DECISION_STATUS_APPLIED
	failed     = shoalv1.DecisionStatus_DECISION_STATUS_FAILED
	superseded = shoalv1.DecisionStatus_DECISION_STATUS_SUPERSEDED
)

// errWait means a decision cannot be applied yet and stays pending.
var errWait = errors.New("wait")

// applyPending finishes every pending decision of the fleet, oldest first:
// all but the newest are superseded, the newest is applied unless the group
// already has its capacity. It reports whether nothing new may be decided
// this tick: a decision is still pending, or one was just acted on. In the
// second case v was read before the action (the group's desired capacity,
// the instances just marked draining), so a decision from it would start
// from the capacity the pending decision left and step twice; the next tick
// reads the world again.
func (s *Scaler) applyPending(ctx context.Context, fs *fleetState, v *view) bool {
	ds, err := s.deps.Store.Decisions(v.f.Name, 0)
	if err != nil {
		return true
	}
	var open []*shoalv1.Decision
	for _, d := range ds {
		if d.Status == pending {
			open = append(open, d)
		}
	}
	if len(open) == 0 {
		return false
	}
	for _, d := range open[:len(open)-1] {
		s.finish(ctx, d, superseded, nil, fmt.Sprintf("superseded by decision %d", open[len(open)-1].Id))
	}
	d := open[len(open)-1]
	if s.stale(v) {
		// A termination with decrement since the group was read: the
		// capacity v shows may be neither before nor after it, so neither
		// "already there" nor an action can be judged from it.
		return true
	}
	if v.current() == d.Capacity {
		s.finish(ctx, d, applied, nil, "")
		return false
	}
	err = s.act(ctx, fs, v, d)
	switch {
	case errors.Is(err, errWait):
	case err != nil:
		s.finish(ctx, d, failed, err, "")
	default:
		s.finish(ctx, d, applied, nil, "")
		if d.Source == fsm.SourceManual {
			// A manual scale counts toward the automatic rate limits.
			fs.decide = fs.decide.Record(s.cfg.Now(), d.PreviousCapacity, d.Capacity)
		}
	}
	// Even a failed act may have changed the world (a scale-in that marked
	// some victims before an error), so v is stale either way.
	return true
}

func (s *Scaler) finish(ctx context.Context, d *shoalv1.Decision, st shoalv1.DecisionStatus, cause error, note string) {
	text, class := note, shoalv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
	if st == failed {
		text = cause.Error()
		class = cloud.Classify(cause).Proto()
		var be *blockedError
		if errors.As(cause, &be) {
			class = shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE
		}
		if class == shoalv1.ErrorClass_ERROR_CLASS_UNSPECIFIED {
			class = shoalv1.ErrorClass_ERROR_CLASS_FATAL
		}
	}
	if st == superseded {
		text = ""
	}
	if _, err := s.apply(ctx, fsm.UpdateDecision(d.Id, st, text, class)); err != nil {
		s.cfg.Logger.Warn("scaler: record decision outcome", "decision", d.Id, "status", st.String(), "err", err)
		return
	}
	s.met.outcomes.WithLabelValues(strings.ToLower(strings.TrimPrefix(st.String(), "DECISION_STATUS_"))).Inc()
	s.cfg.Logger.Info("scaler: decision", "id", d.Id, "fleet", d.Fleet, "from", d.PreviousCapacity, "to", d.Capacity, "status", st.String(), "note", note, "err", cause)
}

// blockedError is a decision the group's state refuses for now.
type blockedError struct{ why string }

func (e *blockedError) Error() string { return e.why }

// act moves the group toward d.Capacity. Scale-out is one SetDesiredCapacity;
// scale-in marks victims draining, and the drain loop terminates them.
func (s *Scaler) act(ctx context.Context, fs *fleetState, v *view, d *shoalv1.Decision) error {
	if d.Capacity < v.g.Min || d.Capacity > v.g.Max {
		return &cloud.Error{Op: "shoal:bounds", Kind: cloud.ErrValidation,
			Err: fmt.Errorf("desired (%d) is outside group %s MinSize %d..MaxSize %d", d.Capacity, v.g.Name, v.g.Min, v.g.Max)}
	}
	cur := v.current()
	if d.Capacity > cur {
		if d.Capacity+v.draining > v.g.Max {
			// Draining members still count toward the group's MaxSize
			// until they are terminated, so the group would refuse the
			// call; and asking for less would leave the group short once
			// they go. The decision waits for the drains, which the drain
			// deadline bounds.
			return errWait
		}
		// A drain that terminated its instance with the desired capacity
		// decremented since the group was read: d.Capacity+v.draining
		// still counts the instance, and set now it would buy it back (a
		// second replacement for one interruption). The next tick reads
		// the group after the termination. desiredMu keeps one from
		// starting until the call below is done.
		s.desiredMu.Lock()
		defer s.desiredMu.Unlock()
		if s.stale(v) {
			return errWait
		}
		start := s.cfg.Now()
		err := s.deps.Cloud.SetDesiredCapacity(ctx, v.g.Name, d.Capacity+v.draining)
		s.met.actuation.Observe(s.cfg.Now().Sub(start).Seconds())
		if errors.Is(err, cloud.ErrNotLeader) {
			// Nothing reached the cloud: the decision stays pending, and
			// whoever leads next applies it.
			s.cfg.Logger.Warn("scaler: decision left pending: leadership not confirmed before the call", "fleet", v.f.Name, "decision", d.Id, "err", err)
			return fmt.Errorf("%w: %w", errWait, err)
		}
		if err != nil {
			s.cloudErr("set desired capacity", v.g.Name, err)
			return err
		}
		return nil
	}
	if v.draining > 0 {
		// One scale-in at a time per fleet: the next waits for this drain.
		return errWait
	}
	if why := s.scaleInBlocked(ctx, v); why != "" {
		return &blockedError{why: why}
	}
	victims := s.victims(v, int(cur-d.Capacity))
	if len(victims) < int(cur-d.Capacity) {
		return &blockedError{why: fmt.Sprintf("scale-in needs %d victims, only %d unprotected in-service instances", cur-d.Capacity, len(victims))}
	}
	for _, id := range victims {
		if _, err := s.apply(ctx, fsm.SetInstanceState(id, shoalv1.InstanceState_INSTANCE_STATE_DRAINING)); err != nil {
			return fmt.Errorf("mark %s draining: %w", id, err)
		}
		s.cfg.Logger.Info("scaler: draining", "fleet", v.f.Name, "instance", id, "decision", d.Id)
		inject("scaler.after-drain-mark")
	}
	return nil
}

func (s *Scaler) scaleInBlocked(ctx context.Context, v *view) string {
	if ps := v.g.ScaleInBlockedBy(); len(ps) > 0 {
		return "scale-in blocked: group processes suspended: " + strings.Join(ps, ", ")
	}
	ref, err := s.deps.Cloud.ActiveInstanceRefresh(ctx, v.g.Name)
	if err != nil {
		s.cloudErr("describe instance refreshes", v.g.Name, err)
		return "scale-in blocked: cannot tell whether an instance refresh is running: " + err.Error()
	}
	if ref != nil {
		return fmt.Sprintf("scale-in blocked: instance refresh %s is %s", ref.ID, ref.Status)
	}
	return ""
}

// victims picks n instances to drain among the unprotected ones in service
// or still launching, not already leaving; decide.Victims says which, and
// takes those not serving yet before those that serve.
func (s *Scaler) victims(v *view, n int) []string {
	var cands []decide.Candidate
	for id, gi := range v.inGroup {
		in, ok := v.insts[id]
		if !ok || gi.Protected || !launchingOrInService(gi.LifecycleState) {
			continue
		}
		if in.State == shoalv1.InstanceState_INSTANCE_STATE_DRAINING || in.State == shoalv1.InstanceState_INSTANCE_STATE_TERMINATED {
			continue
		}
		m, reported := v.latest[id]
		notServing := gi.LifecycleState != cloud.LifecycleInService || in.State != shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE
		cands = append(cands, decide.Candidate{ID: id, AZ: gi.AZ, Reported: reported, Metrics: m, AtRisk: in.AtRisk, NotServing: notServing})
	}
	return decide.Victims(v.f.Policy, cands, n)
}

// launchingOrInService is a group lifecycle state an instance can be
// scaled in from: Pending, Pending:Wait, Pending:Proceed or InService (not
// warm-pool, not already terminating).
func launchingOrInService(state string) bool {
	return state == cloud.LifecycleInService || state == cloud.LifecyclePending || strings.HasPrefix(state, cloud.LifecyclePending+":")
}

// decideAndAct runs decide on the fleet's live numbers and, when it wants a
// change the group allows, commits a decision and applies it.
func (s *Scaler) decideAndAct(ctx context.Context, fs *fleetState, v *view) {
	cur := v.current()
	ex := Explanation{Fleet: v.f.Name, Current: cur, Recommended: cur}
	if v.lo > v.hi {
		ex.Blocked = fmt.Sprintf("fleet bounds %d..%d and group bounds %d..%d do not overlap", v.f.Min, v.f.Max, v.g.Min, v.g.Max)
		s.setExplain(fs, ex)
		return
	}
	in := decide.Input{
		Now: s.cfg.Now(), Policy: v.f.Policy, Min: v.lo, Max: v.hi, Current: cur,
		Aggregates: map[string]float64{},
	}
	warmupNote := ""
	// The policy carries its sustain, which decide reads with the launch
	// delay: the same knob `simulate` runs and `simulate --tune` writes.
	in.Policy, in.LaunchDelay, warmupNote = s.warmupPolicy(v.f.Name, v.f.Policy)
	for id, in2 := range v.insts {
		gi, ok := v.inGroup[id]
		// A warm-pool instance serves nobody: it is capacity in waiting.
		if !ok || in2.Warm || in2.State == shoalv1.InstanceState_INSTANCE_STATE_DRAINING || strings.HasPrefix(gi.LifecycleState, cloud.LifecycleTerminating) {
			continue
		}
		di := decide.Instance{ID: id, Metrics: v.latest[id]}
		if in2.State == shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE {
			di.InService = in2.GetStateChangeTime().AsTime()
		}
		in.Instances = append(in.Instances, di)
	}
	sort.Slice(in.Instances, func(i, j int) bool { return in.Instances[i].ID < in.Instances[j].ID })
	if s.deps.LBs != nil {
		if rpt, ok := s.deps.LBs.RequestsPerTarget(v.f.Name); ok {
			in.Aggregates["requests_per_target"] = rpt
		}
	}
	if !fs.seeded {
		// A new leader starts its windows from the capacity it inherits, so
		// a failover never lets a scale-in skip its stabilisation window.
		fs.decide, fs.seeded = decide.Seed(in.Now, cur), true
	}
	d, next, err := decide.Decide(in, fs.decide)
	if err != nil {
		ex.Blocked = "cannot decide: " + err.Error()
		s.setExplain(fs, ex)
		return
	}
	ex.Recommended, ex.Reason, ex.Details, ex.Inputs = d.Desired, d.Reason, d.Details, d.Inputs
	ex.Details = append(append(ex.Details, s.launchDetails(v.f.Name, max(d.Desired-cur, 0))...), nonEmpty(warmupNote)...)
	if v.f.Paused {
		fs.decide = next
		ex.Blocked = "paused: automatic decisions are off (a manual scale still works)"
		s.setExplain(fs, ex)
		return
	}
	if !d.Changed() {
		fs.decide = next
		s.setExplain(fs, ex)
		return
	}
	if d.Desired > cur {
		if why := s.launchesFailing(ctx, fs, v); why != "" {
			ex.Blocked = why
			s.setExplain(fs, ex)
			if !fs.blockNoted {
				fs.blockNoted = true
				s.commitAndAct(ctx, fs, v, d, &blockedError{why: why})
			}
			return
		}
		fs.blockNoted = false
	} else {
		if v.draining > 0 {
			ex.Blocked = fmt.Sprintf("scale-in in flight: %d instance(s) draining", v.draining)
			s.setExplain(fs, ex)
			return
		}
		if why := s.scaleInBlocked(ctx, v); why != "" {
			ex.Blocked = why
			s.setExplain(fs, ex)
			return
		}
	}
	fs.decide = next
	s.setExplain(fs, ex)
	s.commitAndAct(ctx, fs, v, d, nil)
}

// commitAndAct commits d as pending, then applies it and commits the
// outcome. With refused set, the decision is recorded as failed at once.
func (s *Scaler) commitAndAct(ctx context.Context, fs *fleetState, v *view, d decide.Decision, refused error) {
	r, err := s.apply(ctx, fsm.CreateDecision(&shoalv1.Decision{
		Fleet: v.f.Name, PreviousCapacity: d.Current, Capacity: d.Desired, Reason: d.Reason, Inputs: d.Inputs, Source: fsm.SourceAuto,
		Actor: s.cfg.NodeID,
	}))
	if err != nil {
		s.cfg.Logger.Warn("scaler: commit decision", "fleet", v.f.Name, "err", err)
		return
	}
	dec := r.Decision
	dir := "out"
	if dec.Capacity < dec.PreviousCapacity {
		dir = "in"
	}
	s.met.decisions.WithLabelValues(dir).Inc()
	inject("scaler.after-commit")
	if refused != nil {
		s.finish(ctx, dec, failed, refused, "")
		return
	}
	err = s.act(ctx, fs, v, dec)
	inject("scaler.after-apply")
	switch {
	case errors.Is(err, errWait):
		// Stays pending; applyPending finishes it on a later tick.
	case err != nil:
		s.finish(ctx, dec, failed, err, "")
	default:
		s.finish(ctx, dec, applied, nil, "")
	}
}

// launchesFailing looks at the group's recent activities while it is short
// of instances, and returns why scale-out should stop, or "".
func (s *Scaler) launchesFailing(ctx context.Context, fs *fleetState, v *view) string {
	now := s.cfg.Now()
	if now.Sub(fs.launchCheck) < s.cfg.ActivityCheckEvery {
		return fs.launchBlock
	}
	live := int32(0)
	for _, gi := range v.inGroup {
		if !strings.HasPrefix(gi.LifecycleState, cloud.LifecycleTerminating) {
			live++
		}
	}
	if live >= v.g.Desired && fs.launchBlock == "" {
		return ""
	}
	fs.launchCheck = now
	acts, err := s.deps.Cloud.DescribeScalingActivities(ctx, v.g.Name, 20)
	if err != nil {
		s.cloudErr("describe scaling activities", v.g.Name, err)
		return fs.launchBlock
	}
	fs.launchBlock = launchFailure(acts, s.cfg.LaunchFailures)
	return fs.launchBlock
}

// launchFailure returns a reason when the newest n launch activities
// (newest first) all failed.
func launchFailure(acts []cloud.Activity, n int) string {
	count, last := 0, ""
	for _, a := range acts {
		if !strings.HasPrefix(strings.ToLower(a.Description), "launching") {
			continue
		}
		if !a.Failed() {
			break
		}
		if count == 0 {
			last = a.StatusMessage
		}
		count++
		if count >= n {
			return fmt.Sprintf("launches failing: last %d launches failed (last: %s)", count, last)
		}
	}
	return ""
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

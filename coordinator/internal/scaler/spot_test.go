package scaler

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// newLeader replaces the harness's scaler with a fresh one over the same
// store and cloud, as a new leader starts from the replicated state alone.
func (h *harness) newLeader(edit func(*Config)) {
	h.t.Helper()
	cfg := DefaultConfig()
	cfg.Now, cfg.Logger, cfg.NodeID = h.clk.Now, slog.New(slog.NewTextHandler(io.Discard, nil)), "n2"
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg, Deps{Store: h.store, Cloud: h.cloud, Metrics: h.met, LBs: h.lbs, Agents: h.agents}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.s = s
}

func (h *harness) instance(id string) *shoalv1.Instance {
	h.t.Helper()
	in, err := h.store.f.Instance(id)
	if err != nil {
		h.t.Fatal(err)
	}
	return in
}

func (h *harness) spotDecisions() []*shoalv1.Decision {
	var out []*shoalv1.Decision
	for _, d := range h.decisions() {
		if d.Source == fsm.SourceSpot {
			out = append(out, d)
		}
	}
	return out
}

func (h *harness) explainHas(sub string) bool {
	e, ok := h.s.Explain(fleet)
	if !ok {
		return false
	}
	for _, d := range e.Details {
		if strings.Contains(d, sub) {
			return true
		}
	}
	return false
}

func spotNotice(at time.Time) *shoalv1.InstanceEvent {
	return &shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION, Action: "terminate", Time: timestamppb.New(at)}
}

// steady brings up n in-service instances at a cpu the policy keeps.
func steady(t *testing.T, n int32) *harness {
	h := newHarness(t, n, cpuPolicy())
	h.tick()
	h.serve(50)
	return h
}

// TestSpotInterruptionDrainsReplacesAndTerminates is the whole path: the
// notice drains the instance with a deadline, one SPOT decision asks for
// desired+1 at once, and once drained and its replacement serves the
// instance is terminated with the desired capacity decremented, back to its
// value before the notice. A replayed notice changes nothing.
func TestSpotInterruptionDrainsReplacesAndTerminates(t *testing.T) {
	h := steady(t, 3)
	victim := h.ids(cloud.LifecycleInService)[1]
	notice := h.clk.Now().Add(2 * time.Minute).Truncate(time.Second)
	h.s.Notify(fleet, victim, spotNotice(notice))
	h.tick()

	in := h.instance(victim)
	if in.State != shoalv1.InstanceState_INSTANCE_STATE_DRAINING || in.StateReason != "spot interruption at "+notice.UTC().Format(time.RFC3339) ||
		!in.GetDrainDeadline().AsTime().Equal(notice.Add(-15*time.Second)) || in.InterruptionAction != "terminate" {
		t.Fatalf("interrupted instance = %v", in)
	}
	ds := h.spotDecisions()
	if len(ds) != 1 {
		t.Fatalf("spot decisions = %v, want exactly one", ds)
	}
	if d := ds[0]; d.Status != applied || d.Actor != "n1" || !strings.Contains(d.Reason, victim) || d.PreviousCapacity != 2 || d.Capacity != 3 {
		t.Fatalf("replacement decision = %v", d)
	}
	if got := h.cloud.group(asg).Desired; got != 4 {
		t.Fatalf("group desired = %d, want 4 (3 + the replacement)", got)
	}
	if !h.explainHas(victim + ": replacement asked for (desired 3 → 4)") {
		t.Fatalf("explain does not say which path ran: %+v", h.s.fleets[fleet].spotNotes)
	}

	// The agent reconnects and sends the notice again: nothing new.
	h.s.Notify(fleet, victim, spotNotice(notice))
	h.clk.Add(time.Second)
	h.serve(50)
	if n := len(h.spotDecisions()); n != 1 || h.countCalls("SetDesiredCapacity") != 1 {
		t.Fatalf("a replayed notice made %d spot decisions and %d SetDesiredCapacity calls", n, h.countCalls("SetDesiredCapacity"))
	}
	if n := h.countCalls("TerminateInstance"); n != 0 {
		t.Fatalf("terminated %d instances while the victim still serves requests", n)
	}
	if !h.explainHas(victim + ": replacement launched by Shoal") {
		t.Fatalf("explain does not say which path ran: %+v", h.s.fleets[fleet].spotNotes)
	}

	// Drained, but its replacement does not serve yet: it stays, so the
	// fleet never has fewer in service than before the notice less one.
	h.lbs.release(victim)
	h.clk.Add(time.Second)
	h.tick()
	if n := h.countCalls("TerminateInstance"); n != 0 {
		t.Fatalf("terminated %d instances before the replacement served: %v", n, h.cloud.Calls())
	}
	if w := h.s.fleets[fleet].drainWaiting[victim]; w != "its replacement is not in service yet" {
		t.Fatalf("drain waiting for %q, want the replacement", w)
	}
	h.clk.Add(time.Second)
	h.serve(50) // the replacement's agent is ready: now the victim goes
	if calls := h.cloud.Calls(); !slices.Contains(calls, "TerminateInstance "+victim+" true") || h.countCalls("TerminateInstance") != 1 {
		t.Fatalf("calls = %v, want only the victim terminated, with decrement", calls)
	}
	if got := h.cloud.group(asg).Desired; got != 3 {
		t.Fatalf("group desired after termination = %d, want 3, its value before the notice", got)
	}
	if got := h.countCalls("SetDesiredCapacity"); got != 1 {
		t.Fatalf("SetDesiredCapacity calls = %d, want exactly one replacement launch", got)
	}
	if h.state(victim) != shoalv1.InstanceState_INSTANCE_STATE_TERMINATED {
		t.Fatalf("victim state = %v", h.state(victim))
	}
}

// The drain ends at the notice time less the margin even when the LB still
// holds requests and the ordinary drain timeout is further away.
func TestSpotDeadlineEndsTheDrain(t *testing.T) {
	h := steady(t, 3)
	victim := h.ids(cloud.LifecycleInService)[0]
	h.s.Notify(fleet, victim, spotNotice(h.clk.Now().Add(40*time.Second)))
	h.tick()
	h.clk.Add(24 * time.Second) // deadline is at 25 s; DrainTimeout (30 s) later
	h.tick()
	if n := h.countCalls("TerminateInstance"); n != 0 {
		t.Fatalf("terminated before the deadline: %v", h.cloud.Calls())
	}
	h.clk.Add(time.Second)
	h.tick()
	if !slices.Contains(h.cloud.Calls(), "TerminateInstance "+victim+" true") {
		t.Fatalf("calls = %v, want the victim terminated at its deadline", h.cloud.Calls())
	}
}

// A new leader resumes a half-handled interruption from the FSM alone.
func TestSpotNewLeaderResumes(t *testing.T) {
	t.Run("drain committed, no replacement yet", func(t *testing.T) {
		h := steady(t, 3)
		victim := h.ids(cloud.LifecycleInService)[0]
		at := h.clk.Now().Add(2 * time.Minute)
		h.store.must(fsm.MarkInstance(fsm.Mark{ID: victim, InterruptionAction: "terminate", InterruptionMS: at.UnixMilli(),
			Drain: true, Reason: reasonSpot + at.UTC().Format(time.RFC3339), DrainDeadlineMS: at.Add(-15 * time.Second).UnixMilli()}))
		h.newLeader(nil)
		h.tick()
		h.tick()
		ds := h.spotDecisions()
		if len(ds) != 1 || ds[0].Actor != "n2" || ds[0].Status != applied || h.cloud.group(asg).Desired != 4 {
			t.Fatalf("new leader: spot decisions %v, desired %d; want one applied, desired 4", ds, h.cloud.group(asg).Desired)
		}
		// The agent's replay reaches the new leader: still one.
		h.s.Notify(fleet, victim, spotNotice(at))
		h.tick()
		if n := len(h.spotDecisions()); n != 1 {
			t.Fatalf("spot decisions after the replay = %d", n)
		}
	})
	t.Run("replacement committed, not applied", func(t *testing.T) {
		// The old leader committed the drain and the decision, then died
		// before SetDesiredCapacity.
		h2 := steady(t, 3)
		h2.store.must(fsm.MarkInstance(fsm.Mark{ID: h2.ids(cloud.LifecycleInService)[0], InterruptionAction: "terminate", InterruptionMS: h2.clk.Now().Add(2 * time.Minute).UnixMilli(),
			Drain: true, Reason: reasonSpot + "x"}))
		h2.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: fleet, PreviousCapacity: 2, Capacity: 3, Source: fsm.SourceSpot,
			Reason: "replace " + h2.ids(cloud.LifecycleInService)[0] + ": spot interruption at x", Actor: "n1"}))
		h2.newLeader(nil)
		h2.tick()
		h2.tick()
		if n, sets := len(h2.spotDecisions()), h2.countCalls("SetDesiredCapacity"); n != 1 || sets != 1 || h2.cloud.group(asg).Desired != 4 {
			t.Fatalf("new leader: %d spot decisions, %d SetDesiredCapacity, desired %d; want 1, 1, 4", n, sets, h2.cloud.group(asg).Desired)
		}
	})
}

// A replacement launch that fails is retried on the next ticks, at most
// maxSpotAttempts times; then explain says the replacement follows the
// termination, which does not decrement.
func TestSpotFailedReplacementRetriesThenFollowsTermination(t *testing.T) {
	h := steady(t, 3)
	h.cloud.failSet = &cloud.Error{Op: "autoscaling:SetDesiredCapacity", Kind: cloud.ErrThrottled, Err: io.ErrUnexpectedEOF}
	victim := h.ids(cloud.LifecycleInService)[0]
	h.s.Notify(fleet, victim, spotNotice(h.clk.Now().Add(2*time.Minute)))
	for range maxSpotAttempts + 2 {
		h.tick()
	}
	ds := h.spotDecisions()
	if len(ds) != maxSpotAttempts {
		t.Fatalf("spot decisions = %d, want %d attempts", len(ds), maxSpotAttempts)
	}
	for _, d := range ds {
		if d.Status != failed || d.ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE {
			t.Fatalf("attempt = %v, want failed and retryable", d)
		}
	}
	if !h.explainHas("replacement decisions failed (SetDesiredCapacity refused); the replacement follows the termination") {
		t.Fatalf("explain = %+v", h.s.fleets[fleet].spotNotes)
	}
	h.lbs.release(victim)
	h.tick()
	if !slices.Contains(h.cloud.Calls(), "TerminateInstance "+victim+" false") {
		t.Fatalf("calls = %v, want no decrement: nothing replaced the victim", h.cloud.Calls())
	}
}

// At max, nothing is launched before the loss: the replacement follows the
// termination (no decrement), and explain says so.
func TestSpotAtMaxReplacementFollowsTermination(t *testing.T) {
	h := steady(t, 10) // the fleet's max
	victim := h.ids(cloud.LifecycleInService)[0]
	h.s.Notify(fleet, victim, spotNotice(h.clk.Now().Add(2*time.Minute)))
	h.tick()
	if ds := h.spotDecisions(); len(ds) != 0 || h.countCalls("SetDesiredCapacity") != 0 {
		t.Fatalf("at max: spot decisions %v, calls %v", ds, h.cloud.Calls())
	}
	if !h.explainHas("the replacement can only follow the termination") {
		t.Fatalf("explain = %+v", h.s.fleets[fleet].spotNotes)
	}
	h.lbs.release(victim)
	h.tick()
	if !slices.Contains(h.cloud.Calls(), "TerminateInstance "+victim+" false") {
		t.Fatalf("calls = %v, want the victim terminated without decrement", h.cloud.Calls())
	}
	if got := h.cloud.group(asg).Desired; got != 10 {
		t.Fatalf("desired = %d, want 10 kept so the group replaces the instance", got)
	}
}

// With Capacity Rebalancing the group launches the replacement itself:
// Shoal launches none and says so.
func TestSpotWithCapacityRebalanceLaunchesNoSecond(t *testing.T) {
	h := steady(t, 3)
	h.cloud.mu.Lock()
	h.cloud.groups[asg].CapacityRebalance = true
	h.cloud.mu.Unlock()
	victim := h.ids(cloud.LifecycleInService)[0]
	h.s.Notify(fleet, victim, spotNotice(h.clk.Now().Add(2*time.Minute)))
	h.tick()
	if ds := h.spotDecisions(); len(ds) != 0 || h.countCalls("SetDesiredCapacity") != 0 {
		t.Fatalf("capacity rebalance: spot decisions %v, calls %v", ds, h.cloud.Calls())
	}
	if !h.explainHas("Capacity Rebalancing on") {
		t.Fatalf("explain = %+v", h.s.fleets[fleet].spotNotes)
	}
	h.lbs.release(victim)
	h.tick()
	if !slices.Contains(h.cloud.Calls(), "TerminateInstance "+victim+" false") {
		t.Fatalf("calls = %v", h.cloud.Calls())
	}
	// Gone, the path is still explained for a while, then forgotten.
	h.clk.Add(time.Second)
	h.tick()
	h.tick()
	if !h.explainHas(victim + ": group " + asg + " has Capacity Rebalancing on") {
		t.Fatalf("explain forgot the path at once: %+v", h.s.fleets[fleet].spotNotes)
	}
	h.clk.Add(spotNoteTTL + time.Second)
	h.tick()
	if h.explainHas(victim) {
		t.Fatalf("explain kept the note past its time: %+v", h.s.fleets[fleet].spotNotes)
	}
}

func TestRebalanceRecommendation(t *testing.T) {
	rebalance := &shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_REBALANCE_RECOMMENDATION, Time: timestamppb.New(time.Unix(1_800_000_000, 0))}
	t.Run("flagged at risk, first scale-in victim", func(t *testing.T) {
		h := steady(t, 4)
		ids := h.ids(cloud.LifecycleInService)
		risky := ids[2]
		h.s.Notify(fleet, risky, rebalance)
		h.tick()
		if in := h.instance(risky); !in.AtRisk || in.State != shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE {
			t.Fatalf("at-risk instance = %v, want flagged and still in service", in)
		}
		// 4 → 3; the at-risk instance is the busiest, so load alone would
		// never pick it.
		h.met.set(ids, "cpu", 35)
		h.met.set([]string{risky}, "cpu", 45)
		h.clk.Add(time.Second)
		h.tick()
		var draining []string
		for _, id := range ids {
			if h.state(id) == shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
				draining = append(draining, id)
			}
		}
		if !slices.Equal(draining, []string{risky}) {
			t.Fatalf("draining = %v, want only the at-risk %s", draining, risky)
		}
		if n := len(h.spotDecisions()); n != 0 {
			t.Fatalf("a recommendation alone made %d replacements", n)
		}
	})
	t.Run("--rebalance-replace replaces without deadline", func(t *testing.T) {
		h := steady(t, 3)
		h.newLeader(func(c *Config) { c.RebalanceReplace = true })
		victim := h.ids(cloud.LifecycleInService)[0]
		h.s.Notify(fleet, victim, rebalance)
		h.tick()
		in := h.instance(victim)
		if in.State != shoalv1.InstanceState_INSTANCE_STATE_DRAINING || !strings.HasPrefix(in.StateReason, reasonRebalance) || in.DrainDeadline != nil {
			t.Fatalf("instance = %v", in)
		}
		if ds := h.spotDecisions(); len(ds) != 1 || h.cloud.group(asg).Desired != 4 {
			t.Fatalf("spot decisions %v, desired %d", ds, h.cloud.group(asg).Desired)
		}
	})
}

func TestWarmPoolStateFlagsTheInstance(t *testing.T) {
	h := steady(t, 3)
	id := h.ids(cloud.LifecycleInService)[0]
	state := func(s string) *shoalv1.InstanceEvent {
		return &shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_TARGET_LIFECYCLE_STATE, State: s}
	}
	h.s.Notify(fleet, id, state("Warmed:Running"))
	h.tick()
	if !h.instance(id).Warm {
		t.Fatal("Warmed:Running did not flag the instance warm")
	}
	h.s.Notify(fleet, id, state("InService"))
	h.tick()
	if h.instance(id).Warm {
		t.Fatal("InService left the warm flag on")
	}
}

// A notice for an instance not registered yet waits for its registration.
func TestNoticeWaitsForRegistration(t *testing.T) {
	h := steady(t, 3)
	h.s.Notify(fleet, "i-0000000000000abc", spotNotice(h.clk.Now().Add(time.Minute)))
	h.tick()
	if n := len(h.s.notices); n != 1 {
		t.Fatalf("queued notices = %d, want the unknown instance's kept", n)
	}
	h.clk.Add(2 * DefaultConfig().AgentGrace)
	h.tick()
	if n := len(h.s.notices); n != 0 {
		t.Fatalf("queued notices = %d, want it dropped after the agent grace", n)
	}
}

// The group replaces a Capacity Rebalancing instance itself and Shoal ends
// it without decrementing, so the engine must not count it as capacity
// gone: at the fleet's min that would buy a second replacement.
func TestSpotNoLaunchPathsAreNotCountedAsGone(t *testing.T) {
	h := steady(t, 2) // the fleet's min
	h.cloud.mu.Lock()
	h.cloud.groups[asg].CapacityRebalance = true
	h.cloud.mu.Unlock()
	victim := h.ids(cloud.LifecycleInService)[0]
	h.s.Notify(fleet, victim, spotNotice(h.clk.Now().Add(2*time.Minute)))
	for range 3 {
		h.tick()
		h.clk.Add(time.Second)
	}
	if n := h.countCalls("SetDesiredCapacity"); n != 0 {
		t.Fatalf("SetDesiredCapacity called %d times: the engine bought back capacity the group replaces itself (%v)", n, h.cloud.Calls())
	}
	if e, _ := h.s.Explain(fleet); e.Current != 2 {
		t.Fatalf("explain current = %d, want 2 (the group still counts the instance)", e.Current)
	}
}

// A scale-in victim that gets an interruption notice keeps draining with the
// notice's deadline, and is not replaced: the fleet wanted it gone anyway.
func TestSpotNoticeOnAScaleInVictimIsNotReplaced(t *testing.T) {
	h := steady(t, 3)
	victim := h.ids(cloud.LifecycleInService)[0]
	h.store.must(fsm.SetInstanceState(victim, shoalv1.InstanceState_INSTANCE_STATE_DRAINING))
	at := h.clk.Now().Add(2 * time.Minute)
	h.s.Notify(fleet, victim, spotNotice(at))
	h.tick()
	in := h.instance(victim)
	if in.InterruptionAction != "terminate" || !in.GetDrainDeadline().AsTime().Equal(at.Add(-15*time.Second)) || in.StateReason != "" {
		t.Fatalf("victim = %v, want the interruption and its deadline recorded, no replacement reason", in)
	}
	if n := len(h.spotDecisions()); n != 0 {
		t.Fatalf("a scale-in victim got %d replacements", n)
	}
}

// Warm-pool instances are not in the group's Instances; that is not flagged
// as a disagreement, as it is for an instance nobody knows.
func TestWarmInstanceOutsideTheGroupIsNotFlagged(t *testing.T) {
	h := steady(t, 2)
	yes := true
	for _, id := range []string{"i-0000000000000aaa", "i-0000000000000bbb"} {
		h.store.must(fsm.RegisterInstance(&shoalv1.Instance{Id: id, Fleet: fleet, PrivateIp: "127.0.0.9"}))
	}
	h.store.must(fsm.MarkInstance(fsm.Mark{ID: "i-0000000000000aaa", Warm: &yes}))
	h.clk.Add(2 * DefaultConfig().AgentGrace)
	h.tick()
	flags := h.s.Flags(fleet)
	if _, ok := flags["i-0000000000000aaa"]; ok {
		t.Fatalf("warm instance flagged: %v", flags)
	}
	if _, ok := flags["i-0000000000000bbb"]; !ok {
		t.Fatalf("unknown instance not flagged: %v", flags)
	}
}

// holdForReplacement keeps a replaced interruption while the fleet's
// in-service count is short of desired less what drains, until the
// instance's own deadline or, without one (a rebalance), the drain timeout.
func TestHoldForReplacement(t *testing.T) {
	now := time.Unix(1000, 0)
	started := now.Add(-3 * time.Second)
	inService := &shoalv1.Instance{State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE}
	pending := &shoalv1.Instance{State: shoalv1.InstanceState_INSTANCE_STATE_PENDING}
	draining := &shoalv1.Instance{State: shoalv1.InstanceState_INSTANCE_STATE_DRAINING, StateReason: reasonSpot + "x"}
	// 3 before the notice: a, b serve, v drains, r (its replacement) is
	// pending; desired 4, one draining.
	v := &view{g: &cloud.Group{Desired: 4}, draining: 1,
		insts:   map[string]*shoalv1.Instance{"a": inService, "b": inService, "v": draining, "r": pending},
		inGroup: map[string]cloud.Instance{"a": {}, "b": {}, "v": {}, "r": {}}}
	withDeadline := func(at time.Time) *shoalv1.Instance {
		in := &shoalv1.Instance{State: draining.State, StateReason: draining.StateReason, DrainDeadline: timestamppb.New(at)}
		return in
	}
	if !holdForReplacement(v, withDeadline(now.Add(time.Second)), started, now, 2*time.Second) {
		t.Fatal("released before the replacement served and before the deadline (the drain timeout does not end a deadline's wait)")
	}
	if holdForReplacement(v, withDeadline(now), started, now, time.Minute) {
		t.Fatal("held past the instance's deadline")
	}
	if !holdForReplacement(v, draining, started, now, 10*time.Second) || holdForReplacement(v, draining, started, now, 3*time.Second) {
		t.Fatal("a rebalance drain without a deadline: want held within the drain timeout and released at it")
	}
	v.insts["r"] = inService
	if holdForReplacement(v, withDeadline(now.Add(time.Minute)), started, now, time.Minute) {
		t.Fatal("held after the replacement served")
	}
	// An in-service instance the group no longer has does not count.
	v.insts["r"], v.insts["gone"] = pending, inService
	if !holdForReplacement(v, withDeadline(now.Add(time.Minute)), started, now, time.Minute) {
		t.Fatal("counted an instance outside the group as the replacement")
	}
}

// The replacement's SetDesiredCapacity must not cross a termination with
// decrement of the interrupted instance: computed from a view read before
// the termination (desired still counting the instance) and set after it,
// it would launch a second replacement. Here the replacement decision is
// left pending (leadership unconfirmed), the drain finishes in the
// background, and its termination lands between the next tick's read of
// the group and its act.
func TestSpotReplacementDoesNotCrossATermination(t *testing.T) {
	h := steady(t, 3)
	victim := h.ids(cloud.LifecycleInService)[1]
	h.lbs.release(victim) // nothing in flight: the drain is done at once
	hold := make(chan struct{})
	h.agents.mu.Lock()
	h.agents.hold = hold
	h.agents.mu.Unlock()
	h.cloud.mu.Lock()
	h.cloud.failSet = cloud.ErrNotLeader
	h.cloud.terminated = make(chan struct{}, 1)
	h.cloud.mu.Unlock()
	h.s.Notify(fleet, victim, spotNotice(h.clk.Now().Add(2*time.Minute)))
	h.s.Tick(context.Background()) // the finishing drain waits in its on-drain hook
	if ds := h.spotDecisions(); len(ds) != 1 || ds[0].Status != pending {
		t.Fatalf("spot decisions = %v, want one pending", ds)
	}
	h.cloud.mu.Lock()
	h.cloud.failSet = nil
	h.cloud.afterDescribe = func() {
		h.cloud.mu.Lock()
		h.cloud.afterDescribe = nil
		h.cloud.mu.Unlock()
		close(hold)
		select {
		case <-h.cloud.terminated:
		case <-time.After(10 * time.Second):
			t.Error("the drain never terminated its instance")
		}
	}
	h.cloud.mu.Unlock()
	h.clk.Add(time.Second)
	h.tick()
	for range 2 {
		h.clk.Add(time.Second)
		h.tick()
	}
	if calls := h.cloud.Calls(); !slices.Contains(calls, "TerminateInstance "+victim+" true") || h.countCalls("TerminateInstance") != 1 {
		t.Fatalf("calls = %v, want only the victim terminated, with decrement", calls)
	}
	if got := h.cloud.group(asg).Desired; got != 3 {
		t.Fatalf("group desired = %d, want 3: one replacement for one interruption (calls %v; decisions %v)", got, h.cloud.Calls(), h.decisions())
	}
}

// A flood of notices (each wakes the loop) does not drive ticks, and so
// cloud calls, past one per minWakeGap.
func TestNoticeFloodDoesNotDriveTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := steady(t, 3)
		h.s.cfg.EvalInterval = time.Hour
		victim := h.ids(cloud.LifecycleInService)[0]
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		describes := func() int {
			h.cloud.mu.Lock()
			defer h.cloud.mu.Unlock()
			return h.cloud.describes
		}
		before := describes()
		go func() { defer close(done); h.s.Run(ctx) }()
		synctest.Wait()
		for i := range 50 {
			h.s.Notify(fleet, victim, spotNotice(h.clk.Now().Add(time.Duration(i)*time.Second+time.Minute)))
			synctest.Wait()
		}
		time.Sleep(time.Second) // fake time: four gaps' worth
		synctest.Wait()
		cancel()
		<-done
		// The first tick, then at most one per 250 ms of the second that
		// passed (the fifty notices coalesce).
		if n := describes() - before; n < 2 || n > 6 {
			t.Fatalf("50 notices in 1 s made %d ticks, want 2..6", n)
		}
	})
}

// Capacity Rebalancing turned on after Shoal launched the replacement: the
// interrupted instance is still terminated with the decrement, so desired
// returns to its value before the notice.
func TestSpotCapacityRebalanceTurnedOnAfterShoalReplaced(t *testing.T) {
	h := steady(t, 3)
	victim := h.ids(cloud.LifecycleInService)[0]
	h.s.Notify(fleet, victim, spotNotice(h.clk.Now().Add(2*time.Minute)))
	h.tick()
	if got := h.cloud.group(asg).Desired; got != 4 {
		t.Fatalf("desired after the notice = %d, want 4", got)
	}
	h.cloud.mu.Lock()
	h.cloud.groups[asg].CapacityRebalance = true
	h.cloud.mu.Unlock()
	h.lbs.release(victim)
	h.clk.Add(time.Second)
	h.tick()
	h.serve(50) // Shoal's replacement serves: the drained victim may go
	if !slices.Contains(h.cloud.Calls(), "TerminateInstance "+victim+" true") {
		t.Fatalf("calls = %v, want the victim terminated with decrement", h.cloud.Calls())
	}
	if got := h.cloud.group(asg).Desired; got != 3 {
		t.Fatalf("desired after the termination = %d, want 3 (its value before the notice)", got)
	}
}

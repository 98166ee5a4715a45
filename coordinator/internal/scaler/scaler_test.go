package scaler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

type harness struct {
	t      *testing.T
	clk    *clock
	store  *store
	cloud  *fakeCloud
	met    *metricsFake
	lbs    *lbFake
	agents *agentsFake
	s      *Scaler
}

const fleet, asg = "web", "web-asg"

func newHarness(t *testing.T, desired int32, policy *shoalv1.ScalingPolicy) *harness {
	t.Helper()
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	h := &harness{t: t, clk: clk, store: newStore(clk), cloud: newFakeCloud(), met: &metricsFake{}, lbs: &lbFake{}, agents: &agentsFake{}}
	h.cloud.addGroup(asg, 1, 20, desired)
	h.store.must(fsm.CreateFleet(&shoalv1.Fleet{Name: fleet, Asg: asg, Min: 2, Max: 10, Desired: desired, Policy: policy}))
	cfg := DefaultConfig()
	cfg.Now, cfg.Logger, cfg.NodeID = clk.Now, slog.New(slog.NewTextHandler(io.Discard, nil)), "n1"
	s, err := New(cfg, Deps{Store: h.store, Cloud: h.cloud, Metrics: h.met, LBs: h.lbs, Agents: h.agents}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

func cpuPolicy() *shoalv1.ScalingPolicy {
	return &shoalv1.ScalingPolicy{
		TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}},
		ScaleInWindow:  durationpb.New(1 * time.Millisecond),
	}
}

// tick runs one evaluation and waits for the drains it started.
func (h *harness) tick() {
	h.s.Tick(context.Background())
	h.s.wg.Wait()
}

// ids returns the group's instances in the given lifecycle state.
func (h *harness) ids(state string) []string {
	var out []string
	for _, in := range h.cloud.group(asg).Instances {
		if in.LifecycleState == state {
			out = append(out, in.ID)
		}
	}
	slices.Sort(out)
	return out
}

// serve makes every in-service member report cpu and, as ingestion does for
// a ready agent, marks it in service; then it evaluates once.
func (h *harness) serve(cpu float64) {
	ids := h.ids(cloud.LifecycleInService)
	h.met.set(ids, "cpu", cpu)
	for _, id := range ids {
		if h.state(id) == shoalv1.InstanceState_INSTANCE_STATE_PENDING {
			h.store.must(fsm.SetInstanceState(id, shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE))
		}
	}
	h.tick()
}

func (h *harness) decisions() []*shoalv1.Decision {
	ds, err := h.store.Decisions(fleet, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return ds
}

func (h *harness) state(id string) shoalv1.InstanceState {
	in, err := h.store.f.Instance(id)
	if err != nil {
		return shoalv1.InstanceState_INSTANCE_STATE_UNSPECIFIED
	}
	return in.State
}

func (h *harness) countCalls(prefix string) int {
	n := 0
	for _, c := range h.cloud.Calls() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func TestScaleOutCommitsThenApplies(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	h.tick()
	h.serve(100)
	h.clk.Add(time.Second)
	h.met.set(h.ids(cloud.LifecycleInService), "cpu", 100)
	h.tick()

	ds := h.decisions()
	if len(ds) != 1 {
		t.Fatalf("decisions = %v, want one", ds)
	}
	d := ds[0]
	if d.PreviousCapacity != 2 || d.Capacity != 4 || d.Status != applied || d.Source != fsm.SourceAuto || d.Actor != "n1" || d.Inputs["cpu"] != 100 {
		t.Fatalf("decision = %v, want 2→4 applied with cpu 100 as input", d)
	}
	if got := h.cloud.group(asg).Desired; got != 4 {
		t.Fatalf("group desired = %d, want 4", got)
	}
	f, _ := h.store.f.Fleet(fleet)
	if f.Desired != 4 {
		t.Fatalf("fleet desired = %d, want 4 (the capacity Shoal last applied)", f.Desired)
	}
	if h.store.applies[fsm.OpCreateDecision] != 1 {
		t.Fatalf("committed %d decisions", h.store.applies[fsm.OpCreateDecision])
	}
}

func TestNewLeaderFinishesPendingDecisions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		groupAt    int32
		pending    []int32
		wantSets   int
		wantStatus []shoalv1.DecisionStatus
	}{
		{"crashed between commit and apply", 2, []int32{5}, 1, []shoalv1.DecisionStatus{applied}},
		{"crashed after apply, before recording", 5, []int32{5}, 0, []shoalv1.DecisionStatus{applied}},
		{"newer decision supersedes older", 2, []int32{4, 6}, 1, []shoalv1.DecisionStatus{superseded, applied}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.groupAt, nil)
			for _, to := range tc.pending {
				h.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: fleet, PreviousCapacity: 2, Capacity: to, Reason: "test", Source: fsm.SourceAuto}))
			}
			h.tick()
			h.tick() // a second pass must not apply anything again
			if got := h.countCalls("SetDesiredCapacity"); got != tc.wantSets {
				t.Fatalf("SetDesiredCapacity calls = %d, want %d (%v)", got, tc.wantSets, h.cloud.Calls())
			}
			want := tc.pending[len(tc.pending)-1]
			if got := h.cloud.group(asg).Desired; got != want {
				t.Fatalf("group desired = %d, want exactly %d", got, want)
			}
			ds := h.decisions()
			for i, st := range tc.wantStatus {
				if ds[i].Status != st {
					t.Fatalf("decision %d status = %v, want %v", ds[i].Id, ds[i].Status, st)
				}
			}
		})
	}
}

// TestScaleInTakesLaunchingInstancesFirst: a scale-in right after a
// scale-out drains the instances still launching, never the ones serving
// while those launch (the chaos harness saw an LB left with only draining
// backends, every request a 503).
func TestScaleInTakesLaunchingInstancesFirst(t *testing.T) {
	h := newHarness(t, 4, cpuPolicy())
	all := h.ids(cloud.LifecycleInService)
	launching := all[2:]
	h.cloud.mu.Lock()
	for i := range h.cloud.groups[asg].Instances {
		if slices.Contains(launching, h.cloud.groups[asg].Instances[i].ID) {
			h.cloud.groups[asg].Instances[i].LifecycleState = cloud.LifecyclePending
		}
	}
	h.cloud.mu.Unlock()
	h.tick()
	h.serve(10) // only the two in service report and are marked so
	h.clk.Add(time.Second)
	h.tick()
	for _, id := range all {
		want := shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE
		if slices.Contains(launching, id) {
			want = shoalv1.InstanceState_INSTANCE_STATE_DRAINING
		}
		if got := h.state(id); got != want && !(want == shoalv1.InstanceState_INSTANCE_STATE_DRAINING && got == shoalv1.InstanceState_INSTANCE_STATE_TERMINATED) {
			t.Errorf("%s (launching %v): %s, want %s", id, slices.Contains(launching, id), got, want)
		}
	}
}

func TestScaleInDrainsBeforeTerminating(t *testing.T) {
	h := newHarness(t, 4, cpuPolicy())
	h.tick()
	h.serve(10)
	h.clk.Add(time.Second)
	h.tick()

	draining := []string{}
	for _, id := range h.ids(cloud.LifecycleInService) {
		if h.state(id) == shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
			draining = append(draining, id)
		}
	}
	if len(draining) != 2 {
		t.Fatalf("draining = %v, want 2 victims (4 → min 2)", draining)
	}
	// 4 instances over 3 AZs (a, b, c, a): the survivors must span two AZs.
	azs := map[string]bool{}
	for _, in := range h.cloud.group(asg).Instances {
		if !slices.Contains(draining, in.ID) {
			azs[in.AZ] = true
		}
	}
	if len(azs) != 2 {
		t.Fatalf("victims %v leave the survivors in %v; want them balanced across AZs", draining, azs)
	}
	if d := h.decisions()[0]; d.PreviousCapacity != 4 || d.Capacity != 2 || d.Status != applied {
		t.Fatalf("decision = %v, want 4→2 applied once victims are draining", d)
	}
	// Still serving requests: nothing may be terminated.
	h.clk.Add(5 * time.Second)
	h.tick()
	if n := h.countCalls("TerminateInstance"); n != 0 {
		t.Fatalf("terminated %d instances still holding requests", n)
	}
	// No second scale-in while the first is in flight.
	if got := len(h.decisions()); got != 1 {
		t.Fatalf("decisions = %d, want 1 while a scale-in drains", got)
	}
	h.lbs.release(draining[0])
	h.tick()
	if got := h.countCalls("TerminateInstance"); got != 1 {
		t.Fatalf("TerminateInstance calls = %d, want 1 (only the drained victim)", got)
	}
	if !slices.Contains(h.cloud.Calls(), "TerminateInstance "+draining[0]+" true") {
		t.Fatalf("calls = %v, want the drained victim terminated with decrement", h.cloud.Calls())
	}
	if got := h.agents.list(); !slices.Equal(got, draining[:1]) {
		t.Fatalf("on-drain hooks = %v, want %v", got, draining[:1])
	}
	// The hook holds the terminated instance; Shoal completes the action.
	h.tick()
	if !slices.Contains(h.cloud.Calls(), "CompleteLifecycleAction "+draining[0]+" CONTINUE") {
		t.Fatalf("calls = %v, want the lifecycle action completed", h.cloud.Calls())
	}
	// The other victim hits the drain deadline.
	h.clk.Add(30 * time.Second)
	h.tick()
	h.tick()
	h.tick()
	if got := h.cloud.group(asg).Desired; got != 2 {
		t.Fatalf("group desired = %d, want 2", got)
	}
	if got := len(h.ids(cloud.LifecycleInService)); got != 2 {
		t.Fatalf("in service = %d, want 2", got)
	}
	for _, id := range draining {
		if _, err := h.store.f.Instance(id); err == nil {
			t.Fatalf("%s still registered after leaving the group", id)
		}
	}
}

func TestPauseStopsOnlyAutomaticDecisions(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	h.store.must(fsm.PauseFleet(fleet, true))
	h.tick()
	h.serve(100)
	h.clk.Add(time.Second)
	h.tick()
	if got := len(h.decisions()); got != 0 {
		t.Fatalf("paused fleet made %d automatic decisions", got)
	}
	if e, ok := h.s.Explain(fleet); !ok || !strings.Contains(e.Blocked, "paused") || e.Recommended != 4 {
		t.Fatalf("explain = %+v, want paused with a recommendation of 4", e)
	}
	h.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: fleet, PreviousCapacity: 2, Capacity: 6, Reason: "manual", Source: fsm.SourceManual}))
	h.tick()
	if got := h.cloud.group(asg).Desired; got != 6 {
		t.Fatalf("group desired = %d, want 6 from the manual scale", got)
	}
}

func TestCloudErrorsAreClassified(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want shoalv1.ErrorClass
	}{
		{"throttled", &cloud.Error{Op: "autoscaling:SetDesiredCapacity", Code: "Throttling", Status: 400, Kind: cloud.ErrThrottled, Err: errors.New("Rate exceeded")}, shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE},
		{"validation", &cloud.Error{Op: "autoscaling:SetDesiredCapacity", Code: "ValidationError", Status: 400, Kind: cloud.ErrValidation, Err: errors.New("bad")}, shoalv1.ErrorClass_ERROR_CLASS_FATAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 2, cpuPolicy())
			h.cloud.failSet = tc.err
			h.tick()
			h.serve(100)
			h.clk.Add(time.Second)
			h.tick()
			ds := h.decisions()
			if len(ds) == 0 {
				t.Fatal("no decision recorded")
			}
			d := ds[0]
			if d.Status != failed || d.ErrorClass != tc.want || !strings.Contains(d.Error, tc.err.Error()) {
				t.Fatalf("decision = %v, want failed/%v with the cloud's error", d, tc.want)
			}
		})
	}
}

func TestScaleInBlockedByGroupState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*harness)
		want  string
	}{
		{"suspended terminate", func(h *harness) {
			h.cloud.mu.Lock()
			h.cloud.groups[asg].SuspendedProcesses = []string{"Terminate"}
			h.cloud.mu.Unlock()
		}, "processes suspended: Terminate"},
		{"instance refresh", func(h *harness) {
			h.cloud.mu.Lock()
			h.cloud.refresh[asg] = &cloud.InstanceRefresh{ID: "ir-1", Status: "InProgress"}
			h.cloud.mu.Unlock()
		}, "instance refresh ir-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 4, cpuPolicy())
			tc.setup(h)
			h.tick()
			h.serve(10)
			h.clk.Add(time.Second)
			h.tick()
			if got := len(h.decisions()); got != 0 {
				t.Fatalf("decisions = %d, want none while scale-in is blocked", got)
			}
			if e, _ := h.s.Explain(fleet); !strings.Contains(e.Blocked, tc.want) {
				t.Fatalf("explain blocked = %q, want %q", e.Blocked, tc.want)
			}
		})
	}
}

func TestProtectedInstancesAreNeverVictims(t *testing.T) {
	h := newHarness(t, 3, cpuPolicy())
	ids := h.ids(cloud.LifecycleInService)
	if err := h.cloud.SetInstanceProtection(context.Background(), asg, ids[:2], true); err != nil {
		t.Fatal(err)
	}
	h.tick()
	h.serve(10)
	h.clk.Add(time.Second)
	h.tick()
	for _, id := range ids[:2] {
		if h.state(id) == shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
			t.Fatalf("protected %s chosen as a victim", id)
		}
	}
	if h.state(ids[2]) != shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
		t.Fatalf("the one unprotected instance should drain (3 → 2)")
	}
}

func TestFailingLaunchesStopScaleOut(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	h.cloud.mu.Lock()
	h.cloud.groups[asg].Desired = 3 // one launch outstanding, and failing
	for i := 0; i < 3; i++ {
		h.cloud.activities[asg] = append(h.cloud.activities[asg], cloud.Activity{Description: fmt.Sprintf("Launching a new EC2 instance (%d)", i), Status: "Failed", StatusMessage: "InsufficientInstanceCapacity"})
	}
	h.cloud.mu.Unlock()
	h.tick()
	h.serve(100)
	h.clk.Add(time.Second)
	h.tick()
	h.clk.Add(time.Second)
	h.tick()
	ds := h.decisions()
	if len(ds) != 1 || ds[0].Status != failed || !strings.Contains(ds[0].Error, "launches failing") || ds[0].ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE {
		t.Fatalf("decisions = %v, want one failed decision naming the failing launches", ds)
	}
	if got := h.countCalls("SetDesiredCapacity"); got != 0 {
		t.Fatalf("SetDesiredCapacity called %d times while launches fail", got)
	}
	if e, _ := h.s.Explain(fleet); !strings.Contains(e.Blocked, "InsufficientInstanceCapacity") {
		t.Fatalf("explain = %q, want the launch failure", e.Blocked)
	}
}

func TestRegistryFollowsTheGroup(t *testing.T) {
	h := newHarness(t, 2, nil)
	h.tick()
	ids := h.ids(cloud.LifecycleInService)
	for _, id := range ids {
		if h.state(id) != shoalv1.InstanceState_INSTANCE_STATE_PENDING {
			t.Fatalf("%s = %v, want registered as pending", id, h.state(id))
		}
	}
	h.met.set(ids[:1], "cpu", 20)
	h.tick()
	h.clk.Add(2 * time.Minute)
	h.tick()
	flags := h.s.Flags(fleet)
	if !strings.Contains(flags[ids[1]], "agent never reported") || flags[ids[0]] != "" {
		t.Fatalf("flags = %v, want only %s flagged", flags, ids[1])
	}
	h.store.must(fsm.RegisterInstance(&shoalv1.Instance{Id: "i-0000000005742a9e", Fleet: fleet, State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE}))
	h.clk.Add(2 * time.Minute)
	h.tick()
	if !strings.Contains(h.s.Flags(fleet)["i-0000000005742a9e"], "does not know") {
		t.Fatalf("flags = %v, want the unknown instance flagged", h.s.Flags(fleet))
	}
}

// TestUnknownUnhealthyInstancesRetire: an instance the group does not know
// leaves the registry, with its enrollment record, once it has been
// unhealthy for RetireUnknownAfter; one unhealthy for less stays.
func TestUnknownUnhealthyInstancesRetire(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	h.tick()
	const old, young = "i-0000000000000a01", "i-0000000000000a02"
	for _, id := range []string{old, young} {
		h.store.must(fsm.RegisterInstance(&shoalv1.Instance{Id: id, Fleet: fleet, State: shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY}))
	}
	h.store.must(fsm.IdentityEnroll(fsm.Identity{InstanceID: old, NonceSHA256: strings.Repeat("ab", 32), PendingTimeMS: 1}))
	h.clk.Add(DefaultConfig().RetireUnknownAfter - time.Minute)
	h.store.must(fsm.SetInstanceState(young, shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE))
	h.store.must(fsm.SetInstanceState(young, shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY))
	h.clk.Add(2 * time.Minute)
	h.tick()
	if st := h.state(old); st != shoalv1.InstanceState_INSTANCE_STATE_UNSPECIFIED {
		t.Fatalf("%s = %v after %v unhealthy and unknown to the group, want it gone", old, st, DefaultConfig().RetireUnknownAfter+time.Minute)
	}
	if _, ok := h.store.f.Identity(old); ok {
		t.Fatalf("%s's enrollment record outlived the instance", old)
	}
	if st := h.state(young); st != shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY {
		t.Fatalf("%s = %v after 2m unhealthy, want it kept", young, st)
	}
}

func TestGroupNotFound(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	h.store.must(fsm.CreateFleet(&shoalv1.Fleet{Name: "api", Asg: "api-asg", Min: 1, Max: 3}))
	h.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: "api", PreviousCapacity: 1, Capacity: 2, Source: fsm.SourceManual, Reason: "manual"}))
	h.tick()
	if got := h.s.GroupStatus("api"); got != "group not found" {
		t.Fatalf("group status = %q", got)
	}
	ds, _ := h.store.Decisions("api", 0)
	if ds[0].Status != pending {
		t.Fatalf("a decision for a missing group must wait, got %v", ds[0].Status)
	}
}

func TestLaunchFailure(t *testing.T) {
	f := func(s string) cloud.Activity {
		return cloud.Activity{Description: "Launching a new EC2 instance", Status: s, StatusMessage: "boom"}
	}
	for _, tc := range []struct {
		name string
		acts []cloud.Activity
		want bool
	}{
		{"three failed", []cloud.Activity{f("Failed"), f("Failed"), f("Failed")}, true},
		{"newest succeeded", []cloud.Activity{f("Successful"), f("Failed"), f("Failed"), f("Failed")}, false},
		{"terminations ignored", []cloud.Activity{f("Failed"), {Description: "Terminating EC2 instance", Status: "Successful"}, f("Failed"), f("Failed")}, true},
		{"two failed", []cloud.Activity{f("Failed"), f("Failed")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := launchFailure(tc.acts, 3) != ""; got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewLeaderHoldsScaleInForTheWindow(t *testing.T) {
	p := cpuPolicy()
	p.ScaleInWindow = durationpb.New(0 * time.Millisecond) // the default, 60 s
	h := newHarness(t, 4, p)
	h.tick()
	h.serve(10)
	for i := 0; i < 30; i++ {
		h.clk.Add(time.Second)
		h.tick()
	}
	if got := len(h.decisions()); got != 0 {
		t.Fatalf("scaled in %d times within the window after taking over", got)
	}
	h.clk.Add(31 * time.Second)
	h.tick()
	if ds := h.decisions(); len(ds) != 1 || ds[0].Capacity != 2 {
		t.Fatalf("decisions = %v, want one scale-in to 2 once the window passed", ds)
	}
}

// A leader that finishes a predecessor's pending decision must not decide
// again in the same tick: its view of the group and the registry was read
// before it acted, so a decision from it would start from the capacity the
// pending decision just left (a double step; seen as "6 → 4 after the
// previous ended at 5" in the crash-and-scale test).
func TestFinishingAPendingDecisionNeverDecidesFromAStaleView(t *testing.T) {
	for _, tc := range []struct {
		name         string
		groupAt, to  int32
		cpu          float64
		wantDraining int
	}{
		{"scale-out", 2, 4, 150, 0},
		{"scale-in", 6, 5, 30, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.groupAt, cpuPolicy())
			h.tick() // registers the group's instances
			ids := h.ids(cloud.LifecycleInService)
			for _, id := range ids {
				h.store.must(fsm.SetInstanceState(id, shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE))
			}
			h.met.set(ids, "cpu", tc.cpu)
			// The previous leader committed this and died before acting.
			h.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: fleet, PreviousCapacity: tc.groupAt, Capacity: tc.to, Reason: "test", Source: fsm.SourceAuto}))
			h.clk.Add(time.Second)
			h.tick()

			ds := h.decisions()
			if len(ds) != 1 || ds[0].Status != applied {
				t.Fatalf("decisions after finishing the pending one = %v, want only it, applied", ds)
			}
			draining := 0
			for _, id := range ids {
				if h.state(id) == shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
					draining++
				}
			}
			if draining != tc.wantDraining {
				t.Fatalf("draining = %d, want %d", draining, tc.wantDraining)
			}
			// Later ticks decide from where the pending decision ended.
			for i := 0; i < 5; i++ {
				h.clk.Add(time.Second)
				h.met.set(h.ids(cloud.LifecycleInService), "cpu", tc.cpu)
				h.tick()
			}
			prev := int32(-1)
			for _, d := range h.decisions() {
				if d.Status == superseded {
					continue
				}
				if prev >= 0 && d.PreviousCapacity != prev {
					t.Fatalf("decision %d goes %d → %d after the previous ended at %d: %v", d.Id, d.PreviousCapacity, d.Capacity, prev, h.decisions())
				}
				prev = d.Capacity
			}
		})
	}
}

package scaler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// warmCloud adds a warm pool to the fake group.
type warmCloud struct {
	*fakeCloud
	pool *cloud.WarmPool
}

func (w *warmCloud) DescribeWarmPool(context.Context, string) (*cloud.WarmPool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pool == nil {
		return nil, nil
	}
	cp := *w.pool
	cp.Instances = append([]cloud.Instance(nil), w.pool.Instances...)
	return &cp, nil
}

// nextID is the id the fake group gives its next launch.
func (h *harness) nextID() string {
	h.cloud.mu.Lock()
	defer h.cloud.mu.Unlock()
	return fmt.Sprintf("i-%017x", h.cloud.next+1)
}

// launch commits a manual +1, lets the scaler apply it, and brings the new
// instance in service after took.
func (h *harness) launch(took time.Duration) string {
	h.t.Helper()
	id := h.nextID()
	cur := h.cloud.group(asg).Desired
	h.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: fleet, PreviousCapacity: cur, Capacity: cur + 1, Reason: "test", Source: fsm.SourceManual}))
	h.tick() // applies it: the group launches
	h.tick() // registers the new instance, pending
	h.clk.Add(took)
	h.store.must(fsm.SetInstanceState(id, shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE))
	h.tick()
	return id
}

func TestLaunchDelayLearnedWarmAndCold(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy()) // no warmup in the policy
	wc := &warmCloud{fakeCloud: h.cloud}
	h.s.cfg.WarmPools = wc
	h.tick()
	h.serve(50)
	h.launch(40 * time.Second)
	h.launch(50 * time.Second)
	// The next launch comes from the pool.
	next := h.nextID()
	wc.mu.Lock()
	wc.pool = &cloud.WarmPool{Group: asg, MinSize: 1, PoolState: "Stopped", Instances: []cloud.Instance{{ID: next, LifecycleState: "Warmed:Stopped"}}}
	wc.mu.Unlock()
	h.clk.Add(warmPoolCheckEvery)
	h.tick()
	h.launch(8 * time.Second)

	got := map[string]*shoalv1.LaunchDelay{}
	for _, ld := range h.s.LaunchDelays(fleet) {
		got[ld.Kind] = ld
	}
	if c := got["cold"]; c == nil || c.Samples != 2 || c.P50.AsDuration() != 40*time.Second || c.P90.AsDuration() != 50*time.Second {
		t.Fatalf("cold = %v", c)
	}
	if w := got["warm"]; w == nil || w.Samples != 1 || w.P90.AsDuration() != 8*time.Second {
		t.Fatalf("warm = %v", w)
	}
	// The pool still shows one ready instance (the fake does not move it),
	// so the warm p90 is the expected delay and becomes the warmup.
	h.met.set(h.ids(cloud.LifecycleInService), "cpu", 50)
	h.clk.Add(time.Second)
	h.tick()
	e, _ := h.s.Explain(fleet)
	joined := strings.Join(e.Details, "\n")
	for _, want := range []string{"launch delay (warm, last 1): p50 8s, p90 8s", "launch delay (cold, last 2): p50 40s, p90 50s",
		"warm pool: 1 ready (Stopped, min 1)", "using the learned warm launch delay p90 8s"} {
		if !strings.Contains(joined, want) {
			t.Errorf("explain lacks %q:\n%s", want, joined)
		}
	}
}

// An explicit warmup, even 0, is the policy's choice: the learned delay
// does not replace it.
func TestLearnedDelayNeverOverridesAnExplicitWarmup(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	h.tick()
	h.serve(50)
	h.launch(30 * time.Second)
	p := cpuPolicy()
	p.Warmup = durationOf(0)
	got, d, note := h.s.warmupPolicy(fleet, p)
	if got.GetWarmup().AsDuration() != 0 || note != "" || d != 30*time.Second {
		t.Fatalf("explicit 0: warmup %v, delay %v, note %q", got.GetWarmup(), d, note)
	}
	got, _, note = h.s.warmupPolicy(fleet, cpuPolicy())
	if got.GetWarmup().AsDuration() != 30*time.Second || note == "" {
		t.Fatalf("unset: warmup %v, note %q", got.GetWarmup(), note)
	}
}

func TestFailedLaunchesShowInDecisions(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	h.tick()
	h.cloud.mu.Lock()
	h.cloud.groups[asg].Desired = 3 // one launch outstanding
	h.cloud.activities[asg] = []cloud.Activity{
		{ID: "act-2", Description: "Launching a new EC2 instance.  Status Reason: bad template", Status: "Failed", Start: h.clk.Now(),
			StatusMessage: "The specified launch template, with template ID lt-0abc, does not exist. InvalidLaunchTemplateId.NotFound - lt-0abc. Launching EC2 instance failed."},
		{ID: "act-1", Description: "Launching a new EC2 instance.  Status Reason: capacity", Status: "Failed", Start: h.clk.Now(),
			StatusMessage: "Could not launch On-Demand Instances. InsufficientInstanceCapacity - We currently do not have sufficient capacity. Launching EC2 instance failed."},
		{ID: "act-0", Description: "Launching a new EC2 instance: i-1", Status: "Successful", Start: h.clk.Now()},
	}
	h.cloud.mu.Unlock()
	h.clk.Add(time.Second)
	h.tick()
	ds := h.decisions()
	if len(ds) != 2 {
		t.Fatalf("decisions = %v, want the two failed launches", ds)
	}
	if d := ds[0]; d.Status != failed || d.ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE ||
		!strings.Contains(d.Reason, "InsufficientInstanceCapacity") || !strings.HasPrefix(d.Error, "activity act-1: Could not launch On-Demand Instances.") {
		t.Fatalf("capacity failure = %v", d)
	}
	if d := ds[1]; d.ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_FATAL || !strings.Contains(d.Reason, "InvalidLaunchTemplateId.NotFound") {
		t.Fatalf("template failure = %v", d)
	}
	// Read again, and by a new leader: recorded once.
	h.clk.Add(DefaultConfig().ActivityCheckEvery)
	h.tick()
	h.newLeader(nil)
	h.tick()
	if n := len(h.decisions()); n != 2 {
		t.Fatalf("decisions after re-reads = %d, want 2", n)
	}
}

func TestLaunchCode(t *testing.T) {
	for msg, want := range map[string]string{
		"Could not launch On-Demand Instances. InsufficientInstanceCapacity - We currently do not have sufficient capacity.": "InsufficientInstanceCapacity",
		"Could not launch Spot Instances. SpotMaxPriceTooLow - Your Spot request price is lower.":                            "SpotMaxPriceTooLow",
		"The image id '[ami-1]' does not exist. Launching EC2 instance failed.":                                              "",
	} {
		if got := launchCode(msg); got != want {
			t.Errorf("launchCode(%q) = %q, want %q", msg, got, want)
		}
	}
}

func durationOf(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// A new leader (a second scaler over the same replicated state) has the
// first one's learned delays before it times any launch itself: in
// LaunchDelays, in explain and as the warmup of a policy that sets none.
func TestNewLeaderKeepsTheLearnedLaunchDelay(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy()) // no warmup in the policy
	h.tick()
	h.serve(50)
	h.launch(30 * time.Second)
	h.launch(40 * time.Second)
	h.launch(90 * time.Second)
	if n := h.store.applies[fsm.OpLaunchSample]; n != 3 {
		t.Fatalf("launch samples committed = %d, want 3", n)
	}
	h.newLeader(nil)
	ld := h.s.LaunchDelays(fleet)
	if len(ld) != 1 || ld[0].Kind != "cold" || ld[0].Samples != 3 || ld[0].P50.AsDuration() != 40*time.Second || ld[0].P90.AsDuration() != 90*time.Second {
		t.Fatalf("new leader's launch delays = %v, want cold 3 samples p50 40s p90 1m30s", ld)
	}
	p, d, note := h.s.warmupPolicy(fleet, cpuPolicy())
	if p.GetWarmup().AsDuration() != 90*time.Second || d != 90*time.Second || !strings.Contains(note, "learned cold launch delay p90 1m30s") {
		t.Fatalf("new leader's warmup = %v, delay %v, note %q; want the learned p90 1m30s", p.GetWarmup(), d, note)
	}
	h.met.set(h.ids(cloud.LifecycleInService), "cpu", 50)
	h.clk.Add(time.Second)
	h.tick()
	e, ok := h.s.Explain(fleet)
	if !ok {
		t.Fatal("not evaluated")
	}
	joined := strings.Join(e.Details, "\n")
	for _, want := range []string{"launch delay (cold, last 3): p50 40s, p90 1m30s", "using the learned cold launch delay p90 1m30s"} {
		if !strings.Contains(joined, want) {
			t.Errorf("new leader's explain lacks %q:\n%s", want, joined)
		}
	}
	// It times none of the launches it did not see begin, and learns on
	// from its own into the same samples.
	if n := h.store.applies[fsm.OpLaunchSample]; n != 3 {
		t.Fatalf("the new leader re-timed old launches: %d samples committed", n)
	}
	h.launch(20 * time.Second)
	if got := h.store.f.LaunchSamples(fleet)["cold"]; len(got) != 4 || got[3] != 20*time.Second {
		t.Fatalf("cold samples after the new leader's launch = %v", got)
	}
}

// A sample that fails to commit is counted and logged, never retried, and
// leaves nothing learned behind.
func TestLaunchSampleCommitFailureIsCountedNotRetried(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	h.store.refuse = func(c fsm.Command) error {
		if c.Op == fsm.OpLaunchSample {
			return errors.New("not the leader")
		}
		return nil
	}
	h.tick()
	h.serve(50)
	h.launch(30 * time.Second)
	if got := testutil.ToFloat64(h.s.met.launches.WithLabelValues("commit_failed")); got != 1 {
		t.Fatalf("commit_failed = %v, want 1", got)
	}
	h.store.refuse = nil
	h.tick()
	h.tick()
	if n := h.store.applies[fsm.OpLaunchSample]; n != 1 {
		t.Fatalf("launch sample attempts = %d, want 1 (no retry)", n)
	}
	if ld := h.s.LaunchDelays(fleet); len(ld) != 0 {
		t.Fatalf("learned %v from a sample that never committed", ld)
	}
	h.launch(25 * time.Second)
	if got := testutil.ToFloat64(h.s.met.launches.WithLabelValues("committed")); got != 1 {
		t.Fatalf("committed = %v, want 1", got)
	}
}

// A launch timed above the FSM's bound (here a state change stamped by a
// leader whose clock ran two hours ahead) is dropped and counted, not sent
// to the log to be refused.
func TestLaunchSampleAboveTheBoundIsDropped(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	h.tick()
	h.serve(50)
	id := h.nextID()
	cur := h.cloud.group(asg).Desired
	h.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: fleet, PreviousCapacity: cur, Capacity: cur + 1, Reason: "test", Source: fsm.SourceManual}))
	h.tick()
	h.tick()
	b, err := fsm.Stamp(fsm.SetInstanceState(id, shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE).Encode(), h.clk.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	h.store.mu.Lock()
	h.store.index++
	r := h.store.f.ApplyBytes(h.store.index, b)
	h.store.mu.Unlock()
	if r.Error() != nil {
		t.Fatal(r.Error())
	}
	h.tick()
	if got := testutil.ToFloat64(h.s.met.launches.WithLabelValues("out_of_range")); got != 1 {
		t.Fatalf("out_of_range = %v, want 1", got)
	}
	if n := h.store.applies[fsm.OpLaunchSample]; n != 0 || len(h.s.LaunchDelays(fleet)) != 0 {
		t.Fatalf("an out-of-range launch reached the log: %d samples, delays %v", n, h.s.LaunchDelays(fleet))
	}
}

// A node that leads again after another leader's term starts its launch
// timing afresh. Kept from its earlier term, its bookkeeping (instances
// seen, scale-outs waiting) would time the other leader's launch again or,
// as here, time its own next launch from the other leader's scale-out
// (40 s + 20 s: a 60 s sample for a 20 s launch).
func TestLeaderAgainDoesNotRetimeAnotherLeadersLaunch(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	h.tick()
	h.serve(50)
	h.launch(30 * time.Second)
	first := h.s
	h.newLeader(nil)
	h.tick()
	h.launch(40 * time.Second) // timed by the second leader
	if n := h.store.applies[fsm.OpLaunchSample]; n != 2 {
		t.Fatalf("launch samples committed = %d, want 2", n)
	}
	// The first node leads again: Run starts its term (the cancelled
	// context ends it after the first tick).
	h.s = first
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.s.Run(ctx)
	h.tick()
	h.tick()
	if n := h.store.applies[fsm.OpLaunchSample]; n != 2 {
		t.Fatalf("launch samples committed = %d after the first node leads again, want 2 (no launch timed twice)", n)
	}
	if got := h.store.f.LaunchSamples(fleet)["cold"]; len(got) != 2 {
		t.Fatalf("cold samples = %v, want the 2 launches once each", got)
	}
	h.launch(20 * time.Second) // and it learns on from its own
	if got := h.store.f.LaunchSamples(fleet)["cold"]; len(got) != 3 || got[2] != 20*time.Second {
		t.Fatalf("cold samples after its own launch = %v", got)
	}
}

// More scale-outs in one term than the FSM's decision history holds: the
// ones still listed are never counted in again once their instances came,
// so the next launch is timed from its own scale-out, not from an old one.
func TestTrackedScaleOutsAreNeverCountedTwice(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	const big = "big"
	h.store.must(fsm.CreateFleet(&shoalv1.Fleet{Name: big, Asg: "big-asg", Min: 0, Max: 1000}))
	fl, err := h.store.f.Fleet(big)
	if err != nil {
		t.Fatal(err)
	}
	v := &view{f: fl, g: &cloud.Group{Name: "big-asg"}, insts: map[string]*shoalv1.Instance{}, inGroup: map[string]cloud.Instance{}}
	h.s.timeLaunches(context.Background(), v) // starts this term's timing
	n := fsm.DefaultDecisionsPerFleet + 1
	scaleOut := func(k int) {
		h.clk.Add(time.Millisecond)
		h.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: big, PreviousCapacity: int32(k), Capacity: int32(k + 1), Reason: "test", Source: fsm.SourceManual}))
	}
	for k := range n {
		scaleOut(k)
		if k == n/2 { // read halfway, so all n are tracked
			h.s.timeLaunches(context.Background(), v)
		}
	}
	h.s.timeLaunches(context.Background(), v)
	// All n launches come in service at once, each answering one scale-out.
	h.clk.Add(10 * time.Second)
	for k := range n {
		id := fmt.Sprintf("i-%04d", k)
		v.insts[id] = &shoalv1.Instance{Id: id, Fleet: big, State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE,
			StateChangeTime: timestamppb.New(h.clk.Now().Add(time.Duration(k) * time.Microsecond))}
	}
	if got := len(h.s.timeLaunches(context.Background(), v)); got != n {
		t.Fatalf("timed %d launches, want %d", got, n)
	}
	h.s.timeLaunches(context.Background(), v)
	// One more scale-out, in service 7 s later.
	h.clk.Add(time.Minute)
	scaleOut(n)
	h.clk.Add(7 * time.Second)
	v.insts["i-last"] = &shoalv1.Instance{Id: "i-last", Fleet: big, State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, StateChangeTime: timestamppb.New(h.clk.Now())}
	got := h.s.timeLaunches(context.Background(), v)
	if len(got) != 1 || got[0].DurationMS != 7000 {
		t.Fatalf("last launch timed %v, want one sample of 7000 ms", got)
	}
	if ls := h.s.launches(big); len(ls.tracked) > fsm.DefaultDecisionsPerFleet {
		t.Fatalf("tracked %d scale-outs, more than the %d the history holds", len(ls.tracked), fsm.DefaultDecisionsPerFleet)
	}
}

// Scale-outs whose instances never come are forgotten after
// launchForgetAfter even when no instance comes in service at all.
func TestUnansweredScaleOutsDoNotPileUp(t *testing.T) {
	h := newHarness(t, 2, cpuPolicy())
	const big = "big"
	h.store.must(fsm.CreateFleet(&shoalv1.Fleet{Name: big, Asg: "big-asg", Min: 0, Max: 1000}))
	fl, err := h.store.f.Fleet(big)
	if err != nil {
		t.Fatal(err)
	}
	v := &view{f: fl, g: &cloud.Group{Name: "big-asg"}, insts: map[string]*shoalv1.Instance{}, inGroup: map[string]cloud.Instance{}}
	h.s.timeLaunches(context.Background(), v)
	for k := range 100 {
		h.clk.Add(time.Minute)
		h.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: big, PreviousCapacity: int32(k), Capacity: int32(k + 1), Reason: "test", Source: fsm.SourceManual}))
		h.s.timeLaunches(context.Background(), v)
	}
	want := int(launchForgetAfter/time.Minute) + 1
	if got := len(h.s.launches(big).pending); got > want {
		t.Fatalf("%d scale-outs wait for instances, want at most the %d of the last %v", got, want, launchForgetAfter)
	}
}

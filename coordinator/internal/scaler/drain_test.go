package scaler

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// completeFails is a cloud whose CompleteLifecycleAction fails with err.
type completeFails struct {
	*fakeCloud
	err error
}

func (c completeFails) CompleteLifecycleAction(context.Context, cloud.LifecycleAction, string) error {
	return c.err
}

// TestCompleteActionKnowsAGoneActionBySentinel: an action that is already
// gone (the group timed out the hook, or another leader completed it) is not
// a failure; the cloud package says so with a sentinel, and the scaler trusts
// the sentinel, not the provider's wording.
func TestCompleteActionKnowsAGoneActionBySentinel(t *testing.T) {
	gone := &cloud.Error{Op: "autoscaling:CompleteLifecycleAction", Code: "ValidationError", Status: 400,
		Kind: cloud.ErrLifecycleActionNotFound, Err: errors.New("No active Lifecycle Action found with instance ID i-1")}
	for _, tc := range []struct {
		name  string
		err   error
		class string // the cloud error counted, "" for none
	}{
		{"gone", gone, ""},
		{"gone, wrapped", fmt.Errorf("complete i-1: %w", gone), ""},
		// The provider's words without the sentinel are an error nobody
		// classified, not a gone action.
		{"the words without the sentinel", errors.New("ValidationError: No active Lifecycle Action found with instance ID i-1"), "fatal"},
		{"throttled", &cloud.Error{Op: "autoscaling:CompleteLifecycleAction", Code: "Throttling", Status: 400, Kind: cloud.ErrThrottled, Err: errors.New("Rate exceeded")}, "retryable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 2, nil)
			h.s.deps.Cloud = completeFails{fakeCloud: h.cloud, err: tc.err}
			v := &view{f: &shoalv1.Fleet{Name: fleet}, g: &cloud.Group{Name: asg}}
			h.s.completeAction(context.Background(), v, "i-1")
			for _, class := range []string{"retryable", "fatal"} {
				want := 0.0
				if class == tc.class {
					want = 1
				}
				if got := testutil.ToFloat64(h.s.met.cloudErrors.WithLabelValues(class)); got != want {
					t.Fatalf("cloud errors counted as %s = %v, want %v", class, got, want)
				}
			}
		})
	}
}

// TestScaleOutWhileDrainingNeverAsksAboveMax is the chaos harness's
// finding: a manual scale-out to the group's MaxSize while two instances
// drained asked for MaxSize+2, which Auto Scaling refused, and the decision
// failed. It must wait for the drains and then be applied.
func TestScaleOutWhileDrainingNeverAsksAboveMax(t *testing.T) {
	h := newHarness(t, 4, cpuPolicy())
	h.cloud.mu.Lock()
	h.cloud.groups[asg].Max = 6
	h.cloud.mu.Unlock()
	h.tick()
	h.serve(10)
	h.clk.Add(time.Second)
	h.tick() // scale-in 4 → 2: two victims draining, held by the LB
	var draining []string
	for _, id := range h.ids(cloud.LifecycleInService) {
		if h.state(id) == shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
			draining = append(draining, id)
		}
	}
	if len(draining) != 2 {
		t.Fatalf("draining %v, want 2", draining)
	}
	h.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: fleet, PreviousCapacity: 2, Capacity: 6, Reason: "manual", Source: fsm.SourceManual}))
	h.tick()
	for _, c := range h.cloud.Calls() {
		if c == "SetDesiredCapacity "+asg+" 8" {
			t.Fatalf("asked the group (max 6) for 8: %v", h.cloud.Calls())
		}
	}
	ds := h.decisions()
	if last := ds[len(ds)-1]; last.Status != pending {
		t.Fatalf("decision %v, want pending while instances drain", last)
	}
	for _, id := range draining {
		h.lbs.release(id)
	}
	for i := 0; i < 4; i++ {
		h.tick()
	}
	ds = h.decisions()
	if last := ds[len(ds)-1]; last.Status != applied || h.cloud.group(asg).Desired != 6 {
		t.Fatalf("after the drains: decision %v, group desired %d; want applied at 6", last, h.cloud.group(asg).Desired)
	}
}

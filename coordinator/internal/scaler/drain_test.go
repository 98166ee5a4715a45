package scaler

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
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

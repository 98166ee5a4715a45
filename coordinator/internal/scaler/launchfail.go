package scaler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// failedLaunchWindow is how far back a failed launch activity is still
// recorded: older ones were the previous leader's to record, and a new
// leader that missed them would only add noise.
const failedLaunchWindow = 10 * time.Minute

// retryableLaunchCodes are EC2 errors that pass with time (capacity, price,
// throttling); any other code (a launch template error, a quota) needs a
// person, so it is fatal.
var retryableLaunchCodes = map[string]bool{
	"InsufficientInstanceCapacity": true, "InsufficientCapacity": true, "InsufficientHostCapacity": true,
	"SpotMaxPriceTooLow": true, "MaxSpotInstanceCountExceeded": true, "InsufficientFreeAddressesInSubnet": true,
	"RequestLimitExceeded": true, "Throttling": true, "ServiceUnavailable": true, "InternalError": true,
}

// launchErrorClass classifies a failed launch by its EC2 error code.
func launchErrorClass(code string) shoalv1.ErrorClass {
	if retryableLaunchCodes[code] {
		return shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE
	}
	return shoalv1.ErrorClass_ERROR_CLASS_FATAL
}

// recordFailedLaunches reads the group's scaling activities while it is
// short of instances and records each launch that failed as a failed
// decision: its reason names the EC2 error code, its error AWS's status
// message and the activity, its class whether waiting helps. An activity
// already named by a decision is not recorded again, so a new leader
// records only what the old one did not.
func (s *Scaler) recordFailedLaunches(ctx context.Context, v *view) {
	ls := s.launches(v.f.Name)
	now := s.cfg.Now()
	live := int32(0)
	for _, gi := range v.inGroup {
		if !strings.HasPrefix(gi.LifecycleState, cloud.LifecycleTerminating) {
			live++
		}
	}
	// A failed launch is often retried and succeeds before the group
	// looks short on a tick, so a scale-out still waiting for instances
	// keeps the activities read too.
	if (live >= v.g.Desired && !ls.launchOutstanding(now)) || now.Sub(ls.actCheck) < s.cfg.ActivityCheckEvery {
		return
	}
	ls.actCheck = now
	acts, err := s.deps.Cloud.DescribeScalingActivities(ctx, v.g.Name, 20)
	if err != nil {
		s.cloudErr("describe scaling activities", v.g.Name, err)
		return
	}
	ds, err := s.deps.Store.Decisions(v.f.Name, 0)
	if err != nil {
		return
	}
	source := fsm.SourceReconcile
	for _, d := range ds {
		if d.Capacity > d.PreviousCapacity {
			source = d.Source // the newest scale-out's: the launch answered it
		}
	}
	// Oldest first, so decisions read in the order the launches failed.
	for i := len(acts) - 1; i >= 0; i-- {
		a := acts[i]
		if !a.Failed() || !strings.HasPrefix(strings.ToLower(a.Description), "launching") || now.Sub(a.Start) > failedLaunchWindow || a.ID == "" {
			continue
		}
		tag := "activity " + a.ID
		if recordedActivity(ds, tag) {
			continue
		}
		code := launchCode(a.StatusMessage)
		what := code
		if what == "" {
			what = "launch error"
		}
		cur := min(max(v.current(), v.f.Min), v.f.Max)
		r, err := s.apply(ctx, fsm.CreateDecision(&shoalv1.Decision{
			Fleet: v.f.Name, PreviousCapacity: cur, Capacity: cur, Source: source, Actor: s.cfg.NodeID,
			Reason: fmt.Sprintf("launch failed: %s (group %s)", what, v.g.Name),
		}))
		if err != nil {
			s.cfg.Logger.Warn("scaler: record failed launch", "fleet", v.f.Name, "activity", a.ID, "err", err)
			return
		}
		msg := fmt.Sprintf("%s: %s", tag, a.StatusMessage)
		if len(msg) > fsm.MaxTextLen {
			msg = msg[:fsm.MaxTextLen]
		}
		if _, err := s.apply(ctx, fsm.UpdateDecision(r.Decision.GetId(), failed, msg, launchErrorClass(code))); err != nil {
			s.cfg.Logger.Warn("scaler: record failed launch outcome", "decision", r.Decision.GetId(), "err", err)
			return
		}
		s.met.outcomes.WithLabelValues("failed").Inc()
		s.cfg.Logger.Warn("scaler: launch failed", "fleet", v.f.Name, "group", v.g.Name, "code", code, "activity", a.ID, "status", a.StatusMessage)
		ds = append(ds, &shoalv1.Decision{Error: msg})
	}
}

func recordedActivity(ds []*shoalv1.Decision, tag string) bool {
	for _, d := range ds {
		if strings.HasPrefix(d.Error, tag+":") {
			return true
		}
	}
	return false
}

package scaler

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func TestLifecycleHookDrainsForeignTermination(t *testing.T) {
	h := newHarness(t, 3, nil)
	h.tick()
	h.serve(40)
	if !slices.Contains(h.cloud.Calls(), "PutLifecycleHook "+asg+" shoal-drain") {
		t.Fatalf("calls = %v, want Shoal's TERMINATING hook put on the group", h.cloud.Calls())
	}
	victim := h.ids(cloud.LifecycleInService)[0]
	h.cloud.terminateByGroup(asg, victim)
	h.tick()
	if got := h.state(victim); got != shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
		t.Fatalf("state = %v, want draining", got)
	}
	h.clk.Add(25 * time.Second)
	h.tick()
	if got := h.countCalls("RecordLifecycleActionHeartbeat " + victim); got == 0 {
		t.Fatal("no lifecycle heartbeat while the drain lasts")
	}
	if got := h.countCalls("CompleteLifecycleAction"); got != 0 {
		t.Fatal("completed the action before the drain")
	}
	h.lbs.release(victim)
	h.tick()
	if !slices.Contains(h.cloud.Calls(), "CompleteLifecycleAction "+victim+" CONTINUE") {
		t.Fatalf("calls = %v, want CompleteLifecycleAction CONTINUE", h.cloud.Calls())
	}
	if n := h.countCalls("TerminateInstance"); n != 0 {
		t.Fatalf("Shoal terminated %d instances; the group was already doing it", n)
	}
	if got := h.cloud.group(asg).Desired; got != 3 {
		t.Fatalf("group desired = %d, want 3 (a replacement, not a scale-in)", got)
	}
}

// A hook the operator put with another heartbeat timeout (Terraform's
// drain_timeout_seconds) is kept, not rewritten, and drains heartbeat by
// it; a group with no hook gets --hook-heartbeat's.
func TestLifecycleHookKeepsOperatorsHeartbeat(t *testing.T) {
	h := newHarness(t, 3, nil)
	h.cloud.mu.Lock()
	h.cloud.hooks[asg] = []cloud.LifecycleHook{{Name: cloud.DrainHookName, Group: asg, Transition: cloud.TransitionTerminating, HeartbeatTimeout: 600 * time.Second, DefaultResult: cloud.ResultContinue}}
	h.cloud.mu.Unlock()
	h.tick()
	h.serve(40)
	if slices.Contains(h.cloud.Calls(), "PutLifecycleHook "+asg+" shoal-drain") {
		t.Fatalf("calls = %v: the scaler rewrote a hook whose 600 s heartbeat AWS accepts", h.cloud.Calls())
	}
	hooks, _ := h.cloud.DescribeLifecycleHooks(context.Background(), asg)
	if len(hooks) != 1 || hooks[0].HeartbeatTimeout != 600*time.Second {
		t.Fatalf("hooks = %+v, want the operator's one with 600 s", hooks)
	}
}

func TestHookHeartbeatWithinAWSLimits(t *testing.T) {
	for _, d := range []time.Duration{29 * time.Second, 7201 * time.Second, 90500 * time.Millisecond} {
		c := DefaultConfig()
		c.HookHeartbeat = d
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "hook-heartbeat") {
			t.Errorf("HookHeartbeat %v: Validate() = %v, want an error naming hook-heartbeat", d, err)
		}
	}
	for _, d := range []time.Duration{30 * time.Second, 7200 * time.Second} {
		c := DefaultConfig()
		c.HookHeartbeat = d
		if err := c.Validate(); err != nil {
			t.Errorf("HookHeartbeat %v: %v", d, err)
		}
	}
}

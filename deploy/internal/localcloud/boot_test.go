package localcloud

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// info returns the local cloud's view of one instance.
func (tc *testCloud) info(t *testing.T, id string) InstanceInfo {
	t.Helper()
	for _, in := range tc.instances(t) {
		if in.ID == id {
			return in
		}
	}
	t.Fatalf("instance %s not listed", id)
	return InstanceInfo{}
}

// waitProcess waits until instance id runs its workload.
func (tc *testCloud) waitProcess(t *testing.T, id string) {
	t.Helper()
	tc.eventually(t, 10*time.Second, func() error {
		if in := tc.info(t, id); in.PID == 0 {
			return fmt.Errorf("instance %s (%s) runs no process", id, in.State)
		}
		return nil
	})
}

// settle lets a few reconcile passes run, so a change that should not
// happen has had its chance to.
func (tc *testCloud) settle(t *testing.T) {
	t.Helper()
	n := 0
	tc.eventually(t, 10*time.Second, func() error {
		if n++; n < 4 {
			return fmt.Errorf("pass %d", n)
		}
		return nil
	})
}

// TestWorkloadStartsWhenBooted: an instance's programs start once it has
// booted, as on EC2, so its agent is ready a launch delay after the launch:
// a cold launch after --boot-delay, one taken from a stopped warm pool after
// --warm-boot-delay. A stopped pool's instances never run theirs.
func TestWorkloadStartsWhenBooted(t *testing.T) {
	tc := startCloud(t, func(c *Config) { c.BootDelay, c.WarmBootDelay = time.Hour, 10*time.Second })
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 2, 1, nil)
	var cold string
	tc.eventually(t, 10*time.Second, func() error {
		g := tc.describeGroup(t, "g")
		if len(g.Instances) != 1 {
			return fmt.Errorf("%d instances", len(g.Instances))
		}
		cold = aws.ToString(g.Instances[0].InstanceId)
		return nil
	})
	tc.settle(t)
	if in := tc.info(t, cold); in.State != statePending || in.PID != 0 {
		t.Fatalf("an hour before its boot ends, %s is %s with pid %d; want pending with no process", cold, in.State, in.PID)
	}
	tc.advance(t, time.Hour)
	tc.waitInService(t, "g", 1)
	tc.waitProcess(t, cold)

	if _, err := tc.asg.PutWarmPool(ctxT(t), &autoscaling.PutWarmPoolInput{AutoScalingGroupName: aws.String("g"), MinSize: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	tc.waitWarm(t, "g", 1, astypes.LifecycleStateWarmedPending)
	tc.advance(t, time.Hour)
	warm := tc.waitWarm(t, "g", 1, astypes.LifecycleStateWarmedStopped)[0]
	if in := tc.info(t, warm); in.State != stateStopped || in.PID != 0 {
		t.Fatalf("stopped warm instance %s is %s with pid %d", warm, in.State, in.PID)
	}

	tc.setDesired(t, "g", 2)
	tc.eventually(t, 10*time.Second, func() error {
		if st := tc.lifecycleOf(t, "g", warm); st != astypes.LifecycleStatePending {
			return fmt.Errorf("warm instance %s is %s", warm, st)
		}
		return nil
	})
	tc.advance(t, 9*time.Second)
	tc.settle(t)
	if in := tc.info(t, warm); in.State != statePending || in.PID != 0 {
		t.Fatalf("9 s into a 10 s warm boot, %s is %s with pid %d; want pending with no process", warm, in.State, in.PID)
	}
	tc.advance(t, time.Second)
	tc.waitInService(t, "g", 2)
	tc.waitProcess(t, warm)
}

// A workload that cannot start at boot fails the instance's status check:
// the group replaces it, and the failed one ends terminated with its
// address released. With ReplaceUnhealthy suspended it stays, Unhealthy
// and pending, and the start is not retried on every reconcile pass.
func TestWorkloadThatCannotStartAtBoot(t *testing.T) {
	t.Run("replaced", func(t *testing.T) {
		c, clk, _ := newStateCloud(t, nil)
		spawns := 0
		c.spawn = func(procSpec) (*proc, error) { spawns++; return nil, errors.New("exec: no such file") }
		mustGroup(t, c, "g", 1, 1, 1)
		c.Reconcile()
		failed := c.Groups(nil)[0].Instances[0].ID
		c.mu.Lock()
		ip := c.instances[failed].IP
		c.mu.Unlock()
		clk.t = clk.t.Add(3 * time.Second) // boot over
		c.Reconcile()                      // start fails: unhealthy, replaced
		c.Reconcile()                      // terminated
		c.mu.Lock()
		in := c.instances[failed]
		st, health, used := in.State, in.Health, c.ipUsed[ip]
		c.mu.Unlock()
		if st != stateTerminated || health != "Unhealthy" || used {
			t.Fatalf("instance whose workload did not start: %s/%s, address still used %v; want terminated, Unhealthy, released", st, health, used)
		}
		if spawns != 1 {
			t.Fatalf("%d start attempts for the failed instance, want 1", spawns)
		}
	})
	t.Run("ReplaceUnhealthy suspended", func(t *testing.T) {
		c, clk, _ := newStateCloud(t, nil)
		spawns := 0
		c.spawn = func(procSpec) (*proc, error) { spawns++; return nil, errors.New("exec: no such file") }
		mustGroup(t, c, "g", 1, 1, 1)
		if err := c.SuspendResume("g", []string{"ReplaceUnhealthy"}, true); err != nil {
			t.Fatal(err)
		}
		c.Reconcile()
		clk.t = clk.t.Add(3 * time.Second)
		for range 5 {
			c.Reconcile()
		}
		in := c.Groups(nil)[0].Instances[0]
		if in.Health != "Unhealthy" || in.Lifecycle != "Pending" {
			t.Fatalf("instance whose workload did not start: %s/%s, want Pending and Unhealthy", in.Lifecycle, in.Health)
		}
		if spawns != 1 {
			t.Fatalf("%d start attempts over 5 passes, want 1: an unhealthy instance is not booted again", spawns)
		}
	})
}

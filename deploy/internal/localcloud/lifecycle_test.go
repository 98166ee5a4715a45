package localcloud

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

func (tc *testCloud) lifecycleOf(t *testing.T, group, id string) astypes.LifecycleState {
	t.Helper()
	for _, in := range tc.describeGroup(t, group).Instances {
		if aws.ToString(in.InstanceId) == id {
			return in.LifecycleState
		}
	}
	return "gone"
}

func (tc *testCloud) waitLifecycle(t *testing.T, group, id string, want astypes.LifecycleState) {
	t.Helper()
	tc.eventually(t, 10*time.Second, func() error {
		if got := tc.lifecycleOf(t, group, id); got != want {
			return fmt.Errorf("%s is %s, want %s", id, got, want)
		}
		return nil
	})
}

func TestLifecycleHookTerminatingWait(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 3, 3, nil)
	insts := tc.waitInService(t, "g", 3)
	ctx := ctxT(t)

	bad := []struct {
		name string
		in   autoscaling.PutLifecycleHookInput
	}{
		{"unknown transition", autoscaling.PutLifecycleHookInput{LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_REBOOTING")}},
		{"timeout too short", autoscaling.PutLifecycleHookInput{LifecycleTransition: aws.String(transitionTerminating), HeartbeatTimeout: aws.Int32(5)}},
		{"bad default result", autoscaling.PutLifecycleHookInput{LifecycleTransition: aws.String(transitionTerminating), DefaultResult: aws.String("MAYBE")}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			in.AutoScalingGroupName, in.LifecycleHookName = aws.String("g"), aws.String("drain")
			_, err := tc.asg.PutLifecycleHook(ctx, &in)
			wantCode(t, err, "ValidationError")
		})
	}
	if _, err := tc.asg.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("drain"),
		LifecycleTransition: aws.String(transitionTerminating), HeartbeatTimeout: aws.Int32(60), DefaultResult: aws.String("CONTINUE")}); err != nil {
		t.Fatal(err)
	}
	hooks, err := tc.asg.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String("g")})
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks.LifecycleHooks) != 1 || aws.ToInt32(hooks.LifecycleHooks[0].HeartbeatTimeout) != 60 || aws.ToString(hooks.LifecycleHooks[0].DefaultResult) != "CONTINUE" {
		t.Fatalf("DescribeLifecycleHooks = %+v", hooks.LifecycleHooks)
	}

	a, b, c := aws.ToString(insts[0].InstanceId), aws.ToString(insts[1].InstanceId), aws.ToString(insts[2].InstanceId)
	for _, id := range []string{a, b, c} {
		if _, err := tc.asg.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{a, b, c} {
		tc.waitLifecycle(t, "g", id, astypes.LifecycleStateTerminatingWait)
	}
	// The instance keeps running while it waits: its process is alive.
	for _, in := range tc.instances(t) {
		if in.ID == a && in.PID == 0 {
			t.Fatalf("instance %s lost its process while in Terminating:Wait", a)
		}
	}

	// a: the hook completes.
	_, err = tc.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("drain"), InstanceId: aws.String("i-0123456789abcdef0"), LifecycleActionResult: aws.String("CONTINUE")})
	wantCode(t, err, "ValidationError")
	if _, err := tc.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("drain"), InstanceId: aws.String(a), LifecycleActionResult: aws.String("CONTINUE")}); err != nil {
		t.Fatal(err)
	}
	tc.waitLifecycle(t, "g", a, "gone")

	// b: a heartbeat 40 s in pushes its timeout past the 60 s mark; c times out.
	tc.hook(t, "POST", "/_localcloud/clock?advance=40s")
	if _, err := tc.asg.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("drain"), InstanceId: aws.String(b)}); err != nil {
		t.Fatal(err)
	}
	tc.hook(t, "POST", "/_localcloud/clock?advance=25s")
	tc.waitLifecycle(t, "g", c, "gone")
	if got := tc.lifecycleOf(t, "g", b); got != astypes.LifecycleStateTerminatingWait {
		t.Fatalf("after a heartbeat %s should still wait, is %s", b, got)
	}
	tc.hook(t, "POST", "/_localcloud/clock?advance=40s")
	tc.waitLifecycle(t, "g", b, "gone")
	if _, err := tc.asg.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("drain"), InstanceId: aws.String(b)}); err == nil {
		t.Fatal("heartbeat for a finished action must fail")
	}
}

func TestLifecycleHookLaunchingWait(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 2, 0, func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.LifecycleHookSpecificationList = []astypes.LifecycleHookSpecification{{LifecycleHookName: aws.String("warm"),
			LifecycleTransition: aws.String(transitionLaunching), HeartbeatTimeout: aws.Int32(30)}}
	})
	ctx := ctxT(t)
	if _, err := tc.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	var id string
	tc.eventually(t, 10*time.Second, func() error {
		insts := tc.describeGroup(t, "g").Instances
		if len(insts) != 1 || insts[0].LifecycleState != astypes.LifecycleStatePendingWait {
			return fmt.Errorf("instances %+v", insts)
		}
		id = aws.ToString(insts[0].InstanceId)
		return nil
	})
	if _, err := tc.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("g"), LifecycleHookName: aws.String("warm"),
		InstanceId: aws.String(id), LifecycleActionResult: aws.String("CONTINUE")}); err != nil {
		t.Fatal(err)
	}
	tc.waitLifecycle(t, "g", id, astypes.LifecycleStateInService)

	// A second instance whose hook times out with the default ABANDON is
	// terminated and replaced.
	if _, err := tc.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	var second string
	tc.eventually(t, 10*time.Second, func() error {
		for _, in := range tc.describeGroup(t, "g").Instances {
			if aws.ToString(in.InstanceId) != id && in.LifecycleState == astypes.LifecycleStatePendingWait {
				second = aws.ToString(in.InstanceId)
				return nil
			}
		}
		return fmt.Errorf("no second instance waiting")
	})
	tc.hook(t, "POST", "/_localcloud/clock?advance=31s")
	tc.waitLifecycle(t, "g", second, "gone")
}

package localcloud

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func (tc *testCloud) warmPool(t *testing.T, group string) *autoscaling.DescribeWarmPoolOutput {
	t.Helper()
	out, err := tc.asg.DescribeWarmPool(ctxT(t), &autoscaling.DescribeWarmPoolInput{AutoScalingGroupName: aws.String(group)})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitWarm waits until the pool holds exactly n instances, all in state.
func (tc *testCloud) waitWarm(t *testing.T, group string, n int, state astypes.LifecycleState) []string {
	t.Helper()
	var ids []string
	tc.eventually(t, 15*time.Second, func() error {
		ids = nil
		for _, in := range tc.warmPool(t, group).Instances {
			if in.LifecycleState != state {
				return fmt.Errorf("warm instance %s is %s", aws.ToString(in.InstanceId), in.LifecycleState)
			}
			ids = append(ids, aws.ToString(in.InstanceId))
		}
		if len(ids) != n {
			return fmt.Errorf("%d warm instances, want %d", len(ids), n)
		}
		return nil
	})
	sort.Strings(ids)
	return ids
}

func (tc *testCloud) setDesired(t *testing.T, group string, n int32) {
	t.Helper()
	if _, err := tc.asg.SetDesiredCapacity(ctxT(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(group), DesiredCapacity: aws.Int32(n)}); err != nil {
		t.Fatal(err)
	}
}

// TestWarmPool: the pool fills to max(MaxSize - desired, MinSize), its
// instances stop and stay out of the group, a scale-out takes one with the
// warm boot delay instead of the cold one, a scale-in returns the instance
// with ReuseOnScaleIn, and DeleteWarmPool empties it.
func TestWarmPool(t *testing.T) {
	tc := startCloud(t, func(c *Config) { c.BootDelay, c.WarmBootDelay = time.Hour, 10*time.Second })
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 3, 1, nil)
	if _, err := tc.asg.PutWarmPool(ctxT(t), &autoscaling.PutWarmPoolInput{AutoScalingGroupName: aws.String("g"), MinSize: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	wp := tc.warmPool(t, "g")
	if c := wp.WarmPoolConfiguration; c == nil || aws.ToInt32(c.MinSize) != 1 || c.MaxGroupPreparedCapacity != nil || c.PoolState != astypes.WarmPoolStateStopped ||
		c.InstanceReusePolicy == nil || aws.ToBool(c.InstanceReusePolicy.ReuseOnScaleIn) {
		t.Fatalf("warm pool configuration %+v", wp.WarmPoolConfiguration)
	}
	// MaxSize 3 - desired 1 = 2 warm instances, booting like any launch.
	tc.waitWarm(t, "g", 2, astypes.LifecycleStateWarmedPending)
	g := tc.describeGroup(t, "g")
	if len(g.Instances) != 1 || aws.ToInt32(g.WarmPoolSize) != 2 || g.WarmPoolConfiguration == nil || aws.ToInt32(g.DesiredCapacity) != 1 {
		t.Fatalf("group: %d instances, warm pool size %d, configuration %+v, desired %d; want 1, 2, set, 1",
			len(g.Instances), aws.ToInt32(g.WarmPoolSize), g.WarmPoolConfiguration, aws.ToInt32(g.DesiredCapacity))
	}
	cold := aws.ToString(g.Instances[0].InstanceId)
	tc.advance(t, time.Hour)
	warm := tc.waitWarm(t, "g", 2, astypes.LifecycleStateWarmedStopped)
	tc.waitInService(t, "g", 1)
	for _, id := range warm {
		if st := tc.ec2State(t, id); st != "stopped" {
			t.Fatalf("warm instance %s is %s in EC2, want stopped", id, st)
		}
		if _, body := imdsGet(t, tc.imdsEndpoint(t, id), "/latest/meta-data/autoscaling/target-lifecycle-state"); body != "Warmed:Stopped" {
			t.Fatalf("warm instance target lifecycle state %q, want Warmed:Stopped", body)
		}
	}
	asi, err := tc.asg.DescribeAutoScalingInstances(ctxT(t), &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: warm[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if len(asi.AutoScalingInstances) != 1 || aws.ToString(asi.AutoScalingInstances[0].LifecycleState) != "Warmed:Stopped" {
		t.Fatalf("DescribeAutoScalingInstances of a warm instance: %+v", asi.AutoScalingInstances)
	}

	// Scale out: from the pool, in the warm boot delay (the cold one is an hour).
	tc.setDesired(t, "g", 2)
	var taken string
	tc.eventually(t, 10*time.Second, func() error {
		for _, in := range tc.describeGroup(t, "g").Instances {
			if id := aws.ToString(in.InstanceId); id != cold {
				taken = id
				return nil
			}
		}
		return fmt.Errorf("no second instance yet")
	})
	if !contains(warm, taken) {
		t.Fatalf("scale-out launched %s, not one of the warm instances %v", taken, warm)
	}
	tc.advance(t, 9*time.Second)
	if st := tc.lifecycleOf(t, "g", taken); st != astypes.LifecycleStatePending {
		t.Fatalf("9 s into a 10 s warm boot the instance is %s, want Pending", st)
	}
	tc.advance(t, time.Second)
	tc.waitInService(t, "g", 2)
	found := false
	for _, a := range tc.activities(t, "g") {
		found = found || (aws.ToString(a.Description) == "Launching a new EC2 instance from warm pool: "+taken && a.StatusCode == astypes.ScalingActivityStatusCodeSuccessful)
	}
	if !found {
		t.Fatalf("no successful activity launching %s from the warm pool", taken)
	}
	// 3 - 2 = 1: the pool keeps the other instance and launches none.
	left := tc.waitWarm(t, "g", 1, astypes.LifecycleStateWarmedStopped)
	if !contains(warm, left[0]) {
		t.Fatalf("pool holds %v, want the remaining original %v", left, warm)
	}

	// Scale in with ReuseOnScaleIn: the victim goes back to the pool.
	if _, err := tc.asg.PutWarmPool(ctxT(t), &autoscaling.PutWarmPoolInput{AutoScalingGroupName: aws.String("g"), MinSize: aws.Int32(1),
		InstanceReusePolicy: &astypes.InstanceReusePolicy{ReuseOnScaleIn: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}
	tc.setDesired(t, "g", 1)
	back := tc.waitWarm(t, "g", 2, astypes.LifecycleStateWarmedStopped)
	in := tc.waitInService(t, "g", 1)
	kept := aws.ToString(in[0].InstanceId)
	all := append([]string{kept}, back...)
	sort.Strings(all)
	want := []string{cold, taken, left[0]}
	sort.Strings(want)
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("after scale-in: in service %s, pool %v; want the same three instances %v, none terminated", kept, back, want)
	}
	for _, a := range tc.activities(t, "g") {
		if d := aws.ToString(a.Description); len(d) > 24 && d[:24] == "Terminating EC2 instance" {
			t.Fatalf("scale-in with ReuseOnScaleIn terminated an instance: %s", d)
		}
	}

	// Delete: PendingDelete, then gone with its instances.
	if _, err := tc.asg.DeleteWarmPool(ctxT(t), &autoscaling.DeleteWarmPoolInput{AutoScalingGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	tc.eventually(t, 15*time.Second, func() error {
		wp := tc.warmPool(t, "g")
		if wp.WarmPoolConfiguration != nil || len(wp.Instances) != 0 {
			return fmt.Errorf("pool %+v with %d instances", wp.WarmPoolConfiguration, len(wp.Instances))
		}
		return nil
	})
	for _, id := range back {
		if st := tc.ec2State(t, id); st != "terminated" {
			t.Fatalf("instance %s of the deleted pool is %s", id, st)
		}
	}
	if g := tc.describeGroup(t, "g"); g.WarmPoolConfiguration != nil || len(g.Instances) != 1 {
		t.Fatalf("group after DeleteWarmPool: configuration %+v, %d instances", g.WarmPoolConfiguration, len(g.Instances))
	}
}

// TestWarmPoolRunning: a Running pool keeps its instances running, still
// out of service, and MaxGroupPreparedCapacity sizes it.
func TestWarmPoolRunning(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 5, 1, nil)
	if _, err := tc.asg.PutWarmPool(ctxT(t), &autoscaling.PutWarmPoolInput{AutoScalingGroupName: aws.String("g"),
		MaxGroupPreparedCapacity: aws.Int32(3), PoolState: astypes.WarmPoolStateRunning}); err != nil {
		t.Fatal(err)
	}
	ids := tc.waitWarm(t, "g", 2, astypes.LifecycleStateWarmedRunning)
	for _, id := range ids {
		if st := tc.ec2State(t, id); st != "running" {
			t.Fatalf("instance %s of a Running pool is %s", id, st)
		}
		if _, body := imdsGet(t, tc.imdsEndpoint(t, id), "/latest/meta-data/autoscaling/target-lifecycle-state"); body != "Warmed:Running" {
			t.Fatalf("target lifecycle state %q, want Warmed:Running", body)
		}
	}
	if c := tc.warmPool(t, "g").WarmPoolConfiguration; aws.ToInt32(c.MaxGroupPreparedCapacity) != 3 {
		t.Fatalf("MaxGroupPreparedCapacity %v, want 3", c.MaxGroupPreparedCapacity)
	}
	tc.waitInService(t, "g", 1)
	// A warm instance EC2 terminates leaves the pool, which refills.
	if _, err := tc.ec2.TerminateInstances(ctxT(t), &ec2.TerminateInstancesInput{InstanceIds: ids[:1]}); err != nil {
		t.Fatal(err)
	}
	tc.eventually(t, 10*time.Second, func() error {
		if st := tc.ec2State(t, ids[0]); st != "terminated" {
			return fmt.Errorf("terminated warm instance is %s", st)
		}
		return nil
	})
	refilled := tc.waitWarm(t, "g", 2, astypes.LifecycleStateWarmedRunning)
	if contains(refilled, ids[0]) || !contains(refilled, ids[1]) {
		t.Fatalf("pool %v after terminating %s from %v", refilled, ids[0], ids)
	}
	if n := len(tc.describeGroup(t, "g").Instances); n != 1 {
		t.Fatalf("group has %d instances; the pool's loss must not touch it", n)
	}
	// TerminateInstanceInAutoScalingGroup on a warm instance leaves desired alone.
	if _, err := tc.asg.TerminateInstanceInAutoScalingGroup(ctxT(t), &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: aws.String(refilled[0]), ShouldDecrementDesiredCapacity: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	tc.eventually(t, 10*time.Second, func() error {
		if st := tc.ec2State(t, refilled[0]); st != "terminated" {
			return fmt.Errorf("warm instance is %s", st)
		}
		return nil
	})
	if g := tc.describeGroup(t, "g"); aws.ToInt32(g.DesiredCapacity) != 1 {
		t.Fatalf("desired %d after terminating a warm instance, want 1", aws.ToInt32(g.DesiredCapacity))
	}
	// ForceDelete removes the configuration at once.
	if _, err := tc.asg.DeleteWarmPool(ctxT(t), &autoscaling.DeleteWarmPoolInput{AutoScalingGroupName: aws.String("g"), ForceDelete: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if c := tc.warmPool(t, "g").WarmPoolConfiguration; c != nil {
		t.Fatalf("configuration %+v right after a forced delete", c)
	}
}

func TestWarmPoolValidation(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 2, 0, nil)
	cases := []struct {
		name string
		in   autoscaling.PutWarmPoolInput
	}{
		{"unknown pool state", autoscaling.PutWarmPoolInput{PoolState: "Frozen"}},
		{"negative min size", autoscaling.PutWarmPoolInput{MinSize: aws.Int32(-1)}},
		{"min above max prepared", autoscaling.PutWarmPoolInput{MinSize: aws.Int32(3), MaxGroupPreparedCapacity: aws.Int32(2)}},
		{"max prepared below -1", autoscaling.PutWarmPoolInput{MaxGroupPreparedCapacity: aws.Int32(-2)}},
		{"unknown group", autoscaling.PutWarmPoolInput{AutoScalingGroupName: aws.String("nope")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			if in.AutoScalingGroupName == nil {
				in.AutoScalingGroupName = aws.String("g")
			}
			_, err := tc.asg.PutWarmPool(ctxT(t), &in)
			wantCode(t, err, "ValidationError")
		})
	}
	_, err := tc.asg.DeleteWarmPool(ctxT(t), &autoscaling.DeleteWarmPoolInput{AutoScalingGroupName: aws.String("g")})
	wantCode(t, err, "ValidationError")
	if c := tc.warmPool(t, "g").WarmPoolConfiguration; c != nil {
		t.Fatalf("a group without a pool describes %+v", c)
	}
}

// TestStateFileKeepsWarmPoolAndCapacityRebalance: both are group settings
// and survive a restart with --state-file, as hooks do.
func TestStateFileKeepsWarmPoolAndCapacityRebalance(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	c, _, _ := newStateCloud(t, func(cfg *Config) { cfg.StateFile = file })
	mustGroup(t, c, "g", 0, 2, 0)
	on := true
	if err := c.UpdateGroup(GroupInput{Name: "g", CapacityRebalance: &on}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutWarmPool("g", WarmPoolInput{MinSize: ip(1), PoolState: "Running", ReuseOnScaleIn: &on}); err != nil {
		t.Fatal(err)
	}
	c.Reconcile() // saves
	c2, _, _ := newStateCloud(t, func(cfg *Config) { cfg.StateFile = file })
	gs := c2.Groups(nil)
	if len(gs) != 1 || !gs[0].CapacityRebalance || gs[0].WarmPool == nil ||
		*gs[0].WarmPool != (WarmPool{MinSize: 1, MaxPrepared: -1, PoolState: "Running", ReuseOnScaleIn: true}) {
		t.Fatalf("group after reload: %+v, warm pool %+v", gs, gs[0].WarmPool)
	}
}

package aws

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud/cloudtest"
)

// These tests run cloud/aws against the real shoal-localcloud binary: real
// SDK clients, real wire protocols, AWS_ENDPOINT_URL from the environment.

func openLocal(t *testing.T, lc *cloudtest.LocalCloud) *Cloud {
	t.Helper()
	lc.Env(t)
	c := DefaultConfig()
	c.MaxBackoff = 50 * time.Millisecond
	c.BaseDelay = 5 * time.Millisecond
	c.RatePerSecond = 200
	c.Burst = 50
	cl, _, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// waitGroup polls DescribeGroups every 50 ms until cond holds for the group,
// for up to 20 s. It polls because what it waits for is the local cloud's
// own work in another process: its reconcile loop, and instance processes
// exiting after SIGTERM.
func waitGroup(t *testing.T, cl *Cloud, name, what string, cond func(cloud.Group) bool) cloud.Group {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last cloud.Group
	for {
		gs, err := cl.DescribeGroups(context.Background(), []string{name})
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) == 1 {
			last = gs[0]
			if cond(last) {
				return last
			}
		}
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; group is %+v", what, last)
			return last
		case <-tick.C:
		}
	}
}

func countState(g cloud.Group, state string) int {
	n := 0
	for _, i := range g.Instances {
		if i.LifecycleState == state {
			n++
		}
	}
	return n
}

func createFleetGroup(t *testing.T, lc *cloudtest.LocalCloud, cl *Cloud, name string, desired int32) cloud.Group {
	t.Helper()
	ctx := context.Background()
	subnets, err := cl.DescribeSubnets(ctx, cloud.SubnetQuery{DefaultForAZ: true})
	if err != nil || len(subnets) == 0 {
		t.Fatalf("subnets %v: %v", subnets, err)
	}
	lt, err := cl.CreateLaunchTemplate(ctx, cloud.LaunchTemplateSpec{Name: name + "-lt", ImageID: "ami-localbase", InstanceType: "t3.micro"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range subnets {
		ids = append(ids, s.ID)
	}
	if err := cl.CreateGroup(ctx, cloud.GroupSpec{Name: name, Min: 0, Max: 5, Desired: desired,
		LaunchTemplate: cloud.TemplateRef{ID: lt.ID, Version: "$Latest"}, SubnetIDs: ids, Tags: map[string]string{"shoal:fleet": name}}); err != nil {
		t.Fatal(err)
	}
	launchAndBoot(lc)
	g := describeGroup(t, cl, name)
	if n := countState(g, cloud.LifecycleInService); n != int(desired) {
		t.Fatalf("%d InService once launched and booted, want %d; group is %+v", n, desired, g)
	}
	return g
}

// launchAndBoot runs a reconcile pass of the local cloud, which launches
// what desired capacity asks for, then moves its clock past the boot delay
// (cloudtest starts it with 200 ms), which runs another pass that puts the
// launched instances in service.
func launchAndBoot(lc *cloudtest.LocalCloud) {
	lc.Hook(http.MethodPost, "reconcile")
	lc.Advance(time.Second)
}

func describeGroup(t *testing.T, cl *Cloud, name string) cloud.Group {
	t.Helper()
	gs, err := cl.DescribeGroups(context.Background(), []string{name})
	if err != nil || len(gs) != 1 {
		t.Fatalf("DescribeGroups(%s) = %+v, %v", name, gs, err)
	}
	return gs[0]
}

func TestLocalCloudDescribeSetTerminate(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	cl := openLocal(t, lc)
	ctx := context.Background()
	g := createFleetGroup(t, lc, cl, "web", 2)
	if g.Min != 0 || g.Max != 5 || g.Desired != 2 || len(g.SubnetIDs) == 0 || g.Tags["shoal:fleet"] != "web" || g.LaunchTemplate == nil {
		t.Fatalf("group = %+v", g)
	}

	gs, err := cl.DescribeGroups(ctx, []string{"web", "no-such-group"})
	if err != nil || len(gs) != 1 || gs[0].Name != "web" {
		t.Fatalf("DescribeGroups(web, no-such-group) = %v, %v", gs, err)
	}

	if r, err := cl.ActiveInstanceRefresh(ctx, "web"); err != nil || r != nil {
		t.Fatalf("ActiveInstanceRefresh = %+v, %v; the local cloud runs none", r, err)
	}
	if err := cl.SetDesiredCapacity(ctx, "web", 3); err != nil {
		t.Fatal(err)
	}
	launchAndBoot(lc)
	g = describeGroup(t, cl, "web")
	if g.Desired != 3 || countState(g, cloud.LifecycleInService) != 3 {
		t.Fatalf("after SetDesiredCapacity(3), a launch and a boot: %+v, want 3 InService", g)
	}

	victim := g.Instances[0].ID
	act, err := cl.TerminateInstance(ctx, victim, true)
	if err != nil {
		t.Fatal(err)
	}
	if act.ID == "" || act.Group != "web" {
		t.Errorf("terminate activity = %+v", act)
	}
	waitGroup(t, cl, "web", "the victim gone and desired 2", func(g cloud.Group) bool {
		if g.Desired != 2 {
			return false
		}
		for _, i := range g.Instances {
			if i.ID == victim {
				return false
			}
		}
		return countState(g, cloud.LifecycleInService) == 2
	})

	acts, err := cl.DescribeScalingActivities(ctx, "web", 10)
	if err != nil || len(acts) < 4 {
		t.Fatalf("activities = %d, %v (want launches of 3 and a termination)", len(acts), err)
	}

	keep := g.Instances[1].ID
	if err := cl.SetInstanceProtection(ctx, "web", []string{keep}, true); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, cl, "web", "exactly "+keep+" protected", func(g cloud.Group) bool {
		n := 0
		for _, i := range g.Instances {
			if i.Protected {
				n++
				if i.ID != keep {
					return false
				}
			}
		}
		return n == 1
	})
}

func TestLocalCloudErrorsClassify(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	cl := openLocal(t, lc)
	ctx := context.Background()
	createFleetGroup(t, lc, cl, "api", 0)
	tests := []struct {
		name  string
		call  func() error
		kind  error
		class cloud.ErrorClass
	}{
		{"unknown group", func() error { return cl.SetDesiredCapacity(ctx, "nope", 1) }, cloud.ErrGroupNotFound, cloud.ClassFatal},
		{"above max", func() error { return cl.SetDesiredCapacity(ctx, "api", 50) }, cloud.ErrValidation, cloud.ClassFatal},
		{"unknown instance", func() error { _, err := cl.TerminateInstance(ctx, "i-0000000000000dead", true); return err }, cloud.ErrInstanceNotFound, cloud.ClassFatal},
		{"no lifecycle action", func() error {
			return cl.CompleteLifecycleAction(ctx, cloud.LifecycleAction{Group: "api", Hook: "h", InstanceID: "i-0000000000000dead"}, cloud.ResultContinue)
		}, cloud.ErrLifecycleActionNotFound, cloud.ClassFatal},
		{"group exists", func() error {
			return cl.CreateGroup(ctx, cloud.GroupSpec{Name: "api", Max: 1, LaunchTemplate: cloud.TemplateRef{Name: "api-lt"}, SubnetIDs: []string{"subnet-0a1a00000000000a1"}})
		}, cloud.ErrAlreadyExists, cloud.ClassFatal},
		{"unknown image", func() error {
			_, err := cl.RunInstances(ctx, cloud.RunSpec{ImageID: "ami-0000000000000dead"})
			return err
		}, cloud.ErrNotFound, cloud.ClassFatal},
		{"throttled past max attempts", func() error {
			lc.Hook(http.MethodPost, "faults/api?operation=SetDesiredCapacity&code=Throttling&count=20")
			defer lc.Hook(http.MethodDelete, "faults/api?operation=SetDesiredCapacity")
			return cl.SetDesiredCapacity(ctx, "api", 1)
		}, cloud.ErrThrottled, cloud.ClassRetryable},
		{"throttled twice, then retried to success", func() error {
			lc.Hook(http.MethodPost, "faults/api?operation=SetDesiredCapacity&code=Throttling&count=2")
			return cl.SetDesiredCapacity(ctx, "api", 1)
		}, nil, cloud.ClassNone},
		{"5xx twice, then retried to success", func() error {
			lc.Hook(http.MethodPost, "faults/api?operation=DescribeAutoScalingGroups&code=InternalFailure&count=2")
			_, err := cl.DescribeGroups(ctx, []string{"api"})
			return err
		}, nil, cloud.ClassNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want %v", err, tt.kind)
			}
			if c := cloud.Classify(err); c != tt.class {
				t.Fatalf("class = %v, want %v", c, tt.class)
			}
		})
	}
}

func TestLocalCloudLifecycleHook(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	cl := openLocal(t, lc)
	ctx := context.Background()
	g := createFleetGroup(t, lc, cl, "hooked", 2)
	hook := cloud.LifecycleHook{Name: "shoal-drain", Group: "hooked", Transition: cloud.TransitionTerminating,
		HeartbeatTimeout: 60 * time.Second, DefaultResult: cloud.ResultContinue}
	if err := cl.PutLifecycleHook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	hooks, err := cl.DescribeLifecycleHooks(ctx, "hooked")
	if err != nil || len(hooks) != 1 || hooks[0].Name != hook.Name || hooks[0].Transition != hook.Transition || hooks[0].HeartbeatTimeout != hook.HeartbeatTimeout || hooks[0].DefaultResult != cloud.ResultContinue {
		t.Fatalf("hooks = %+v, %v", hooks, err)
	}

	victim := g.Instances[0].ID
	if _, err := cl.TerminateInstance(ctx, victim, true); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, cl, "hooked", "the victim in Terminating:Wait", func(g cloud.Group) bool {
		for _, i := range g.Instances {
			if i.ID == victim {
				return i.LifecycleState == cloud.LifecycleTerminatingWait
			}
		}
		return false
	})
	action := cloud.LifecycleAction{Group: "hooked", Hook: "shoal-drain", InstanceID: victim}
	// A heartbeat past the original timeout keeps it waiting.
	lc.Advance(45 * time.Second)
	if err := cl.RecordLifecycleActionHeartbeat(ctx, action); err != nil {
		t.Fatal(err)
	}
	lc.Advance(45 * time.Second)
	g = waitGroup(t, cl, "hooked", "the victim still waiting", func(g cloud.Group) bool { return countState(g, cloud.LifecycleTerminatingWait) == 1 })

	if err := cl.CompleteLifecycleAction(ctx, action, cloud.ResultContinue); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, cl, "hooked", "the victim gone", func(g cloud.Group) bool {
		for _, i := range g.Instances {
			if i.ID == victim {
				return false
			}
		}
		return g.Desired == 1
	})
	if err := cl.CompleteLifecycleAction(ctx, action, cloud.ResultContinue); !errors.Is(err, cloud.ErrLifecycleActionNotFound) {
		t.Fatalf("second complete: %v, want ErrLifecycleActionNotFound", err)
	}
}

func TestLocalCloudBootstrapCalls(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	cl := openLocal(t, lc)
	ctx := context.Background()
	subnets, err := cl.DescribeSubnets(ctx, cloud.SubnetQuery{})
	if err != nil || len(subnets) < 2 || subnets[0].AZ == "" || subnets[0].VPCID == "" {
		t.Fatalf("subnets = %+v, %v", subnets, err)
	}
	insts, err := cl.RunInstances(ctx, cloud.RunSpec{ImageID: "ami-localbase", InstanceType: "t3.micro", SubnetID: subnets[0].ID,
		UserData: "sleep 300", Tags: map[string]string{"Name": "builder"}})
	if err != nil || len(insts) != 1 || insts[0].ID == "" {
		t.Fatalf("RunInstances = %+v, %v", insts, err)
	}
	builder := insts[0].ID
	// Past the boot delay on the local cloud's clock (cloudtest starts it
	// with 200 ms); moving the clock runs a reconcile pass before it answers.
	lc.Advance(time.Second)
	got, err := cl.DescribeInstances(ctx, []string{builder})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].State != "running" {
		t.Fatalf("builder past its boot delay = %+v, want running", got)
	}
	if got[0].AZ != subnets[0].AZ || got[0].Tags["Name"] != "builder" || got[0].PrivateIP == "" {
		t.Fatalf("instance = %+v", got[0])
	}
	image, err := cl.CreateImage(ctx, cloud.ImageSpec{InstanceID: builder, Name: "shoal-web-1", Tags: map[string]string{"shoal:fleet": "web"}})
	if err != nil || image == "" {
		t.Fatalf("CreateImage = %q, %v", image, err)
	}
	imgs, err := cl.DescribeImages(ctx, cloud.ImageQuery{Names: []string{"shoal-web-1"}})
	if err != nil || len(imgs) != 1 || imgs[0].ID != image {
		t.Fatalf("DescribeImages = %+v, %v", imgs, err)
	}
	if err := cl.TerminateInstances(ctx, []string{builder}); err != nil {
		t.Fatal(err)
	}
	lt, err := cl.CreateLaunchTemplate(ctx, cloud.LaunchTemplateSpec{Name: "web-lt", ImageID: "ami-localbase", InstanceType: "t3.micro"})
	if err != nil || lt.ID == "" || lt.LatestVersion != 1 {
		t.Fatalf("CreateLaunchTemplate = %+v, %v", lt, err)
	}
	if _, err := cl.CreateLaunchTemplate(ctx, cloud.LaunchTemplateSpec{Name: "web-lt", ImageID: "ami-localbase"}); !errors.Is(err, cloud.ErrAlreadyExists) {
		t.Fatalf("second CreateLaunchTemplate: %v, want ErrAlreadyExists", err)
	}
	v2, err := cl.CreateLaunchTemplateVersion(ctx, "web-lt", cloud.LaunchTemplateSpec{ImageID: image, InstanceType: "t3.micro"})
	if err != nil || v2.LatestVersion != 2 {
		t.Fatalf("CreateLaunchTemplateVersion = %+v, %v", v2, err)
	}
	lts, err := cl.DescribeLaunchTemplates(ctx, []string{"web-lt"})
	if err != nil || len(lts) != 1 || lts[0].LatestVersion != 2 || lts[0].DefaultVersion != 1 {
		t.Fatalf("DescribeLaunchTemplates = %+v, %v", lts, err)
	}
	if _, err := cl.DescribeLaunchTemplates(ctx, []string{"nope-lt"}); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("unknown template: %v, want ErrNotFound", err)
	}
	if err := cl.CreateGroup(ctx, cloud.GroupSpec{Name: "web", Max: 3, LaunchTemplate: cloud.TemplateRef{Name: "web-lt", Version: "$Latest"},
		SubnetIDs: []string{subnets[0].ID}, HealthCheckGrace: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	max := int32(4)
	if err := cl.UpdateGroup(ctx, cloud.GroupUpdate{Name: "web", Max: &max, SubnetIDs: []string{subnets[0].ID, subnets[1].ID}}); err != nil {
		t.Fatal(err)
	}
	g := waitGroup(t, cl, "web", "the update", func(g cloud.Group) bool { return g.Max == 4 })
	if len(g.SubnetIDs) != 2 || g.HealthCheckGrace != 30*time.Second || g.LaunchTemplate.Name != "web-lt" {
		t.Fatalf("group after update = %+v", g)
	}
}

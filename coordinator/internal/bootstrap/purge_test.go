package bootstrap_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/bootstrap"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud/cloudtest"
)

// TestPurgeOnLocalCloud bakes what bootstrap bakes (an image of a running
// instance, tagged with its fleet; a launch template of it; a group with a
// running instance) on the real local cloud through the real SDK, purges
// it, and checks that nothing of it is left, the image's snapshot included.
func TestPurgeOnLocalCloud(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	lc.Env(t)
	ctx := context.Background()
	cl, _, err := awscloud.Open(ctx, awscloud.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	subnets, err := cl.DescribeSubnets(ctx, cloud.SubnetQuery{DefaultForAZ: true})
	if err != nil || len(subnets) == 0 {
		t.Fatalf("subnets %v: %v", subnets, err)
	}
	golden, err := cl.RunInstances(ctx, cloud.RunSpec{ImageID: "ami-localbase", InstanceType: "t3.micro", SubnetID: subnets[0].ID})
	if err != nil || len(golden) != 1 {
		t.Fatalf("golden instance: %v %v", golden, err)
	}
	// It boots on the local cloud's clock (cloudtest's boot delay is 200 ms).
	boot := time.NewTicker(20 * time.Millisecond)
	defer boot.Stop()
	deadline := time.After(10 * time.Second)
	for running := false; !running; {
		lc.Advance(time.Second)
		in, err := cl.DescribeInstances(ctx, []string{golden[0].ID})
		running = err == nil && len(in) == 1 && in[0].State == "running"
		select {
		case <-deadline:
			t.Fatalf("golden instance never running: %v %v", in, err)
		case <-boot.C:
		}
	}
	image, err := cl.CreateImage(ctx, cloud.ImageSpec{InstanceID: golden[0].ID, Name: "shoal-web-golden", Tags: map[string]string{"shoal:fleet": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := cl.DescribeImages(ctx, cloud.ImageQuery{IDs: []string{image}})
	if err != nil || len(imgs) != 1 || len(imgs[0].SnapshotIDs) != 1 {
		t.Fatalf("image %v: %v; want one with its snapshot", imgs, err)
	}
	snap := imgs[0].SnapshotIDs[0]
	lt, err := cl.CreateLaunchTemplate(ctx, cloud.LaunchTemplateSpec{Name: "shoal-web", ImageID: image, InstanceType: "t3.micro"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.CreateGroup(ctx, cloud.GroupSpec{Name: "shoal-web", Min: 1, Max: 3, Desired: 1,
		LaunchTemplate: cloud.TemplateRef{ID: lt.ID, Version: "$Latest"}, SubnetIDs: []string{subnets[0].ID},
		Tags: map[string]string{bootstrap.FleetTag: "web"}}); err != nil {
		t.Fatal(err)
	}
	// Another fleet's group, and one nobody's bootstrap made, named by
	// --asg: a purge of "web" refuses both and leaves them (and the
	// template they use) alone.
	for name, tags := range map[string]map[string]string{"shoal-api": {bootstrap.FleetTag: "api"}, "by-hand": nil} {
		if err := cl.CreateGroup(ctx, cloud.GroupSpec{Name: name, Min: 0, Max: 1, Desired: 0,
			LaunchTemplate: cloud.TemplateRef{ID: lt.ID, Version: "$Latest"}, SubnetIDs: []string{subnets[0].ID}, Tags: tags}); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		items, err := bootstrap.Purge(ctx, cl, bootstrap.PurgeSpec{Fleet: "web", ASG: name, GroupTimeout: time.Second, Poll: 10 * time.Millisecond}, &out)
		if !errors.Is(err, bootstrap.ErrInvalid) || len(items) != 0 {
			t.Errorf("purge of fleet web with --asg %s = %v, %v; want ErrInvalid and nothing deleted", name, items, err)
		}
		if gs, err := cl.DescribeGroups(ctx, []string{name}); err != nil || len(gs) != 1 || gs[0].Status != "" {
			t.Errorf("group %s after a refused purge: %v %v; want it untouched", name, gs, err)
		}
		if _, err := cl.DescribeLaunchTemplates(ctx, []string{"shoal-web"}); err != nil {
			t.Errorf("launch template after a refused purge: %v", err)
		}
	}
	// A snapshot still behind a registered image cannot go: the purge must
	// deregister first.
	if err := cl.DeleteSnapshot(ctx, snap); err == nil {
		t.Fatal("DeleteSnapshot of a registered image's snapshot succeeded; the local cloud must refuse it as EC2 does")
	}

	spec := bootstrap.PurgeSpec{Fleet: "web", ASG: "shoal-web", GroupTimeout: 20 * time.Second, Poll: 20 * time.Millisecond}
	var out bytes.Buffer
	done := make(chan error, 1)
	var items []bootstrap.Item
	go func() { var err error; items, err = bootstrap.Purge(ctx, cl, spec, &out); done <- err }()
	// The group's instances terminate on the local cloud's clock: move it
	// on until the purge is through (bounded by GroupTimeout above).
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("purge: %v\n%s", err, out.String())
			}
			break wait
		case <-tick.C:
			lc.Advance(5 * time.Second)
		}
	}
	kinds := map[string]bool{}
	for _, it := range items {
		kinds[it.Kind] = true
	}
	for _, k := range []string{"auto-scaling-group", "launch-template", "image", "snapshot"} {
		if !kinds[k] {
			t.Errorf("purge reported no %s: %v\n%s", k, items, out.String())
		}
	}
	if gs, err := cl.DescribeGroups(ctx, []string{"shoal-web"}); err != nil || len(gs) != 0 {
		t.Errorf("group after purge: %v %v", gs, err)
	}
	if _, err := cl.DescribeLaunchTemplates(ctx, []string{"shoal-web"}); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("launch template after purge: %v, want not found", err)
	}
	if imgs, err := cl.DescribeImages(ctx, cloud.ImageQuery{Tags: map[string]string{"shoal:fleet": "web"}}); err != nil || len(imgs) != 0 {
		t.Errorf("images after purge: %v %v", imgs, err)
	}
	if err := cl.DeleteSnapshot(ctx, snap); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("snapshot %s after purge: DeleteSnapshot = %v, want not found (already deleted)", snap, err)
	}
	// Nothing left: a second purge does nothing and succeeds.
	again, err := bootstrap.Purge(ctx, cl, spec, &out)
	if err != nil || len(again) != 0 {
		t.Errorf("second purge = %v, %v; want nothing to do", again, err)
	}
}

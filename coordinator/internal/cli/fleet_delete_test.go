package cli

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud/cloudtest"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
)

// TestFleetDeletePurgeOnLocalCloud runs `fleet delete --purge` against a
// coordinator and the real local cloud: the fleet goes, and so do its
// group, launch template, image and the image's snapshot; what another
// fleet owns stays.
func TestFleetDeletePurgeOnLocalCloud(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	lc.Env(t)
	addr := startNode(t)
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
		t.Fatalf("golden: %v %v", golden, err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for running := false; !running; {
		lc.Advance(time.Second)
		in, err := cl.DescribeInstances(ctx, []string{golden[0].ID})
		running = err == nil && len(in) == 1 && in[0].State == "running"
		select {
		case <-deadline:
			t.Fatalf("golden instance never running: %v %v", in, err)
		case <-tick.C:
		}
	}
	images := map[string]string{}
	for _, fleet := range []string{"web", "api"} {
		id, err := cl.CreateImage(ctx, cloud.ImageSpec{InstanceID: golden[0].ID, Name: "shoal-" + fleet, Tags: map[string]string{"shoal:fleet": fleet}})
		if err != nil {
			t.Fatal(err)
		}
		images[fleet] = id
		lt, err := cl.CreateLaunchTemplate(ctx, cloud.LaunchTemplateSpec{Name: "shoal-" + fleet, ImageID: id, InstanceType: "t3.micro"})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.CreateGroup(ctx, cloud.GroupSpec{Name: "shoal-" + fleet, Max: 3,
			LaunchTemplate: cloud.TemplateRef{ID: lt.ID, Version: "$Latest"}, SubnetIDs: []string{subnets[0].ID},
			Tags: map[string]string{"shoal:fleet": fleet}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, e := run(t, addr, "fleet", "create", "web", "--asg", "shoal-web", "--max", "3"); e != "" {
		t.Fatal(e)
	}
	// A bad flag is refused before anything is deleted.
	if _, e := run(t, addr, "fleet", "delete", "web", "--purge", "--purge-timeout", "1s"); !strings.Contains(e, "--purge-timeout") {
		t.Errorf("purge with a 1 s timeout (under the 5 s poll): error %q, want one naming --purge-timeout", e)
	}
	if _, e := run(t, addr, "fleet", "get", "web"); e != "" {
		t.Fatalf("the fleet is gone after a refused purge: %s", e)
	}
	// So is a purge that could not reach AWS (no region).
	t.Setenv("AWS_REGION", "")
	if _, e := run(t, addr, "fleet", "delete", "web", "--purge"); !strings.Contains(e, "region") {
		t.Errorf("purge without a region: error %q, want one naming the region", e)
	}
	if _, e := run(t, addr, "fleet", "get", "web"); e != "" {
		t.Fatalf("the fleet is gone after a purge that could not reach AWS: %s", e)
	}
	t.Setenv("AWS_REGION", "us-east-1")

	out, e := run(t, addr, "fleet", "delete", "web", "--purge", "-o", "json")
	if e != "" {
		t.Fatalf("fleet delete --purge: %s", e)
	}
	var items []view.BootstrapItem
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	got := map[string]string{}
	for _, it := range items {
		got[it.Kind] = it.ID
	}
	want := map[string]string{"fleet": "web", "auto-scaling-group": "shoal-web", "launch-template": "shoal-web", "image": images["web"]}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("purged %s = %q, want %q (all: %s)", k, got[k], v, out)
		}
	}
	if got["snapshot"] == "" {
		t.Errorf("no snapshot purged: %s", out)
	}
	if _, e := run(t, addr, "fleet", "get", "web"); e == "" {
		t.Error("fleet web still exists")
	}
	if gs, err := cl.DescribeGroups(ctx, []string{"shoal-web", "shoal-api"}); err != nil || len(gs) != 1 || gs[0].Name != "shoal-api" {
		t.Errorf("groups after purge = %v, %v; want only shoal-api", gs, err)
	}
	if _, err := cl.DescribeLaunchTemplates(ctx, []string{"shoal-web"}); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("launch template shoal-web after purge: %v", err)
	}
	if imgs, err := cl.DescribeImages(ctx, cloud.ImageQuery{IDs: []string{images["api"]}}); err != nil || len(imgs) != 1 {
		t.Errorf("api's image after purge = %v, %v; another fleet's image must stay", imgs, err)
	}
	if imgs, err := cl.DescribeImages(ctx, cloud.ImageQuery{Tags: map[string]string{"shoal:fleet": "web"}}); err != nil || len(imgs) != 0 {
		t.Errorf("web's images after purge = %v, %v", imgs, err)
	}
	// Run again after the fleet is gone without --asg: the error asks for
	// it rather than answering that the fleet is not found.
	if _, e := run(t, addr, "fleet", "delete", "web", "--purge"); !strings.Contains(e, "--asg") {
		t.Errorf("purge of a gone fleet without --asg: error %q, want one naming --asg", e)
	}
	// A fleet whose group another fleet's bootstrap made: the group stays.
	if _, e := run(t, addr, "fleet", "create", "web", "--asg", "shoal-api", "--max", "3"); e != "" {
		t.Fatal(e)
	}
	if _, e := run(t, addr, "fleet", "delete", "web", "--purge"); !strings.Contains(e, "shoal-api") {
		t.Errorf("purge of fleet web on api's group: error %q, want a refusal naming the group", e)
	}
	if _, e := run(t, addr, "fleet", "get", "web"); e != "" {
		t.Errorf("the fleet is gone after a refused purge: %s", e)
	}
	if gs, err := cl.DescribeGroups(ctx, []string{"shoal-api"}); err != nil || len(gs) != 1 || gs[0].Status != "" {
		t.Errorf("api's group after a refused purge = %v, %v; want it untouched", gs, err)
	}
	// Run again after the fleet is gone: --asg names the group, nothing is
	// left, and it succeeds.
	if _, e := run(t, addr, "fleet", "delete", "web", "--purge", "--asg", "shoal-web", "-o", "json"); e != "" {
		t.Errorf("second purge: %s", e)
	}
}

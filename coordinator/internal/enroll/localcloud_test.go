package enroll

import (
	"context"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud/cloudtest"
)

func TestMain(m *testing.M) { os.Exit(cloudtest.RunMain(m)) }

// TestBatchLookupLocalCloud runs BatchLookup with the real SDK client
// against the real shoal-localcloud: the instances of a group are found
// with their group and state, an unknown id is not, and concurrent lookups
// share one call.
func TestBatchLookupLocalCloud(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	lc.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, sdkCfg, err := aws.Open(ctx, aws.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	subnets, err := cl.DescribeSubnets(ctx, cloud.SubnetQuery{DefaultForAZ: true})
	if err != nil || len(subnets) == 0 {
		t.Fatalf("subnets %v: %v", subnets, err)
	}
	lt, err := cl.CreateLaunchTemplate(ctx, cloud.LaunchTemplateSpec{Name: "web-lt", ImageID: "ami-localbase", InstanceType: "t3.micro"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.CreateGroup(ctx, cloud.GroupSpec{Name: "web-asg", Max: 5, Desired: 3,
		LaunchTemplate: cloud.TemplateRef{ID: lt.ID, Version: "$Latest"}, SubnetIDs: []string{subnets[0].ID}}); err != nil {
		t.Fatal(err)
	}
	// A reconcile pass launches the instances; moving the local cloud's
	// clock past its boot delay puts them in service.
	lc.Hook(http.MethodPost, "reconcile")
	lc.Advance(time.Second)
	gs, err := cl.DescribeGroups(ctx, []string{"web-asg"})
	if err != nil || len(gs) != 1 || len(gs[0].Instances) != 3 {
		t.Fatalf("group = %+v, %v", gs, err)
	}

	// The batch goes when its 4th id arrives; the long window only keeps
	// a slow machine from splitting it.
	lcfg := DefaultLookupConfig()
	lcfg.Window, lcfg.MaxBatch = time.Second, 4
	b, err := NewBatchLookup(autoscaling.NewFromConfig(sdkCfg), lcfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, in := range gs[0].Instances {
		wg.Go(func() {
			info, found, err := b.LookupInstance(ctx, in.ID)
			if err != nil || !found || info.Group != "web-asg" || info.InstanceID != in.ID || info.LifecycleState != in.LifecycleState {
				t.Errorf("%s: %+v found %v err %v; the group says %s", in.ID, info, found, err, in.LifecycleState)
			}
		})
	}
	wg.Go(func() {
		if _, found, err := b.LookupInstance(ctx, "i-0000000000000dead"); found || err != nil {
			t.Errorf("unknown instance: found %v, %v", found, err)
		}
	})
	wg.Wait()
	if n := b.Calls(); n != 1 {
		t.Fatalf("%d DescribeAutoScalingInstances calls for 4 concurrent lookups, want 1", n)
	}
}

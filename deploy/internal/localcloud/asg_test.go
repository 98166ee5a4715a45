package localcloud

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const sleepScript = "exec sleep 600"

func (tc *testCloud) template(t *testing.T, name, image, script string) string {
	t.Helper()
	data := &ec2types.RequestLaunchTemplateData{ImageId: aws.String(image), InstanceType: "t3.micro",
		TagSpecifications: []ec2types.LaunchTemplateTagSpecificationRequest{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String("from-template"), Value: aws.String("yes")}}}}}
	if script != "" {
		data.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(script)))
	}
	out, err := tc.ec2.CreateLaunchTemplate(ctxT(t), &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name), LaunchTemplateData: data})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.LaunchTemplate.LaunchTemplateId)
}

func allSubnets() string {
	var ids []string
	for _, s := range defaultSubnets {
		ids = append(ids, s.ID)
	}
	return strings.Join(ids, ",")
}

func (tc *testCloud) group(t *testing.T, name, lt string, min, max, desired int32, mut func(*autoscaling.CreateAutoScalingGroupInput)) {
	t.Helper()
	in := &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name), MinSize: aws.Int32(min), MaxSize: aws.Int32(max),
		DesiredCapacity: aws.Int32(desired), LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(lt)},
		VPCZoneIdentifier: aws.String(allSubnets())}
	if mut != nil {
		mut(in)
	}
	if _, err := tc.asg.CreateAutoScalingGroup(ctxT(t), in); err != nil {
		t.Fatal(err)
	}
}

func (tc *testCloud) describeGroup(t *testing.T, name string) astypes.AutoScalingGroup {
	t.Helper()
	out, err := tc.asg.DescribeAutoScalingGroups(ctxT(t), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AutoScalingGroups) != 1 {
		t.Fatalf("want group %s, got %d groups", name, len(out.AutoScalingGroups))
	}
	return out.AutoScalingGroups[0]
}

// waitInService waits until the group has exactly n instances, all InService.
func (tc *testCloud) waitInService(t *testing.T, name string, n int) []astypes.Instance {
	t.Helper()
	var got []astypes.Instance
	tc.eventually(t, 15*time.Second, func() error {
		g := tc.describeGroup(t, name)
		got = g.Instances
		if len(got) != n {
			return fmt.Errorf("%d instances, want %d", len(got), n)
		}
		for _, in := range got {
			if in.LifecycleState != astypes.LifecycleStateInService {
				return fmt.Errorf("instance %s is %s", aws.ToString(in.InstanceId), in.LifecycleState)
			}
		}
		return nil
	})
	return got
}

func TestCreateAutoScalingGroupValidation(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "existing", "web", 0, 1, 0, nil)
	cases := []struct {
		name string
		mut  func(*autoscaling.CreateAutoScalingGroupInput)
		code string
		msg  string
	}{
		{"min greater than max", func(in *autoscaling.CreateAutoScalingGroupInput) { in.MinSize, in.MaxSize = aws.Int32(5), aws.Int32(3) }, "ValidationError", "min bound, 5"},
		{"desired above max", func(in *autoscaling.CreateAutoScalingGroupInput) { in.DesiredCapacity = aws.Int32(9) }, "ValidationError", "Desired capacity:9"},
		{"desired below min", func(in *autoscaling.CreateAutoScalingGroupInput) {
			in.MinSize, in.DesiredCapacity = aws.Int32(2), aws.Int32(1)
		}, "ValidationError", "Desired capacity:1"},
		{"unknown launch template", func(in *autoscaling.CreateAutoScalingGroupInput) {
			in.LaunchTemplate.LaunchTemplateName = aws.String("nope")
		}, "ValidationError", "template name nope, does not exist"},
		{"unknown launch template version", func(in *autoscaling.CreateAutoScalingGroupInput) {
			in.LaunchTemplate.Version = aws.String("7")
		}, "ValidationError", "version 7"},
		{"unknown subnet", func(in *autoscaling.CreateAutoScalingGroupInput) {
			in.VPCZoneIdentifier = aws.String("subnet-0123456789abcdef0")
		}, "ValidationError", "subnet-0123456789abcdef0"},
		{"duplicate name", func(in *autoscaling.CreateAutoScalingGroupInput) { in.AutoScalingGroupName = aws.String("existing") }, "AlreadyExists", "existing"},
		{"no subnets", func(in *autoscaling.CreateAutoScalingGroupInput) { in.VPCZoneIdentifier = nil }, "ValidationError", "At least one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g-" + strings.ReplaceAll(c.name, " ", "-")),
				MinSize: aws.Int32(1), MaxSize: aws.Int32(3), DesiredCapacity: aws.Int32(1),
				LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String("web")}, VPCZoneIdentifier: aws.String(allSubnets())}
			c.mut(in)
			_, err := tc.asg.CreateAutoScalingGroup(ctxT(t), in)
			wantCode(t, err, c.code)
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not mention %q", err, c.msg)
			}
		})
	}
	out, err := tc.asg.DescribeAutoScalingGroups(ctxT(t), &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AutoScalingGroups) != 1 {
		t.Fatalf("rejected creates must not leave groups behind; have %d groups", len(out.AutoScalingGroups))
	}
}

func TestGroupLaunchesBalancedInstancesWithTags(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "web", "web", 1, 6, 3, func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.Tags = []astypes.Tag{
			{Key: aws.String("team"), Value: aws.String("shoal"), PropagateAtLaunch: aws.Bool(true)},
			{Key: aws.String("billing"), Value: aws.String("x"), PropagateAtLaunch: aws.Bool(false)},
		}
	})
	insts := tc.waitInService(t, "web", 3)
	azs := map[string]int{}
	var ids []string
	for _, in := range insts {
		azs[aws.ToString(in.AvailabilityZone)]++
		ids = append(ids, aws.ToString(in.InstanceId))
		if id := aws.ToString(in.InstanceId); len(id) != 19 || !strings.HasPrefix(id, "i-") {
			t.Errorf("instance id %q is not i- plus 17 hex digits", id)
		}
	}
	if len(azs) != 3 {
		t.Errorf("3 instances over 3 zones should be one per zone, got %v", azs)
	}
	di, err := tc.ec2.DescribeInstances(ctxT(t), &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]bool{}
	for _, r := range di.Reservations {
		for _, in := range r.Instances {
			if in.State.Name != ec2types.InstanceStateNameRunning {
				t.Errorf("%s is %s, want running", aws.ToString(in.InstanceId), in.State.Name)
			}
			ip := aws.ToString(in.PrivateIpAddress)
			if !strings.HasPrefix(ip, "127.0.77.") || ips[ip] {
				t.Errorf("private ip %q must be a unique 127.0.77.N", ip)
			}
			ips[ip] = true
			tags := map[string]string{}
			for _, tg := range in.Tags {
				tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
			if tags["aws:autoscaling:groupName"] != "web" || tags["team"] != "shoal" || tags["from-template"] != "yes" {
				t.Errorf("instance tags %v must have the group name, propagated and template tags", tags)
			}
			if _, ok := tags["billing"]; ok {
				t.Errorf("tag with PropagateAtLaunch=false was propagated: %v", tags)
			}
		}
	}
	if len(ips) != 3 {
		t.Fatalf("DescribeInstances returned %d instances, want 3", len(ips))
	}
	dai, err := tc.asg.DescribeAutoScalingInstances(ctxT(t), &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: ids[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if len(dai.AutoScalingInstances) != 1 || aws.ToString(dai.AutoScalingInstances[0].AutoScalingGroupName) != "web" || aws.ToString(dai.AutoScalingInstances[0].HealthStatus) != "Healthy" {
		t.Fatalf("DescribeAutoScalingInstances = %+v", dai.AutoScalingInstances)
	}
	acts, err := tc.asg.DescribeScalingActivities(ctxT(t), &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("web")})
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, a := range acts.Activities {
		if strings.HasPrefix(aws.ToString(a.Description), "Launching a new EC2 instance: i-") && a.StatusCode == astypes.ScalingActivityStatusCodeSuccessful {
			ok++
		}
	}
	if ok != 3 {
		t.Fatalf("want 3 successful launch activities, got %d: %+v", ok, acts.Activities)
	}
}

func TestSetDesiredCapacityAndUpdate(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 1, 4, 1, nil)
	tc.waitInService(t, "g", 1)
	cases := []struct {
		name    string
		desired int32
		code    string
	}{
		{"above max", 5, "ValidationError"},
		{"below min", 0, "ValidationError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tc.asg.SetDesiredCapacity(ctxT(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(c.desired)})
			wantCode(t, err, c.code)
		})
	}
	_, err := tc.asg.SetDesiredCapacity(ctxT(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("nope"), DesiredCapacity: aws.Int32(1)})
	wantCode(t, err, "ValidationError")
	if _, err := tc.asg.SetDesiredCapacity(ctxT(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	tc.waitInService(t, "g", 3)
	// Raising min above desired raises desired, as on AWS.
	if _, err := tc.asg.UpdateAutoScalingGroup(ctxT(t), &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g"), MinSize: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	if g := tc.describeGroup(t, "g"); aws.ToInt32(g.DesiredCapacity) != 4 || aws.ToInt32(g.MinSize) != 4 {
		t.Fatalf("after min=4: desired %d min %d", aws.ToInt32(g.DesiredCapacity), aws.ToInt32(g.MinSize))
	}
	tc.waitInService(t, "g", 4)
	_, err = tc.asg.UpdateAutoScalingGroup(ctxT(t), &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g"), MaxSize: aws.Int32(2)})
	wantCode(t, err, "ValidationError")
	if _, err := tc.asg.UpdateAutoScalingGroup(ctxT(t), &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g"), MinSize: aws.Int32(1), MaxSize: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	tc.waitInService(t, "g", 2)
	azs := map[string]bool{}
	for _, in := range tc.describeGroup(t, "g").Instances {
		azs[aws.ToString(in.AvailabilityZone)] = true
	}
	if len(azs) != 2 {
		t.Fatalf("scale-in must keep the group balanced: 2 instances in zones %v", azs)
	}
}

func TestTerminateInstanceInGroup(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 1, 4, 2, nil)
	insts := tc.waitInService(t, "g", 2)
	victim := aws.ToString(insts[0].InstanceId)

	out, err := tc.asg.TerminateInstanceInAutoScalingGroup(ctxT(t), &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(victim), ShouldDecrementDesiredCapacity: aws.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(aws.ToString(out.Activity.Description), victim) {
		t.Fatalf("activity %q does not name %s", aws.ToString(out.Activity.Description), victim)
	}
	tc.eventually(t, 15*time.Second, func() error {
		g := tc.describeGroup(t, "g")
		for _, in := range g.Instances {
			if aws.ToString(in.InstanceId) == victim {
				return fmt.Errorf("%s still in group (%s)", victim, in.LifecycleState)
			}
		}
		if len(g.Instances) != 2 {
			return fmt.Errorf("want a replacement: %d instances", len(g.Instances))
		}
		return nil
	})
	if d := aws.ToInt32(tc.describeGroup(t, "g").DesiredCapacity); d != 2 {
		t.Fatalf("ShouldDecrementDesiredCapacity=false changed desired to %d", d)
	}
	insts = tc.waitInService(t, "g", 2)
	if _, err := tc.asg.TerminateInstanceInAutoScalingGroup(ctxT(t), &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: insts[0].InstanceId, ShouldDecrementDesiredCapacity: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	tc.waitInService(t, "g", 1)
	if d := aws.ToInt32(tc.describeGroup(t, "g").DesiredCapacity); d != 1 {
		t.Fatalf("ShouldDecrementDesiredCapacity=true left desired at %d", d)
	}
	last := tc.waitInService(t, "g", 1)
	_, err = tc.asg.TerminateInstanceInAutoScalingGroup(ctxT(t), &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: last[0].InstanceId, ShouldDecrementDesiredCapacity: aws.Bool(true)})
	wantCode(t, err, "ValidationError")
	_, err = tc.asg.TerminateInstanceInAutoScalingGroup(ctxT(t), &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String("i-0123456789abcdef0"), ShouldDecrementDesiredCapacity: aws.Bool(false)})
	wantCode(t, err, "ValidationError")
}

func TestInstanceProtectionAndSuspendedProcesses(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 4, 2, nil)
	insts := tc.waitInService(t, "g", 2)
	keep := aws.ToString(insts[0].InstanceId)
	if _, err := tc.asg.SetInstanceProtection(ctxT(t), &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String("g"), InstanceIds: []string{keep}, ProtectedFromScaleIn: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	_, err := tc.asg.SetInstanceProtection(ctxT(t), &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String("g"), InstanceIds: []string{"i-0123456789abcdef0"}, ProtectedFromScaleIn: aws.Bool(true)})
	wantCode(t, err, "ValidationError")
	if _, err := tc.asg.SetDesiredCapacity(ctxT(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	left := tc.waitInService(t, "g", 1)
	if aws.ToString(left[0].InstanceId) != keep || !aws.ToBool(left[0].ProtectedFromScaleIn) {
		t.Fatalf("scale-in removed the protected instance %s; left %+v", keep, left[0])
	}

	if _, err := tc.asg.SuspendProcesses(ctxT(t), &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("g"), ScalingProcesses: []string{"Launch"}}); err != nil {
		t.Fatal(err)
	}
	_, err = tc.asg.SuspendProcesses(ctxT(t), &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("g"), ScalingProcesses: []string{"Teleport"}})
	wantCode(t, err, "ValidationError")
	g := tc.describeGroup(t, "g")
	if len(g.SuspendedProcesses) != 1 || aws.ToString(g.SuspendedProcesses[0].ProcessName) != "Launch" {
		t.Fatalf("SuspendedProcesses = %+v", g.SuspendedProcesses)
	}
	if _, err := tc.asg.SetDesiredCapacity(ctxT(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	// With Launch suspended, reconcile passes must not launch anything.
	for i := 0; i < 5; i++ {
		tc.hook(t, "POST", "/_localcloud/reconcile")
	}
	if n := len(tc.describeGroup(t, "g").Instances); n != 1 {
		t.Fatalf("Launch is suspended but the group has %d instances", n)
	}
	if _, err := tc.asg.ResumeProcesses(ctxT(t), &autoscaling.ResumeProcessesInput{AutoScalingGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	tc.waitInService(t, "g", 3)
}

func TestCrashedInstanceIsReplaced(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 1, 2, 1, nil)
	first := aws.ToString(tc.waitInService(t, "g", 1)[0].InstanceId)
	var pid int
	for _, in := range tc.instances(t) {
		if in.ID == first {
			pid = in.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no pid for %s", first)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tc.eventually(t, 15*time.Second, func() error {
		insts := tc.describeGroup(t, "g").Instances
		if len(insts) != 1 || aws.ToString(insts[0].InstanceId) == first || insts[0].LifecycleState != astypes.LifecycleStateInService {
			return fmt.Errorf("instances %+v", insts)
		}
		return nil
	})
	acts, err := tc.asg.DescribeScalingActivities(ctxT(t), &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("g")})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range acts.Activities {
		found = found || (strings.Contains(aws.ToString(a.Description), "Terminating EC2 instance: "+first) && strings.Contains(aws.ToString(a.Cause), "status check failure"))
	}
	if !found {
		t.Fatalf("no health-check termination activity for %s", first)
	}
}

func TestFailedLaunchIsRecorded(t *testing.T) {
	tc := startCloud(t, func(c *Config) { c.LaunchRetry = 100 * time.Millisecond })
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.hook(t, "POST", "/_localcloud/faults/launch?group=g&message=no+capacity+today")
	tc.group(t, "g", "web", 1, 2, 1, nil)
	tc.eventually(t, 10*time.Second, func() error {
		acts, err := tc.asg.DescribeScalingActivities(ctxT(t), &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("g")})
		if err != nil {
			return err
		}
		for _, a := range acts.Activities {
			if a.StatusCode == astypes.ScalingActivityStatusCodeFailed && strings.Contains(aws.ToString(a.StatusMessage), "no capacity today") {
				return nil
			}
		}
		return fmt.Errorf("no failed activity yet: %+v", acts.Activities)
	})
	if n := len(tc.describeGroup(t, "g").Instances); n != 0 {
		t.Fatalf("launch fault active but %d instances", n)
	}
	tc.hook(t, "DELETE", "/_localcloud/faults/launch?group=g")
	tc.waitInService(t, "g", 1)
}

func TestDeleteAutoScalingGroup(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 1, 2, 1, nil)
	tc.waitInService(t, "g", 1)
	_, err := tc.asg.DeleteAutoScalingGroup(ctxT(t), &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("g")})
	wantCode(t, err, "ResourceInUse")
	_, err = tc.asg.DeleteAutoScalingGroup(ctxT(t), &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("nope")})
	wantCode(t, err, "ValidationError")
	if _, err := tc.asg.DeleteAutoScalingGroup(ctxT(t), &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("g"), ForceDelete: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	tc.eventually(t, 10*time.Second, func() error {
		out, err := tc.asg.DescribeAutoScalingGroups(ctxT(t), &autoscaling.DescribeAutoScalingGroupsInput{})
		if err != nil {
			return err
		}
		if len(out.AutoScalingGroups) != 0 {
			return fmt.Errorf("group still listed: %+v", out.AutoScalingGroups[0].Status)
		}
		return nil
	})
	for _, in := range tc.instances(t) {
		if in.State != "terminated" || in.PID != 0 {
			t.Fatalf("after ForceDelete instance %s is %s pid %d", in.ID, in.State, in.PID)
		}
	}
}

func TestImageWorkloadPlusTemplateUserData(t *testing.T) {
	dir := t.TempDir()
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	golden := fmt.Sprintf("echo workload >> %s/$LOCALCLOUD_INSTANCE_ID; exec sleep 600", dir)
	run, err := tc.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(BaseImageID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		UserData: aws.String(base64.StdEncoding.EncodeToString([]byte(golden)))})
	if err != nil {
		t.Fatal(err)
	}
	goldenID := aws.ToString(run.Instances[0].InstanceId)
	_, err = tc.ec2.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(goldenID), Name: aws.String("too-early")})
	wantCode(t, err, "IncorrectInstanceState")
	tc.eventually(t, 10*time.Second, func() error {
		out, err := tc.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{goldenID}})
		if err != nil {
			return err
		}
		if s := out.Reservations[0].Instances[0].State.Name; s != ec2types.InstanceStateNameRunning {
			return fmt.Errorf("golden instance is %s", s)
		}
		return nil
	})
	img, err := tc.ec2.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(goldenID), Name: aws.String("app-v1"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage, Tags: []ec2types.Tag{{Key: aws.String("app"), Value: aws.String("v1")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.ec2.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(goldenID), Name: aws.String("app-v1")})
	wantCode(t, err, "InvalidAMIName.Duplicate")
	imgs, err := tc.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := tc.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:app"), Values: []string{"v1"}}}})
	if err != nil || len(tagged.Images) != 1 || aws.ToString(tagged.Images[0].ImageId) != aws.ToString(img.ImageId) {
		t.Fatalf("DescribeImages tag:app=v1 = %+v, %v", tagged, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, im := range imgs.Images {
		names[aws.ToString(im.ImageId)] = aws.ToString(im.Name)
	}
	if names[BaseImageID] == "" || names[aws.ToString(img.ImageId)] != "app-v1" {
		t.Fatalf("DescribeImages = %v", names)
	}
	_, err = tc.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"ami-0123456789abcdef0"}})
	wantCode(t, err, "InvalidAMIID.NotFound")

	tc.template(t, "app", aws.ToString(img.ImageId), fmt.Sprintf("echo userdata >> %s/$LOCALCLOUD_INSTANCE_ID", dir))
	tc.group(t, "app", "app", 1, 1, 1, nil)
	id := aws.ToString(tc.waitInService(t, "app", 1)[0].InstanceId)
	tc.eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(dir, id))
		if err != nil {
			return err
		}
		lines := strings.Fields(string(b))
		sort.Strings(lines)
		if strings.Join(lines, ",") != "userdata,workload" {
			return fmt.Errorf("instance ran %q, want the image workload and the template user data", b)
		}
		return nil
	})
	// The image's workload keeps the instance alive after the template's
	// short user data exits: it must stay InService.
	tc.hook(t, "POST", "/_localcloud/reconcile")
	if g := tc.describeGroup(t, "app"); len(g.Instances) != 1 || aws.ToString(g.Instances[0].InstanceId) != id || aws.ToString(g.Instances[0].HealthStatus) != "Healthy" {
		t.Fatalf("instance from image did not stay healthy: %+v", g.Instances)
	}
}

func TestDescribeInstanceRefreshes(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 1, 0, nil)
	out, err := tc.asg.DescribeInstanceRefreshes(ctxT(t), &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("g")})
	if err != nil || len(out.InstanceRefreshes) != 0 {
		t.Fatalf("DescribeInstanceRefreshes = %+v, %v", out, err)
	}
	_, err = tc.asg.DescribeInstanceRefreshes(ctxT(t), &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("nope")})
	wantCode(t, err, "ValidationError")
}

func TestDescribeAutoScalingGroupsPaging(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		tc.group(t, n, "web", 0, 1, 0, nil)
	}
	p := autoscaling.NewDescribeAutoScalingGroupsPaginator(tc.asg, &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(2)})
	var names []string
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, g := range out.AutoScalingGroups {
			names = append(names, aws.ToString(g.AutoScalingGroupName))
		}
	}
	if strings.Join(names, "") != "abcde" || pages != 3 {
		t.Fatalf("paged %d pages: %v", pages, names)
	}
	_, err := tc.asg.DescribeAutoScalingGroups(ctxT(t), &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(500)})
	wantCode(t, err, "ValidationError")
}

func TestDescribeScalingActivitiesPaging(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 5, 5, nil)
	tc.waitInService(t, "g", 5)
	p := autoscaling.NewDescribeScalingActivitiesPaginator(tc.asg, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("g"), MaxRecords: aws.Int32(2)})
	seen := map[string]bool{}
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range out.Activities {
			if seen[aws.ToString(a.ActivityId)] {
				t.Fatalf("activity %s on two pages", aws.ToString(a.ActivityId))
			}
			seen[aws.ToString(a.ActivityId)] = true
		}
	}
	if len(seen) != 5 || pages != 3 {
		t.Fatalf("%d activities over %d pages, want 5 over 3", len(seen), pages)
	}
	_, err := tc.asg.DescribeScalingActivities(ctxT(t), &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("g"), NextToken: aws.String("bogus")})
	wantCode(t, err, "InvalidNextToken")
}

func TestSetDesiredCapacityHonorCooldown(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 1, 3, 1, func(in *autoscaling.CreateAutoScalingGroupInput) { in.DefaultCooldown = aws.Int32(120) })
	tc.waitInService(t, "g", 1) // the launch activity just ended: cooldown runs
	in := &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(2), HonorCooldown: aws.Bool(true)}
	_, err := tc.asg.SetDesiredCapacity(ctxT(t), in, func(o *autoscaling.Options) { o.RetryMaxAttempts = 1 })
	wantCode(t, err, "ScalingActivityInProgress")
	tc.hook(t, "POST", "/_localcloud/clock?advance=121s")
	if _, err := tc.asg.SetDesiredCapacity(ctxT(t), in); err != nil {
		t.Fatalf("after the cooldown: %v", err)
	}
	tc.waitInService(t, "g", 2)
}

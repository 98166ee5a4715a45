package localcloud

import (
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestDefaultVPC(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	azs, err := tc.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, z := range azs.AvailabilityZones {
		names = append(names, aws.ToString(z.ZoneName))
		if z.State != ec2types.AvailabilityZoneStateAvailable || aws.ToString(z.RegionName) != "us-east-1" {
			t.Errorf("zone %+v", z)
		}
	}
	if fmt.Sprint(names) != "[us-east-1a us-east-1b us-east-1c]" {
		t.Fatalf("zones = %v", names)
	}
	sn, err := tc.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sn.Subnets) != 3 {
		t.Fatalf("%d subnets, want one per zone", len(sn.Subnets))
	}
	for i, s := range sn.Subnets {
		if aws.ToString(s.AvailabilityZone) != names[i] || aws.ToString(s.VpcId) != VPCID || !aws.ToBool(s.DefaultForAz) {
			t.Errorf("subnet %+v", s)
		}
	}
	one, err := tc.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("availability-zone"), Values: []string{"us-east-1b"}}}})
	if err != nil || len(one.Subnets) != 1 || aws.ToString(one.Subnets[0].SubnetId) != defaultSubnets[1].ID {
		t.Fatalf("filter by zone = %+v, %v", one, err)
	}
	_, err = tc.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}})
	wantCode(t, err, "InvalidSubnetID.NotFound")
}

func TestLaunchTemplates(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	id := tc.template(t, "web", BaseImageID, "true")
	_, err := tc.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(BaseImageID)}})
	wantCode(t, err, "InvalidLaunchTemplateName.AlreadyExistsException")
	_, err = tc.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("other"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")}})
	wantCode(t, err, "InvalidAMIID.NotFound")
	out, err := tc.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.LaunchTemplates) != 1 || aws.ToString(out.LaunchTemplates[0].LaunchTemplateId) != id || aws.ToInt64(out.LaunchTemplates[0].LatestVersionNumber) != 1 {
		t.Fatalf("DescribeLaunchTemplates = %+v", out.LaunchTemplates)
	}
	_, err = tc.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{"nope"}})
	wantCode(t, err, "InvalidLaunchTemplateName.NotFoundException")
	_, err = tc.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{"lt-0123456789abcdef0"}})
	wantCode(t, err, "InvalidLaunchTemplateId.NotFound")
	v, err := tc.ec2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(id), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(BaseImageID), InstanceType: "c5.large"}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(v.LaunchTemplateVersion.VersionNumber) != 2 || v.LaunchTemplateVersion.LaunchTemplateData.InstanceType != "c5.large" {
		t.Fatalf("CreateLaunchTemplateVersion = %+v", v.LaunchTemplateVersion)
	}
}

func TestRunDescribeTerminateInstances(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	bad := []struct {
		name string
		in   ec2.RunInstancesInput
		code string
	}{
		{"unknown image", ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0")}, "InvalidAMIID.NotFound"},
		{"unknown subnet", ec2.RunInstancesInput{ImageId: aws.String(BaseImageID), SubnetId: aws.String("subnet-0123456789abcdef0")}, "InvalidSubnetID.NotFound"},
		{"bad user data", ec2.RunInstancesInput{ImageId: aws.String(BaseImageID), UserData: aws.String("%%%not base64")}, "InvalidUserData.Malformed"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			in.MinCount, in.MaxCount = aws.Int32(1), aws.Int32(1)
			_, err := tc.ec2.RunInstances(ctx, &in)
			wantCode(t, err, c.code)
		})
	}
	run, err := tc.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(BaseImageID), MinCount: aws.Int32(2), MaxCount: aws.Int32(2), SubnetId: aws.String(defaultSubnets[2].ID),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("golden")}}}},
		UserData:          aws.String(base64.StdEncoding.EncodeToString([]byte("exit 0")))})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Instances) != 2 || run.Instances[0].State.Name != ec2types.InstanceStateNamePending || aws.ToString(run.Instances[0].Placement.AvailabilityZone) != "us-east-1c" {
		t.Fatalf("RunInstances = %+v", run.Instances)
	}
	a, b := aws.ToString(run.Instances[0].InstanceId), aws.ToString(run.Instances[1].InstanceId)
	// The user data exits at once: a standalone instance whose workload
	// ends stops, as an instance that shuts itself down does.
	tc.eventually(t, 10*time.Second, func() error {
		out, err := tc.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{"golden"}}, {Name: aws.String("instance-state-name"), Values: []string{"stopped"}}}})
		if err != nil {
			return err
		}
		if n := len(out.Reservations); n != 2 {
			return fmt.Errorf("%d stopped golden instances", n)
		}
		return nil
	})
	if _, err := tc.ec2.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(a), Name: aws.String("from-stopped")}); err != nil {
		t.Fatalf("CreateImage from a stopped instance: %v", err)
	}
	term, err := tc.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	if len(term.TerminatingInstances) != 2 || term.TerminatingInstances[0].PreviousState.Name != ec2types.InstanceStateNameStopped {
		t.Fatalf("TerminateInstances = %+v", term.TerminatingInstances)
	}
	tc.eventually(t, 10*time.Second, func() error {
		out, err := tc.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{a}})
		if err != nil {
			return err
		}
		if s := out.Reservations[0].Instances[0].State.Name; s != ec2types.InstanceStateNameTerminated {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})
	_, err = tc.ec2.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(a), Name: aws.String("from-terminated")})
	wantCode(t, err, "IncorrectInstanceState")
	_, err = tc.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
	_, err = tc.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
}

package localcloud

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

func TestSmoke(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	azs, err := tc.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d azs %s", len(azs.AvailabilityZones), aws.ToString(azs.AvailabilityZones[0].ZoneName))
	lt, err := tc.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-localbase")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lt %s", aws.ToString(lt.LaunchTemplate.LaunchTemplateId))
	_, err = tc.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g"), MinSize: aws.Int32(1), MaxSize: aws.Int32(3), DesiredCapacity: aws.Int32(2),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String("web")}, VPCZoneIdentifier: aws.String(defaultSubnets[0].ID + "," + defaultSubnets[1].ID)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tc.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", out.AutoScalingGroups)
}

package enrollbench

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// localSubnets are the local cloud's default subnets.
const localSubnets = "subnet-0a1a00000000000a1,subnet-0b1b00000000000b2,subnet-0c1c00000000000c3"

// localImage is the local cloud's base image.
const localImage = "ami-localbase"

// Setup creates a launch template with no user data (an instance runs no
// process; the driver plays its agent) and a group of n on the local cloud
// at cloud, then waits until all n run.
func Setup(ctx context.Context, cloud, group string, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg := aws.Config{Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "enrollbench", SecretAccessKey: "enrollbench"}, nil
		})}
	e := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(cloud) })
	as := autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = aws.String(cloud) })
	if _, err := e.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(group),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(localImage), InstanceType: "t3.micro"}}); err != nil {
		return fmt.Errorf("create launch template: %w", err)
	}
	size := aws.Int32(int32(n))
	if _, err := as.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(group),
		MinSize: size, MaxSize: size, DesiredCapacity: size, VPCZoneIdentifier: aws.String(localSubnets),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(group)}}); err != nil {
		return fmt.Errorf("create auto scaling group: %w", err)
	}
	for {
		ins, err := Instances(ctx, cloud, group)
		if err == nil && len(ins) >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s: %d of %d instances running after %s (last error: %v)", group, len(ins), n, timeout, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

package aws

import (
	"context"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

var _ cloud.Teardown = (*Cloud)(nil)

// DeleteGroup implements cloud.Teardown: ForceDelete, so AWS terminates the
// group's instances without waiting for Shoal's drain hook.
func (c *Cloud) DeleteGroup(ctx context.Context, name string) error {
	_, err := c.as.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{
		AutoScalingGroupName: sdkaws.String(name), ForceDelete: sdkaws.Bool(true),
	})
	return Translate(OpDeleteAutoScalingGroup, err)
}

// DeleteLaunchTemplate implements cloud.Teardown.
func (c *Cloud) DeleteLaunchTemplate(ctx context.Context, name string) error {
	_, err := c.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: sdkaws.String(name)})
	return Translate(OpDeleteLaunchTemplate, err)
}

// DeregisterImage implements cloud.Teardown.
func (c *Cloud) DeregisterImage(ctx context.Context, id string) error {
	_, err := c.ec2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: sdkaws.String(id)})
	return Translate(OpDeregisterImage, err)
}

// DeleteSnapshot implements cloud.Teardown.
func (c *Cloud) DeleteSnapshot(ctx context.Context, id string) error {
	_, err := c.ec2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: sdkaws.String(id)})
	return Translate(OpDeleteSnapshot, err)
}

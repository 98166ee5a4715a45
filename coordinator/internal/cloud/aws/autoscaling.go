package aws

import (
	"context"
	"fmt"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

// DescribeGroups implements cloud.Scaling.
func (c *Cloud) DescribeGroups(ctx context.Context, names []string) ([]cloud.Group, error) {
	var out []cloud.Group
	for start := 0; start < len(names); start += cloud.MaxGroupsPerDescribe {
		end := min(start+cloud.MaxGroupsPerDescribe, len(names))
		p := autoscaling.NewDescribeAutoScalingGroupsPaginator(c.as, &autoscaling.DescribeAutoScalingGroupsInput{
			AutoScalingGroupNames: names[start:end],
			MaxRecords:            sdkaws.Int32(cloud.MaxGroupsPerDescribe),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, Translate(OpDescribeAutoScalingGroups, err)
			}
			for _, g := range page.AutoScalingGroups {
				out = append(out, groupFrom(g))
			}
		}
	}
	return out, nil
}

func groupFrom(g astypes.AutoScalingGroup) cloud.Group {
	out := cloud.Group{
		Name:                sdkaws.ToString(g.AutoScalingGroupName),
		Min:                 sdkaws.ToInt32(g.MinSize),
		Max:                 sdkaws.ToInt32(g.MaxSize),
		Desired:             sdkaws.ToInt32(g.DesiredCapacity),
		AvailabilityZones:   g.AvailabilityZones,
		LaunchTemplate:      asTemplateRef(g.LaunchTemplate),
		HealthCheckGrace:    time.Duration(sdkaws.ToInt32(g.HealthCheckGracePeriod)) * time.Second,
		NewInstancesProtect: sdkaws.ToBool(g.NewInstancesProtectedFromScaleIn),
		CapacityRebalance:   sdkaws.ToBool(g.CapacityRebalance),
		Status:              sdkaws.ToString(g.Status),
		Created:             sdkaws.ToTime(g.CreatedTime),
	}
	if z := sdkaws.ToString(g.VPCZoneIdentifier); z != "" {
		out.SubnetIDs = strings.Split(z, ",")
	}
	for _, p := range g.SuspendedProcesses {
		out.SuspendedProcesses = append(out.SuspendedProcesses, sdkaws.ToString(p.ProcessName))
	}
	for _, t := range g.Tags {
		if out.Tags == nil {
			out.Tags = map[string]string{}
		}
		out.Tags[sdkaws.ToString(t.Key)] = sdkaws.ToString(t.Value)
	}
	for _, i := range g.Instances {
		out.Instances = append(out.Instances, cloud.Instance{
			ID:             sdkaws.ToString(i.InstanceId),
			AZ:             sdkaws.ToString(i.AvailabilityZone),
			LifecycleState: string(i.LifecycleState),
			Health:         sdkaws.ToString(i.HealthStatus),
			Protected:      sdkaws.ToBool(i.ProtectedFromScaleIn),
			InstanceType:   sdkaws.ToString(i.InstanceType),
			LaunchTemplate: asTemplateRef(i.LaunchTemplate),
		})
	}
	return out
}

func asTemplateRef(t *astypes.LaunchTemplateSpecification) *cloud.TemplateRef {
	if t == nil {
		return nil
	}
	return &cloud.TemplateRef{ID: sdkaws.ToString(t.LaunchTemplateId), Name: sdkaws.ToString(t.LaunchTemplateName), Version: sdkaws.ToString(t.Version)}
}

func asTemplateSpec(t cloud.TemplateRef) *astypes.LaunchTemplateSpecification {
	s := &astypes.LaunchTemplateSpecification{}
	if t.ID != "" {
		s.LaunchTemplateId = sdkaws.String(t.ID)
	} else {
		s.LaunchTemplateName = sdkaws.String(t.Name)
	}
	if t.Version != "" {
		s.Version = sdkaws.String(t.Version)
	}
	return s
}

// SetDesiredCapacity implements cloud.Scaling.
func (c *Cloud) SetDesiredCapacity(ctx context.Context, group string, desired int32) error {
	_, err := c.as.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: sdkaws.String(group),
		DesiredCapacity:      sdkaws.Int32(desired),
		HonorCooldown:        sdkaws.Bool(false),
	})
	return Translate(OpSetDesiredCapacity, err)
}

// TerminateInstance implements cloud.Scaling.
func (c *Cloud) TerminateInstance(ctx context.Context, instanceID string, decrement bool) (cloud.Activity, error) {
	out, err := c.as.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId:                     sdkaws.String(instanceID),
		ShouldDecrementDesiredCapacity: sdkaws.Bool(decrement),
	})
	if err != nil {
		return cloud.Activity{}, Translate(OpTerminateInstanceInAutoScalingGroup, err)
	}
	if out.Activity == nil {
		return cloud.Activity{}, nil
	}
	return activityFrom(*out.Activity), nil
}

func activityFrom(a astypes.Activity) cloud.Activity {
	return cloud.Activity{
		ID:            sdkaws.ToString(a.ActivityId),
		Group:         sdkaws.ToString(a.AutoScalingGroupName),
		Description:   sdkaws.ToString(a.Description),
		Cause:         sdkaws.ToString(a.Cause),
		Status:        string(a.StatusCode),
		StatusMessage: sdkaws.ToString(a.StatusMessage),
		Progress:      sdkaws.ToInt32(a.Progress),
		Start:         sdkaws.ToTime(a.StartTime),
		End:           sdkaws.ToTime(a.EndTime),
	}
}

// SetInstanceProtection implements cloud.Scaling.
func (c *Cloud) SetInstanceProtection(ctx context.Context, group string, ids []string, protected bool) error {
	_, err := c.as.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{
		AutoScalingGroupName: sdkaws.String(group),
		InstanceIds:          ids,
		ProtectedFromScaleIn: sdkaws.Bool(protected),
	})
	return Translate(OpSetInstanceProtection, err)
}

// activeRefreshStatuses are the instance refresh states during which the
// group replaces instances on its own.
var activeRefreshStatuses = map[astypes.InstanceRefreshStatus]bool{
	astypes.InstanceRefreshStatusPending:            true,
	astypes.InstanceRefreshStatusInProgress:         true,
	astypes.InstanceRefreshStatusCancelling:         true,
	astypes.InstanceRefreshStatusRollbackInProgress: true,
	astypes.InstanceRefreshStatusBaking:             true,
}

// ActiveInstanceRefresh implements cloud.Scaling. Refreshes are listed
// newest first, so the first page holds any active one.
func (c *Cloud) ActiveInstanceRefresh(ctx context.Context, group string) (*cloud.InstanceRefresh, error) {
	out, err := c.as.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{
		AutoScalingGroupName: sdkaws.String(group),
		MaxRecords:           sdkaws.Int32(10),
	})
	if err != nil {
		return nil, Translate(OpDescribeInstanceRefreshes, err)
	}
	for _, r := range out.InstanceRefreshes {
		if activeRefreshStatuses[r.Status] {
			return &cloud.InstanceRefresh{ID: sdkaws.ToString(r.InstanceRefreshId), Status: string(r.Status), Start: sdkaws.ToTime(r.StartTime)}, nil
		}
	}
	return nil, nil
}

// DescribeScalingActivities implements cloud.Scaling.
func (c *Cloud) DescribeScalingActivities(ctx context.Context, group string, max int32) ([]cloud.Activity, error) {
	if max < 1 || max > 100 {
		return nil, fmt.Errorf("%w: max (%d) must be between 1 and 100", cloud.ErrValidation, max)
	}
	out, err := c.as.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{
		AutoScalingGroupName: sdkaws.String(group),
		MaxRecords:           sdkaws.Int32(max),
	})
	if err != nil {
		return nil, Translate(OpDescribeScalingActivities, err)
	}
	acts := make([]cloud.Activity, 0, len(out.Activities))
	for _, a := range out.Activities {
		acts = append(acts, activityFrom(a))
	}
	return acts, nil
}

// PutLifecycleHook implements cloud.Scaling.
func (c *Cloud) PutLifecycleHook(ctx context.Context, h cloud.LifecycleHook) error {
	in := &autoscaling.PutLifecycleHookInput{
		AutoScalingGroupName: sdkaws.String(h.Group),
		LifecycleHookName:    sdkaws.String(h.Name),
		LifecycleTransition:  sdkaws.String(h.Transition),
	}
	if h.HeartbeatTimeout > 0 {
		in.HeartbeatTimeout = sdkaws.Int32(int32(h.HeartbeatTimeout / time.Second))
	}
	if h.DefaultResult != "" {
		in.DefaultResult = sdkaws.String(h.DefaultResult)
	}
	if h.Metadata != "" {
		in.NotificationMetadata = sdkaws.String(h.Metadata)
	}
	_, err := c.as.PutLifecycleHook(ctx, in)
	return Translate(OpPutLifecycleHook, err)
}

// DescribeLifecycleHooks implements cloud.Scaling.
func (c *Cloud) DescribeLifecycleHooks(ctx context.Context, group string) ([]cloud.LifecycleHook, error) {
	out, err := c.as.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: sdkaws.String(group)})
	if err != nil {
		return nil, Translate(OpDescribeLifecycleHooks, err)
	}
	hooks := make([]cloud.LifecycleHook, 0, len(out.LifecycleHooks))
	for _, h := range out.LifecycleHooks {
		hooks = append(hooks, cloud.LifecycleHook{
			Name:             sdkaws.ToString(h.LifecycleHookName),
			Group:            sdkaws.ToString(h.AutoScalingGroupName),
			Transition:       sdkaws.ToString(h.LifecycleTransition),
			HeartbeatTimeout: time.Duration(sdkaws.ToInt32(h.HeartbeatTimeout)) * time.Second,
			DefaultResult:    sdkaws.ToString(h.DefaultResult),
			GlobalTimeout:    time.Duration(sdkaws.ToInt32(h.GlobalTimeout)) * time.Second,
			Metadata:         sdkaws.ToString(h.NotificationMetadata),
		})
	}
	return hooks, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return sdkaws.String(s)
}

// CompleteLifecycleAction implements cloud.Scaling.
func (c *Cloud) CompleteLifecycleAction(ctx context.Context, a cloud.LifecycleAction, result string) error {
	if result != cloud.ResultContinue && result != cloud.ResultAbandon {
		return fmt.Errorf("%w: result (%q) must be %s or %s", cloud.ErrValidation, result, cloud.ResultContinue, cloud.ResultAbandon)
	}
	_, err := c.as.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
		AutoScalingGroupName:  sdkaws.String(a.Group),
		LifecycleHookName:     sdkaws.String(a.Hook),
		LifecycleActionResult: sdkaws.String(result),
		InstanceId:            optString(a.InstanceID),
		LifecycleActionToken:  optString(a.Token),
	})
	return Translate(OpCompleteLifecycleAction, err)
}

// RecordLifecycleActionHeartbeat implements cloud.Scaling.
func (c *Cloud) RecordLifecycleActionHeartbeat(ctx context.Context, a cloud.LifecycleAction) error {
	_, err := c.as.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{
		AutoScalingGroupName: sdkaws.String(a.Group),
		LifecycleHookName:    sdkaws.String(a.Hook),
		InstanceId:           optString(a.InstanceID),
		LifecycleActionToken: optString(a.Token),
	})
	return Translate(OpRecordLifecycleActionHeartbeat, err)
}

// CreateGroup implements cloud.Bootstrap.
func (c *Cloud) CreateGroup(ctx context.Context, s cloud.GroupSpec) error {
	in := &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName:             sdkaws.String(s.Name),
		MinSize:                          sdkaws.Int32(s.Min),
		MaxSize:                          sdkaws.Int32(s.Max),
		DesiredCapacity:                  sdkaws.Int32(s.Desired),
		LaunchTemplate:                   asTemplateSpec(s.LaunchTemplate),
		VPCZoneIdentifier:                optString(strings.Join(s.SubnetIDs, ",")),
		NewInstancesProtectedFromScaleIn: sdkaws.Bool(s.NewInstancesProtect),
	}
	if s.HealthCheckGrace > 0 {
		in.HealthCheckGracePeriod = sdkaws.Int32(int32(s.HealthCheckGrace / time.Second))
	}
	if s.DefaultInstanceWarmup > 0 {
		in.DefaultInstanceWarmup = sdkaws.Int32(int32(s.DefaultInstanceWarmup / time.Second))
	}
	for _, k := range sortedKeys(s.Tags) {
		in.Tags = append(in.Tags, astypes.Tag{Key: sdkaws.String(k), Value: sdkaws.String(s.Tags[k]), PropagateAtLaunch: sdkaws.Bool(true)})
	}
	_, err := c.as.CreateAutoScalingGroup(ctx, in)
	return Translate(OpCreateAutoScalingGroup, err)
}

// UpdateGroup implements cloud.Bootstrap.
func (c *Cloud) UpdateGroup(ctx context.Context, u cloud.GroupUpdate) error {
	in := &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: sdkaws.String(u.Name),
		MinSize:              u.Min,
		MaxSize:              u.Max,
		DesiredCapacity:      u.Desired,
		VPCZoneIdentifier:    optString(strings.Join(u.SubnetIDs, ",")),
	}
	if u.LaunchTemplate != nil {
		in.LaunchTemplate = asTemplateSpec(*u.LaunchTemplate)
	}
	if u.HealthCheckGrace != nil {
		in.HealthCheckGracePeriod = sdkaws.Int32(int32(*u.HealthCheckGrace / time.Second))
	}
	_, err := c.as.UpdateAutoScalingGroup(ctx, in)
	return Translate(OpUpdateAutoScalingGroup, err)
}

package aws

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

var _ cloud.Cloud = (*Cloud)(nil)

// Cloud is cloud.Cloud on Auto Scaling and EC2.
type Cloud struct {
	as  *autoscaling.Client
	ec2 *ec2.Client
}

// New builds the clients from cfg (see LoadConfig).
func New(cfg sdkaws.Config) *Cloud {
	return &Cloud{as: autoscaling.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg)}
}

// Open loads the shared AWS config for c and builds a Cloud on it. Build the
// CloudWatch client (package publish) from the returned config too: its
// limiter middleware is what makes the budget shared.
func Open(ctx context.Context, c Config) (*Cloud, sdkaws.Config, error) {
	cfg, err := LoadConfig(ctx, c)
	if err != nil {
		return nil, sdkaws.Config{}, err
	}
	return New(cfg), cfg, nil
}

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

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ec2Tags(m map[string]string) []ec2types.Tag {
	var out []ec2types.Tag
	for _, k := range sortedKeys(m) {
		out = append(out, ec2types.Tag{Key: sdkaws.String(k), Value: sdkaws.String(m[k])})
	}
	return out
}

func tagMap(tags []ec2types.Tag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[sdkaws.ToString(t.Key)] = sdkaws.ToString(t.Value)
	}
	return m
}

func tagSpec(rt ec2types.ResourceType, m map[string]string) []ec2types.TagSpecification {
	if len(m) == 0 {
		return nil
	}
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: ec2Tags(m)}}
}

// RunInstances implements cloud.Bootstrap.
func (c *Cloud) RunInstances(ctx context.Context, s cloud.RunSpec) ([]cloud.EC2Instance, error) {
	n := s.Count
	if n == 0 {
		n = 1
	}
	in := &ec2.RunInstancesInput{
		MinCount:          sdkaws.Int32(n),
		MaxCount:          sdkaws.Int32(n),
		ImageId:           optString(s.ImageID),
		SubnetId:          optString(s.SubnetID),
		TagSpecifications: tagSpec(ec2types.ResourceTypeInstance, s.Tags),
	}
	if s.InstanceType != "" {
		in.InstanceType = ec2types.InstanceType(s.InstanceType)
	}
	if s.UserData != "" {
		in.UserData = sdkaws.String(base64.StdEncoding.EncodeToString([]byte(s.UserData)))
	}
	if t := s.LaunchTemplate; t != nil {
		in.LaunchTemplate = &ec2types.LaunchTemplateSpecification{LaunchTemplateId: optString(t.ID), LaunchTemplateName: optString(t.Name), Version: optString(t.Version)}
	}
	out, err := c.ec2.RunInstances(ctx, in)
	if err != nil {
		return nil, Translate(OpRunInstances, err)
	}
	insts := make([]cloud.EC2Instance, 0, len(out.Instances))
	for _, i := range out.Instances {
		insts = append(insts, ec2InstanceFrom(i))
	}
	return insts, nil
}

func ec2InstanceFrom(i ec2types.Instance) cloud.EC2Instance {
	out := cloud.EC2Instance{
		ID:         sdkaws.ToString(i.InstanceId),
		ImageID:    sdkaws.ToString(i.ImageId),
		Type:       string(i.InstanceType),
		SubnetID:   sdkaws.ToString(i.SubnetId),
		PrivateIP:  sdkaws.ToString(i.PrivateIpAddress),
		LaunchTime: sdkaws.ToTime(i.LaunchTime),
		Tags:       tagMap(i.Tags),
	}
	if i.State != nil {
		out.State = string(i.State.Name)
	}
	for _, g := range i.SecurityGroups {
		out.SecurityGroupIDs = append(out.SecurityGroupIDs, sdkaws.ToString(g.GroupId))
	}
	if i.IamInstanceProfile != nil {
		out.InstanceProfileARN = sdkaws.ToString(i.IamInstanceProfile.Arn)
	}
	if i.Placement != nil {
		out.AZ = sdkaws.ToString(i.Placement.AvailabilityZone)
	}
	return out
}

// DescribeInstances implements cloud.Bootstrap.
func (c *Cloud) DescribeInstances(ctx context.Context, ids []string) ([]cloud.EC2Instance, error) {
	var out []cloud.EC2Instance
	p := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{InstanceIds: ids})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, Translate(OpDescribeInstances, err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				out = append(out, ec2InstanceFrom(i))
			}
		}
	}
	return out, nil
}

// TerminateInstances implements cloud.Bootstrap.
func (c *Cloud) TerminateInstances(ctx context.Context, ids []string) error {
	_, err := c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	return Translate(OpTerminateInstances, err)
}

// CreateImage implements cloud.Bootstrap.
func (c *Cloud) CreateImage(ctx context.Context, s cloud.ImageSpec) (string, error) {
	out, err := c.ec2.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId:        sdkaws.String(s.InstanceID),
		Name:              sdkaws.String(s.Name),
		Description:       optString(s.Description),
		TagSpecifications: tagSpec(ec2types.ResourceTypeImage, s.Tags),
	})
	if err != nil {
		return "", Translate(OpCreateImage, err)
	}
	return sdkaws.ToString(out.ImageId), nil
}

// DescribeImages implements cloud.Bootstrap. Only the account's own images
// are listed: Shoal never launches someone else's AMI by name.
func (c *Cloud) DescribeImages(ctx context.Context, q cloud.ImageQuery) ([]cloud.Image, error) {
	in := &ec2.DescribeImagesInput{ImageIds: q.IDs, Owners: []string{"self"}}
	if len(q.Names) > 0 {
		in.Filters = append(in.Filters, ec2types.Filter{Name: sdkaws.String("name"), Values: q.Names})
	}
	for _, k := range sortedKeys(q.Tags) {
		in.Filters = append(in.Filters, ec2types.Filter{Name: sdkaws.String("tag:" + k), Values: []string{q.Tags[k]}})
	}
	var out []cloud.Image
	p := ec2.NewDescribeImagesPaginator(c.ec2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, Translate(OpDescribeImages, err)
		}
		for _, im := range page.Images {
			img := cloud.Image{ID: sdkaws.ToString(im.ImageId), Name: sdkaws.ToString(im.Name), State: string(im.State), Tags: tagMap(im.Tags)}
			if t, err := time.Parse(time.RFC3339, sdkaws.ToString(im.CreationDate)); err == nil {
				img.Created = t
			}
			out = append(out, img)
		}
	}
	return out, nil
}

func templateData(s cloud.LaunchTemplateSpec) *ec2types.RequestLaunchTemplateData {
	d := &ec2types.RequestLaunchTemplateData{ImageId: optString(s.ImageID)}
	if s.InstanceType != "" {
		d.InstanceType = ec2types.InstanceType(s.InstanceType)
	}
	if s.UserData != "" {
		d.UserData = sdkaws.String(base64.StdEncoding.EncodeToString([]byte(s.UserData)))
	}
	if len(s.InstanceTags) > 0 {
		d.TagSpecifications = []ec2types.LaunchTemplateTagSpecificationRequest{{ResourceType: ec2types.ResourceTypeInstance, Tags: ec2Tags(s.InstanceTags)}}
	}
	if len(s.SecurityGroupIDs) > 0 {
		d.SecurityGroupIds = s.SecurityGroupIDs
	}
	if s.InstanceProfileARN != "" {
		d.IamInstanceProfile = &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: sdkaws.String(s.InstanceProfileARN)}
	}
	if s.IMDSv2Required || s.MetadataTags || s.MetadataHopLimit > 0 {
		m := &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{}
		if s.IMDSv2Required {
			m.HttpTokens = ec2types.LaunchTemplateHttpTokensStateRequired
		}
		if s.MetadataTags {
			m.InstanceMetadataTags = ec2types.LaunchTemplateInstanceMetadataTagsStateEnabled
		}
		if s.MetadataHopLimit > 0 {
			m.HttpPutResponseHopLimit = sdkaws.Int32(s.MetadataHopLimit)
		}
		d.MetadataOptions = m
	}
	return d
}

func templateFrom(t *ec2types.LaunchTemplate) cloud.LaunchTemplate {
	if t == nil {
		return cloud.LaunchTemplate{}
	}
	return cloud.LaunchTemplate{
		ID:             sdkaws.ToString(t.LaunchTemplateId),
		Name:           sdkaws.ToString(t.LaunchTemplateName),
		DefaultVersion: sdkaws.ToInt64(t.DefaultVersionNumber),
		LatestVersion:  sdkaws.ToInt64(t.LatestVersionNumber),
		Created:        sdkaws.ToTime(t.CreateTime),
	}
}

// CreateLaunchTemplate implements cloud.Bootstrap.
func (c *Cloud) CreateLaunchTemplate(ctx context.Context, s cloud.LaunchTemplateSpec) (cloud.LaunchTemplate, error) {
	out, err := c.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: sdkaws.String(s.Name),
		VersionDescription: optString(s.Description),
		LaunchTemplateData: templateData(s),
		TagSpecifications:  tagSpec(ec2types.ResourceTypeLaunchTemplate, s.Tags),
	})
	if err != nil {
		return cloud.LaunchTemplate{}, Translate(OpCreateLaunchTemplate, err)
	}
	return templateFrom(out.LaunchTemplate), nil
}

// CreateLaunchTemplateVersion implements cloud.Bootstrap. The new version is
// not made the default (that would need ec2:ModifyLaunchTemplate); groups
// that should follow it name version "$Latest".
func (c *Cloud) CreateLaunchTemplateVersion(ctx context.Context, template string, s cloud.LaunchTemplateSpec) (cloud.LaunchTemplate, error) {
	out, err := c.ec2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateName: sdkaws.String(template),
		VersionDescription: optString(s.Description),
		LaunchTemplateData: templateData(s),
	})
	if err != nil {
		return cloud.LaunchTemplate{}, Translate(OpCreateLaunchTemplateVersion, err)
	}
	lt := cloud.LaunchTemplate{Name: template}
	if v := out.LaunchTemplateVersion; v != nil {
		lt.ID = sdkaws.ToString(v.LaunchTemplateId)
		lt.LatestVersion = sdkaws.ToInt64(v.VersionNumber)
		lt.Created = sdkaws.ToTime(v.CreateTime)
	}
	return lt, nil
}

// DescribeLaunchTemplates implements cloud.Bootstrap. EC2 refuses the whole
// call when one name is unknown (cloud.ErrNotFound); callers that probe for
// existence ask for one name at a time.
func (c *Cloud) DescribeLaunchTemplates(ctx context.Context, names []string) ([]cloud.LaunchTemplate, error) {
	var out []cloud.LaunchTemplate
	p := ec2.NewDescribeLaunchTemplatesPaginator(c.ec2, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: names})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, Translate(OpDescribeLaunchTemplates, err)
		}
		for i := range page.LaunchTemplates {
			out = append(out, templateFrom(&page.LaunchTemplates[i]))
		}
	}
	return out, nil
}

// DescribeSubnets implements cloud.Bootstrap.
func (c *Cloud) DescribeSubnets(ctx context.Context, q cloud.SubnetQuery) ([]cloud.Subnet, error) {
	in := &ec2.DescribeSubnetsInput{SubnetIds: q.IDs}
	if q.VPCID != "" {
		in.Filters = append(in.Filters, ec2types.Filter{Name: sdkaws.String("vpc-id"), Values: []string{q.VPCID}})
	}
	if q.DefaultForAZ {
		in.Filters = append(in.Filters, ec2types.Filter{Name: sdkaws.String("default-for-az"), Values: []string{"true"}})
	}
	var out []cloud.Subnet
	p := ec2.NewDescribeSubnetsPaginator(c.ec2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, Translate(OpDescribeSubnets, err)
		}
		for _, s := range page.Subnets {
			out = append(out, cloud.Subnet{
				ID:           sdkaws.ToString(s.SubnetId),
				VPCID:        sdkaws.ToString(s.VpcId),
				AZ:           sdkaws.ToString(s.AvailabilityZone),
				CIDR:         sdkaws.ToString(s.CidrBlock),
				DefaultForAZ: sdkaws.ToBool(s.DefaultForAz),
			})
		}
	}
	return out, nil
}

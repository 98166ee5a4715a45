package aws

import (
	"context"
	"encoding/base64"
	"sort"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

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
			for _, bd := range im.BlockDeviceMappings {
				if bd.Ebs != nil && bd.Ebs.SnapshotId != nil {
					img.SnapshotIDs = append(img.SnapshotIDs, *bd.Ebs.SnapshotId)
				}
			}
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

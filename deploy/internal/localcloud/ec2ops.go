package localcloud

import (
	"net/http"
	"sort"
	"strings"
)

// RunInput is RunInstances input.
type RunInput struct {
	ImageID      string
	InstanceType string
	SubnetID     string
	AZ           string
	UserData     string
	MinCount     int
	MaxCount     int
	Tags         []Tag
	LT           *LTRef
}

// RunInstances boots standalone instances (the operator's golden instance).
func (c *Cloud) RunInstances(in RunInput) ([]Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.MinCount < 1 || in.MaxCount < in.MinCount {
		return nil, apiErr(http.StatusBadRequest, "InvalidParameterValue", "MinCount (%d) must be >= 1 and <= MaxCount (%d)", in.MinCount, in.MaxCount)
	}
	if in.LT != nil {
		_, v, err := c.resolveLT(*in.LT)
		if err != nil {
			ae := err.(*APIError)
			return nil, apiErr(http.StatusBadRequest, "InvalidLaunchTemplateName.NotFoundException", "%s", ae.Message)
		}
		if in.ImageID == "" {
			in.ImageID = v.ImageID
		}
		if in.InstanceType == "" {
			in.InstanceType = v.InstanceType
		}
		if in.UserData == "" {
			in.UserData = v.UserData
		}
		in.Tags = append(append([]Tag(nil), v.InstanceTags...), in.Tags...)
	}
	if in.ImageID == "" {
		return nil, apiErr(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter ImageId")
	}
	if _, ok := c.images[in.ImageID]; !ok {
		return nil, apiErr(http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", in.ImageID)
	}
	if in.SubnetID != "" {
		if _, ok := subnetByID(in.SubnetID); !ok {
			return nil, apiErr(http.StatusBadRequest, "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", in.SubnetID)
		}
	}
	if in.SubnetID == "" && in.AZ != "" {
		for _, s := range defaultSubnets {
			if s.AZ == in.AZ {
				in.SubnetID = s.ID
			}
		}
		if in.SubnetID == "" {
			return nil, apiErr(http.StatusBadRequest, "InvalidParameterValue", "Invalid availability zone: [%s]", in.AZ)
		}
	}
	var out []Instance
	for i := 0; i < in.MaxCount; i++ {
		subnet := in.SubnetID
		if subnet == "" {
			subnet = defaultSubnets[i%len(defaultSubnets)].ID
		}
		inst, err := c.launchLocked(launchSpec{ImageID: in.ImageID, InstanceType: in.InstanceType, SubnetID: subnet, UserData: in.UserData, Tags: in.Tags, LT: in.LT})
		if err != nil {
			if i >= in.MinCount {
				break
			}
			return out, err
		}
		out = append(out, *inst)
	}
	c.poke()
	return out, nil
}

// Instances is DescribeInstances with instance-id and a few common filters.
func (c *Cloud) Instances(ids []string, filters map[string][]string) ([]Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if _, ok := c.instances[id]; !ok {
			return nil, apiErr(http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
	}
	var out []Instance
	for _, in := range c.instances {
		if len(ids) > 0 && !contains(ids, in.ID) {
			continue
		}
		if !matchInstance(in, filters) {
			continue
		}
		out = append(out, *in)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LaunchTime.Equal(out[j].LaunchTime) {
			return out[i].LaunchTime.Before(out[j].LaunchTime)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func matchInstance(in *Instance, filters map[string][]string) bool {
	for name, vals := range filters {
		var have string
		switch {
		case name == "instance-state-name":
			have = in.State
		case name == "instance-id":
			have = in.ID
		case name == "image-id":
			have = in.ImageID
		case name == "subnet-id":
			have = in.SubnetID
		case name == "availability-zone":
			have = in.AZ
		case name == "private-ip-address":
			have = in.IP
		case name == "vpc-id":
			have = VPCID
		case strings.HasPrefix(name, "tag:"):
			v, ok := tagsOf(in.Tags, strings.TrimPrefix(name, "tag:"))
			if !ok {
				return false
			}
			have = v
		case name == "tag-key":
			ok := false
			for _, v := range vals {
				_, found := tagsOf(in.Tags, v)
				ok = ok || found
			}
			if !ok {
				return false
			}
			continue
		default:
			continue
		}
		if !contains(vals, have) {
			return false
		}
	}
	return true
}

// TerminateResult is one TerminateInstances state change.
type TerminateResult struct {
	ID, Previous, Current string
}

// TerminateInstances is EC2 TerminateInstances. A group's instance
// terminated this way is replaced by its group, as on AWS.
func (c *Cloud) TerminateInstances(ids []string) ([]TerminateResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(ids) == 0 {
		return nil, apiErr(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter InstanceId")
	}
	for _, id := range ids {
		if _, ok := c.instances[id]; !ok {
			return nil, apiErr(http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
	}
	var out []TerminateResult
	for _, id := range ids {
		in := c.instances[id]
		prev := in.State
		if in.State != stateTerminated {
			c.shutDownLocked(in, "Client.UserInitiatedShutdown: User initiated shutdown",
				"At "+c.clock.Now().UTC().Format("2006-01-02T15:04:05Z")+" an instance was taken out of service in response to an EC2 instance status check failure.")
		}
		out = append(out, TerminateResult{ID: id, Previous: prev, Current: in.State})
	}
	c.poke()
	return out, nil
}

// shutDownLocked terminates an instance from the EC2 side (TerminateInstances,
// a Spot interruption): its group sees it go and replaces it, with cause.
func (c *Cloud) shutDownLocked(in *Instance, reason, cause string) {
	in.State, in.StateReason = stateShuttingDown, reason
	switch {
	case isWarm(in):
		c.warmTerminateLocked(in, cause)
	case in.Group != "" && !strings.HasPrefix(in.Lifecycle, "Terminat"):
		in.Lifecycle, in.Health = "Terminating", "Unhealthy"
		in.hook = nil
		in.termActivity = c.newActivity(in.Group, "Terminating EC2 instance: "+in.ID, cause)
	}
	c.stopLocked(in)
}

// CreateImage records how an instance was booted, so instances from the new
// image run the same workload.
func (c *Cloud) CreateImage(instanceID, name, description string, tags []Tag) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.instances[instanceID]
	if in == nil {
		return "", apiErr(http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", instanceID)
	}
	if name == "" {
		return "", apiErr(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter name")
	}
	if in.State != stateRunning && in.State != stateStopped {
		return "", apiErr(http.StatusBadRequest, "IncorrectInstanceState", "The instance '%s' is not in the 'running' or 'stopped' state (it is '%s').", instanceID, in.State)
	}
	for _, im := range c.images {
		if im.Name == name {
			return "", apiErr(http.StatusBadRequest, "InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", name, im.ID)
		}
	}
	im := &Image{ID: "ami-" + randHex(17), Name: name, Description: description, Workload: append([]string(nil), in.Workload...),
		Created: c.clock.Now(), SourceID: in.ID, Tags: tags, SnapshotID: "snap-" + randHex(17)}
	c.images[im.ID] = im
	c.snapshots[im.SnapshotID] = true
	c.dirty = true
	return im.ID, nil
}

// Images is DescribeImages; unknown ids are InvalidAMIID.NotFound.
func (c *Cloud) Images(ids []string, filters map[string][]string) ([]Image, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if _, ok := c.images[id]; !ok {
			return nil, apiErr(http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
	}
	var out []Image
	for _, im := range c.images {
		if len(ids) > 0 && !contains(ids, im.ID) {
			continue
		}
		if v, ok := filters["name"]; ok && !contains(v, im.Name) {
			continue
		}
		if v, ok := filters["image-id"]; ok && !contains(v, im.ID) {
			continue
		}
		if !matchTagFilters(im.Tags, filters) {
			continue
		}
		out = append(out, *im)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// CreateLaunchTemplate creates version 1 of a new template.
func (c *Cloud) CreateLaunchTemplate(name string, v LTVersion, tags []Tag) (LaunchTemplate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(name) < 3 || len(name) > 128 {
		return LaunchTemplate{}, apiErr(http.StatusBadRequest, "InvalidLaunchTemplateName.MalformedException", "LaunchTemplateName (%q) must be 3 to 128 characters", name)
	}
	for _, t := range c.templates {
		if t.Name == name {
			return LaunchTemplate{}, apiErr(http.StatusBadRequest, "InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use.")
		}
	}
	if v.ImageID != "" {
		if _, ok := c.images[v.ImageID]; !ok {
			return LaunchTemplate{}, apiErr(http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", v.ImageID)
		}
	}
	v.Number = 1
	lt := &LaunchTemplate{ID: "lt-" + randHex(17), Name: name, Created: c.clock.Now(), DefaultVersion: 1, Versions: []LTVersion{v}, Tags: tags}
	c.templates[lt.ID] = lt
	c.dirty = true
	return *lt, nil
}

// CreateLaunchTemplateVersion adds a version (it does not change the default).
func (c *Cloud) CreateLaunchTemplateVersion(ref LTRef, v LTVersion) (LaunchTemplate, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lt, _, err := c.resolveLT(LTRef{ID: ref.ID, Name: ref.Name})
	if err != nil {
		return LaunchTemplate{}, 0, apiErr(http.StatusBadRequest, "InvalidLaunchTemplateName.NotFoundException", "%s", err.(*APIError).Message)
	}
	if v.ImageID != "" {
		if _, ok := c.images[v.ImageID]; !ok {
			return LaunchTemplate{}, 0, apiErr(http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", v.ImageID)
		}
	}
	v.Number = len(lt.Versions) + 1
	lt.Versions = append(lt.Versions, v)
	c.dirty = true
	return *lt, v.Number, nil
}

// LaunchTemplates is DescribeLaunchTemplates.
func (c *Cloud) LaunchTemplates(ids, names []string) ([]LaunchTemplate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.templates[id] == nil {
			return nil, apiErr(http.StatusBadRequest, "InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
		}
	}
	for _, n := range names {
		found := false
		for _, t := range c.templates {
			found = found || t.Name == n
		}
		if !found {
			return nil, apiErr(http.StatusBadRequest, "InvalidLaunchTemplateName.NotFoundException", "At least one of the launch templates specified in the request does not exist.")
		}
	}
	var out []LaunchTemplate
	for _, t := range c.templates {
		if len(ids) > 0 && !contains(ids, t.ID) {
			continue
		}
		if len(names) > 0 && !contains(names, t.Name) {
			continue
		}
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// matchTagFilters applies tag:<key> filters.
func matchTagFilters(tags []Tag, filters map[string][]string) bool {
	for name, vals := range filters {
		k, ok := strings.CutPrefix(name, "tag:")
		if !ok {
			continue
		}
		v, found := tagsOf(tags, k)
		if !found || !contains(vals, v) {
			return false
		}
	}
	return true
}

// DeregisterImage is EC2's DeregisterImage: the image goes, its snapshot
// stays until DeleteSnapshot.
func (c *Cloud) DeregisterImage(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.images[id] == nil || id == BaseImageID {
		return apiErr(http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
	}
	delete(c.images, id)
	c.dirty = true
	return nil
}

// DeleteSnapshot is EC2's DeleteSnapshot; a snapshot a registered image
// still uses is InvalidSnapshot.InUse.
func (c *Cloud) DeleteSnapshot(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.snapshots[id] {
		return apiErr(http.StatusBadRequest, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
	}
	for _, im := range c.images {
		if im.SnapshotID == id {
			return apiErr(http.StatusBadRequest, "InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", id, im.ID)
		}
	}
	delete(c.snapshots, id)
	return nil
}

// Snapshots lists the snapshots that exist, sorted.
func (c *Cloud) Snapshots() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id := range c.snapshots {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// DeleteLaunchTemplate is EC2's DeleteLaunchTemplate, by name.
func (c *Cloud) DeleteLaunchTemplate(name string) (LaunchTemplate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, t := range c.templates {
		if t.Name == name {
			delete(c.templates, id)
			c.dirty = true
			return *t, nil
		}
	}
	return LaunchTemplate{}, apiErr(http.StatusBadRequest, "InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
}

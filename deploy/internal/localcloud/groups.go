package localcloud

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Lifecycle transitions a hook can attach to.
const (
	transitionTerminating = "autoscaling:EC2_INSTANCE_TERMINATING"
	transitionLaunching   = "autoscaling:EC2_INSTANCE_LAUNCHING"
)

// validProcesses are the Auto Scaling processes SuspendProcesses accepts.
var validProcesses = []string{"Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification", "AZRebalance", "HealthCheck", "InstanceRefresh", "ReplaceUnhealthy", "ScheduledActions"}

// GroupTag is an Auto Scaling group tag.
type GroupTag struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	Propagate bool   `json:"propagateAtLaunch"`
}

// Hook is a lifecycle hook.
type Hook struct {
	Name                  string `json:"name"`
	Transition            string `json:"transition"`
	HeartbeatTimeout      int    `json:"heartbeatTimeout"`
	DefaultResult         string `json:"defaultResult"`
	NotificationMetadata  string `json:"notificationMetadata,omitempty"`
	NotificationTargetARN string `json:"notificationTargetArn,omitempty"`
	RoleARN               string `json:"roleArn,omitempty"`
}

// Group is an Auto Scaling group.
type Group struct {
	Name                   string            `json:"name"`
	ARN                    string            `json:"arn"`
	LT                     LTRef             `json:"launchTemplate"`
	Min                    int               `json:"min"`
	Max                    int               `json:"max"`
	Desired                int               `json:"desired"`
	DefaultCooldown        int               `json:"defaultCooldown"`
	HealthCheckType        string            `json:"healthCheckType"`
	HealthCheckGracePeriod int               `json:"healthCheckGracePeriod"`
	Subnets                []string          `json:"subnets"`
	Tags                   []GroupTag        `json:"tags,omitempty"`
	TerminationPolicies    []string          `json:"terminationPolicies,omitempty"`
	NewInstancesProtected  bool              `json:"newInstancesProtected,omitempty"`
	Created                time.Time         `json:"created"`
	Suspended              map[string]string `json:"suspended,omitempty"`
	Hooks                  map[string]*Hook  `json:"hooks,omitempty"`
	Deleting               bool              `json:"deleting,omitempty"`
	CapacityRebalance      bool              `json:"capacityRebalance,omitempty"`
	WarmPool               *WarmPool         `json:"warmPool,omitempty"` // warmpool.go

	nextLaunch   time.Time
	lastActivity time.Time
	// scaleCause opens the cause of the activities that carry out a
	// scaling policy's change of the desired capacity, as AWS's causes
	// name the alarm and policy first.
	scaleCause string
}

// AZs returns the group's availability zones in subnet order.
func (g *Group) AZs() []string {
	var out []string
	for _, id := range g.Subnets {
		if s, ok := subnetByID(id); ok {
			out = append(out, s.AZ)
		}
	}
	sort.Strings(out)
	return out
}

func (g *Group) suspended(process string) bool {
	_, ok := g.Suspended[process]
	return ok
}

const maxActivities = 2000

// GroupInput is CreateAutoScalingGroup / UpdateAutoScalingGroup input.
// Nil pointers mean "not given".
type GroupInput struct {
	Name                   string
	LT                     *LTRef
	Min, Max, Desired      *int
	DefaultCooldown        *int
	HealthCheckType        string
	HealthCheckGracePeriod *int
	VPCZoneIdentifier      string
	AvailabilityZones      []string
	Tags                   []GroupTag
	TerminationPolicies    []string
	NewInstancesProtected  *bool
	CapacityRebalance      *bool
	Hooks                  []Hook
}

func (c *Cloud) groupLocked(name string) (*Group, error) {
	g := c.groups[name]
	if g == nil || g.Deleting {
		return nil, validation("AutoScalingGroup name not found - AutoScalingGroup %s not found", name)
	}
	return g, nil
}

func validateSizes(min, max, desired int) error {
	switch {
	case min < 0:
		return validation("MinSize (%d) must be >= 0", min)
	case min > max:
		return validation("Max bound, %d, must be greater than or equal to min bound, %d", max, min)
	case desired < min || desired > max:
		return validation("Desired capacity:%d must be between the specified min size:%d and max size:%d", desired, min, max)
	}
	return nil
}

func (c *Cloud) subnetsFor(vpcZone string, azs []string) ([]string, error) {
	var out []string
	if vpcZone != "" {
		for _, id := range strings.Split(vpcZone, ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			if _, ok := subnetByID(id); !ok {
				return nil, validation("The subnet ID '%s' does not exist", id)
			}
			out = append(out, id)
		}
		return out, nil
	}
	for _, az := range azs {
		found := false
		for _, s := range defaultSubnets {
			if s.AZ == az {
				out = append(out, s.ID)
				found = true
			}
		}
		if !found {
			return nil, validation("The availability zone %s is not legal", az)
		}
	}
	return out, nil
}

// CreateGroup is CreateAutoScalingGroup.
func (c *Cloud) CreateGroup(in GroupInput) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.Name == "" || len(in.Name) > 255 {
		return validation("AutoScalingGroupName must be 1 to 255 characters")
	}
	if g := c.groups[in.Name]; g != nil {
		return apiErr(http.StatusBadRequest, "AlreadyExists", "AutoScalingGroup by this name already exists - A group with the name %s already exists", in.Name)
	}
	if in.LT == nil {
		return validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter. The local cloud supports LaunchTemplate only.")
	}
	lt, _, err := c.resolveLT(*in.LT)
	if err != nil {
		return err
	}
	if in.Min == nil || in.Max == nil {
		return validation("MinSize and MaxSize are required")
	}
	desired := *in.Min
	if in.Desired != nil {
		desired = *in.Desired
	}
	if err := validateSizes(*in.Min, *in.Max, desired); err != nil {
		return err
	}
	subnets, err := c.subnetsFor(in.VPCZoneIdentifier, in.AvailabilityZones)
	if err != nil {
		return err
	}
	if len(subnets) == 0 {
		return validation("At least one Availability Zone or VPC Subnet is required.")
	}
	g := &Group{
		Name: in.Name, ARN: fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:%s:autoScalingGroupName/%s", c.cfg.Region, c.cfg.AccountID, newUUID(), in.Name),
		LT: LTRef{ID: lt.ID, Name: lt.Name, Version: in.LT.Version}, Min: *in.Min, Max: *in.Max, Desired: desired,
		DefaultCooldown: 300, HealthCheckType: "EC2", Subnets: subnets, Created: c.clock.Now(),
		Suspended: map[string]string{}, Hooks: map[string]*Hook{}, TerminationPolicies: []string{"Default"},
	}
	if g.LT.Version == "" {
		g.LT.Version = "$Default"
	}
	if in.DefaultCooldown != nil {
		g.DefaultCooldown = *in.DefaultCooldown
	}
	if in.HealthCheckType != "" {
		if in.HealthCheckType != "EC2" && in.HealthCheckType != "ELB" {
			return validation("HealthCheckType %q must be EC2 or ELB", in.HealthCheckType)
		}
		g.HealthCheckType = in.HealthCheckType
	}
	if in.HealthCheckGracePeriod != nil {
		g.HealthCheckGracePeriod = *in.HealthCheckGracePeriod
	}
	if len(in.TerminationPolicies) > 0 {
		g.TerminationPolicies = in.TerminationPolicies
	}
	if in.NewInstancesProtected != nil {
		g.NewInstancesProtected = *in.NewInstancesProtected
	}
	g.CapacityRebalance = in.CapacityRebalance != nil && *in.CapacityRebalance
	seen := map[string]bool{}
	for _, t := range in.Tags {
		if t.Key == "" || strings.HasPrefix(t.Key, "aws:") {
			return validation("Tag key %q is invalid: keys must be non-empty and must not start with aws:", t.Key)
		}
		if seen[t.Key] {
			return validation("Duplicate tag key %q", t.Key)
		}
		seen[t.Key] = true
	}
	g.Tags = append(g.Tags, in.Tags...)
	for _, h := range in.Hooks {
		h := h
		if err := validateHook(&h); err != nil {
			return err
		}
		g.Hooks[h.Name] = &h
	}
	c.groups[g.Name] = g
	c.dirty = true
	c.poke()
	return nil
}

// UpdateGroup is UpdateAutoScalingGroup.
func (c *Cloud) UpdateGroup(in GroupInput) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.groupLocked(in.Name)
	if err != nil {
		return err
	}
	min, max, desired := g.Min, g.Max, g.Desired
	if in.Min != nil {
		min = *in.Min
	}
	if in.Max != nil {
		max = *in.Max
	}
	if in.Desired != nil {
		desired = *in.Desired
	} else {
		// As on AWS: a new min above the current desired raises desired,
		// a new max below it lowers desired.
		if desired < min {
			desired = min
		}
		if desired > max {
			desired = max
		}
	}
	if err := validateSizes(min, max, desired); err != nil {
		return err
	}
	var ref *LTRef
	if in.LT != nil {
		lt, _, err := c.resolveLT(*in.LT)
		if err != nil {
			return err
		}
		ref = &LTRef{ID: lt.ID, Name: lt.Name, Version: in.LT.Version}
		if ref.Version == "" {
			ref.Version = "$Default"
		}
	}
	var subnets []string
	if in.VPCZoneIdentifier != "" || len(in.AvailabilityZones) > 0 {
		if subnets, err = c.subnetsFor(in.VPCZoneIdentifier, in.AvailabilityZones); err != nil {
			return err
		}
	}
	if in.HealthCheckType != "" && in.HealthCheckType != "EC2" && in.HealthCheckType != "ELB" {
		return validation("HealthCheckType %q must be EC2 or ELB", in.HealthCheckType)
	}
	g.Min, g.Max, g.Desired = min, max, desired
	if ref != nil {
		g.LT = *ref
	}
	if len(subnets) > 0 {
		g.Subnets = subnets
	}
	if in.DefaultCooldown != nil {
		g.DefaultCooldown = *in.DefaultCooldown
	}
	if in.HealthCheckType != "" {
		g.HealthCheckType = in.HealthCheckType
	}
	if in.HealthCheckGracePeriod != nil {
		g.HealthCheckGracePeriod = *in.HealthCheckGracePeriod
	}
	if len(in.TerminationPolicies) > 0 {
		g.TerminationPolicies = in.TerminationPolicies
	}
	if in.NewInstancesProtected != nil {
		g.NewInstancesProtected = *in.NewInstancesProtected
	}
	if in.CapacityRebalance != nil {
		g.CapacityRebalance = *in.CapacityRebalance
	}
	c.dirty = true
	c.poke()
	return nil
}

func (c *Cloud) groupInstancesLocked(name string) []*Instance {
	var out []*Instance
	for _, in := range c.instances {
		// Warm-pool instances sit beside the group, not in it (warmpool.go).
		if in.Group == name && in.State != stateTerminated && !isWarm(in) {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LaunchTime.Equal(out[j].LaunchTime) {
			return out[i].LaunchTime.Before(out[j].LaunchTime)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// DeleteGroup is DeleteAutoScalingGroup.
func (c *Cloud) DeleteGroup(name string, force bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.groupLocked(name)
	if err != nil {
		return err
	}
	insts := c.groupInstancesLocked(name)
	if len(insts) > 0 && !force {
		return apiErr(http.StatusBadRequest, "ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.")
	}
	g.Deleting = true
	g.Min, g.Max, g.Desired = 0, 0, 0
	for _, in := range insts {
		// ForceDelete abandons outstanding lifecycle actions, as on AWS.
		in.hook = nil
		if !strings.HasPrefix(in.Lifecycle, "Terminating") {
			in.termActivity = c.newActivity(name, "Terminating EC2 instance: "+in.ID,
				fmt.Sprintf("At %s the group was deleted with ForceDelete.", c.clock.Now().UTC().Format(time.RFC3339)))
		}
		in.Lifecycle = "Terminating:Proceed"
	}
	if len(insts) == 0 {
		delete(c.groups, name)
	}
	c.dirty = true
	c.poke()
	return nil
}

// SetDesired is SetDesiredCapacity.
func (c *Cloud) SetDesired(name string, desired int, honorCooldown bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.groupLocked(name)
	if err != nil {
		return err
	}
	switch {
	case desired > g.Max:
		return validation("New SetDesiredCapacity value %d is above max value %d for the AutoScalingGroup.", desired, g.Max)
	case desired < g.Min:
		return validation("New SetDesiredCapacity value %d is below min value %d for the AutoScalingGroup.", desired, g.Min)
	}
	if honorCooldown && !g.lastActivity.IsZero() && c.clock.Now().Before(g.lastActivity.Add(time.Duration(g.DefaultCooldown)*time.Second)) {
		return apiErr(http.StatusBadRequest, "ScalingActivityInProgress", "Scaling activity is in progress or the group is in cooldown until %s",
			g.lastActivity.Add(time.Duration(g.DefaultCooldown)*time.Second).UTC().Format(time.RFC3339))
	}
	g.Desired = desired
	c.dirty = true
	c.poke()
	return nil
}

func (c *Cloud) groupInstanceLocked(id string) (*Instance, *Group, error) {
	in := c.instances[id]
	if in == nil || in.Group == "" || in.State == stateTerminated {
		return nil, nil, validation("Instance Id not found - No managed instance found for instance ID: %s", id)
	}
	return in, c.groups[in.Group], nil
}

// TerminateInGroup is TerminateInstanceInAutoScalingGroup.
func (c *Cloud) TerminateInGroup(id string, decrement bool) (*Activity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, g, err := c.groupInstanceLocked(id)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(in.Lifecycle, "Terminat") {
		if in.termActivity == nil {
			return nil, validation("Instance %s is already terminating", id)
		}
		return in.termActivity, nil
	}
	now := c.clock.Now().UTC().Format(time.RFC3339)
	cause := fmt.Sprintf("At %s instance %s was taken out of service in response to a user request.", now, id)
	if decrement {
		if g.Desired-1 < g.Min {
			return nil, validation("Currently, desiredSize equals minSize (%d). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.", g.Min)
		}
		cause = fmt.Sprintf("At %s instance %s was taken out of service in response to a user request, shrinking the capacity from %d to %d.", now, id, g.Desired, g.Desired-1)
		g.Desired--
	}
	c.beginTerminateLocked(in, g, cause)
	c.dirty = true
	c.poke()
	return in.termActivity, nil
}

// beginTerminateLocked takes an instance out of service: it waits in
// Terminating:Wait when the group has a terminating hook.
func (c *Cloud) beginTerminateLocked(in *Instance, g *Group, cause string) {
	in.termActivity = c.newActivity(g.Name, "Terminating EC2 instance: "+in.ID, cause)
	in.termActivity.Details = fmt.Sprintf(`{"Subnet ID":%q,"Availability Zone":%q}`, in.SubnetID, in.AZ)
	for _, h := range sortedHooks(g) {
		if h.Transition == transitionTerminating {
			in.Lifecycle = "Terminating:Wait"
			in.hook = &pendingAction{hook: h.Name, token: newUUID(), timeout: time.Duration(h.HeartbeatTimeout) * time.Second, result: h.DefaultResult}
			in.hook.deadline = c.clock.Now().Add(in.hook.timeout)
			return
		}
	}
	in.Lifecycle = "Terminating"
}

// SetProtection is SetInstanceProtection.
func (c *Cloud) SetProtection(group string, ids []string, protected bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.groupLocked(group); err != nil {
		return err
	}
	for _, id := range ids {
		in := c.instances[id]
		if in == nil || in.Group != group || in.State == stateTerminated {
			return validation("The instance %s is not part of Auto Scaling group %s.", id, group)
		}
	}
	for _, id := range ids {
		c.instances[id].Protected = protected
	}
	return nil
}

// SuspendResume is SuspendProcesses / ResumeProcesses; no processes means all.
func (c *Cloud) SuspendResume(group string, processes []string, suspend bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.groupLocked(group)
	if err != nil {
		return err
	}
	if len(processes) == 0 {
		processes = validProcesses
	}
	for _, p := range processes {
		found := false
		for _, v := range validProcesses {
			found = found || v == p
		}
		if !found {
			return validation("Process %s is not a valid process type. Valid processes are: %s", p, strings.Join(validProcesses, ", "))
		}
	}
	for _, p := range processes {
		if suspend {
			g.Suspended[p] = fmt.Sprintf("User suspended at %s", c.clock.Now().UTC().Format(time.RFC3339))
		} else {
			delete(g.Suspended, p)
		}
	}
	c.dirty = true
	c.poke()
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// GroupView is a group with its instances, for Describe calls.
type GroupView struct {
	Group
	Instances []Instance
}

// Groups is DescribeAutoScalingGroups; no names means all.
func (c *Cloud) Groups(names []string) []GroupView {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []GroupView
	for _, g := range c.groups {
		if len(names) > 0 && !contains(names, g.Name) {
			continue
		}
		v := GroupView{Group: *g}
		v.Suspended = copyMap(g.Suspended)
		for _, in := range c.groupInstancesLocked(g.Name) {
			v.Instances = append(v.Instances, *in)
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// GroupInstances is DescribeAutoScalingInstances; no ids means all.
func (c *Cloud) GroupInstances(ids []string) []Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Instance
	for _, in := range c.instances {
		if in.Group == "" || in.State == stateTerminated {
			continue
		}
		if len(ids) > 0 && !contains(ids, in.ID) {
			continue
		}
		out = append(out, *in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

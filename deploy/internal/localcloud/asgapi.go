package localcloud

import (
	"net/http"
	"sort"
	"strconv"
)

// XML shapes of the Auto Scaling (awsQuery) responses. Element names are
// the Smithy member names; lists are wrapped in <member>.
type xLT struct {
	LaunchTemplateID   string `xml:"LaunchTemplateId,omitempty"`
	LaunchTemplateName string `xml:"LaunchTemplateName,omitempty"`
	Version            string `xml:"Version,omitempty"`
}

type xGroupInstance struct {
	InstanceID           string `xml:"InstanceId"`
	InstanceType         string `xml:"InstanceType"`
	AvailabilityZone     string `xml:"AvailabilityZone"`
	LifecycleState       string `xml:"LifecycleState"`
	HealthStatus         string `xml:"HealthStatus"`
	LaunchTemplate       *xLT   `xml:"LaunchTemplate,omitempty"`
	ProtectedFromScaleIn bool   `xml:"ProtectedFromScaleIn"`
}

type xTag struct {
	ResourceID        string `xml:"ResourceId"`
	ResourceType      string `xml:"ResourceType"`
	Key               string `xml:"Key"`
	Value             string `xml:"Value"`
	PropagateAtLaunch bool   `xml:"PropagateAtLaunch"`
}

type xSuspended struct {
	ProcessName      string `xml:"ProcessName"`
	SuspensionReason string `xml:"SuspensionReason"`
}

type xGroup struct {
	AutoScalingGroupName             string           `xml:"AutoScalingGroupName"`
	AutoScalingGroupARN              string           `xml:"AutoScalingGroupARN"`
	LaunchTemplate                   xLT              `xml:"LaunchTemplate"`
	MinSize                          int              `xml:"MinSize"`
	MaxSize                          int              `xml:"MaxSize"`
	DesiredCapacity                  int              `xml:"DesiredCapacity"`
	DefaultCooldown                  int              `xml:"DefaultCooldown"`
	AvailabilityZones                []string         `xml:"AvailabilityZones>member"`
	HealthCheckType                  string           `xml:"HealthCheckType"`
	HealthCheckGracePeriod           int              `xml:"HealthCheckGracePeriod"`
	Instances                        []xGroupInstance `xml:"Instances>member"`
	CreatedTime                      awsTime          `xml:"CreatedTime"`
	SuspendedProcesses               []xSuspended     `xml:"SuspendedProcesses>member"`
	VPCZoneIdentifier                string           `xml:"VPCZoneIdentifier"`
	Status                           string           `xml:"Status,omitempty"`
	Tags                             []xTag           `xml:"Tags>member"`
	TerminationPolicies              []string         `xml:"TerminationPolicies>member"`
	NewInstancesProtectedFromScaleIn bool             `xml:"NewInstancesProtectedFromScaleIn"`
	ServiceLinkedRoleARN             string           `xml:"ServiceLinkedRoleARN"`
	CapacityRebalance                bool             `xml:"CapacityRebalance"`
	WarmPoolConfiguration            *xWarmPoolConfig `xml:"WarmPoolConfiguration,omitempty"`
	WarmPoolSize                     *int             `xml:"WarmPoolSize,omitempty"`
}

type xActivity struct {
	ActivityID           string   `xml:"ActivityId"`
	AutoScalingGroupName string   `xml:"AutoScalingGroupName"`
	Description          string   `xml:"Description"`
	Cause                string   `xml:"Cause"`
	StartTime            awsTime  `xml:"StartTime"`
	EndTime              *awsTime `xml:"EndTime,omitempty"`
	StatusCode           string   `xml:"StatusCode"`
	StatusMessage        string   `xml:"StatusMessage,omitempty"`
	Progress             int      `xml:"Progress"`
	Details              string   `xml:"Details"`
}

type xHook struct {
	LifecycleHookName     string `xml:"LifecycleHookName"`
	AutoScalingGroupName  string `xml:"AutoScalingGroupName"`
	LifecycleTransition   string `xml:"LifecycleTransition"`
	NotificationTargetARN string `xml:"NotificationTargetARN,omitempty"`
	RoleARN               string `xml:"RoleARN,omitempty"`
	NotificationMetadata  string `xml:"NotificationMetadata,omitempty"`
	HeartbeatTimeout      int    `xml:"HeartbeatTimeout"`
	GlobalTimeout         int    `xml:"GlobalTimeout"`
	DefaultResult         string `xml:"DefaultResult"`
}

type xInstanceDetails struct {
	InstanceID           string `xml:"InstanceId"`
	InstanceType         string `xml:"InstanceType"`
	AutoScalingGroupName string `xml:"AutoScalingGroupName"`
	AvailabilityZone     string `xml:"AvailabilityZone"`
	LifecycleState       string `xml:"LifecycleState"`
	HealthStatus         string `xml:"HealthStatus"`
	LaunchTemplate       *xLT   `xml:"LaunchTemplate,omitempty"`
	ProtectedFromScaleIn bool   `xml:"ProtectedFromScaleIn"`
}

func toXActivity(a Activity) xActivity {
	x := xActivity{ActivityID: a.ID, AutoScalingGroupName: a.Group, Description: a.Description, Cause: a.Cause,
		StartTime: awsTime(a.Start), StatusCode: a.Status, StatusMessage: a.StatusMessage, Progress: a.Progress, Details: a.Details}
	if !a.End.IsZero() {
		e := awsTime(a.End)
		x.EndTime = &e
	}
	return x
}

func ltOf(r *LTRef) *xLT {
	if r == nil {
		return nil
	}
	return &xLT{r.ID, r.Name, r.Version}
}

func (s *Server) serveAutoScaling(w http.ResponseWriter, r *http.Request, action string, f qform) {
	w, done, ok := s.gate(w, r, "autoscaling", action, f, func(w http.ResponseWriter, e *APIError) { writeQueryError(w, action, e) })
	if !ok {
		return
	}
	defer done()
	result, err := s.autoScaling(action, f)
	if err != nil {
		ae, ok := err.(*APIError)
		if !ok {
			ae = apiErr(http.StatusInternalServerError, "InternalFailure", "%v", err)
		}
		writeQueryError(w, action, ae)
		return
	}
	writeQueryResponse(w, action, result)
}

func (s *Server) autoScaling(action string, f qform) (any, error) {
	c := s.cloud
	group := f.str("AutoScalingGroupName")
	if out, ok, err := s.autoScalingPolicy(action, f); ok {
		return out, err
	}
	if out, ok, err := s.autoScalingWarmPool(action, f); ok {
		return out, err
	}
	switch action {
	case "CreateAutoScalingGroup", "UpdateAutoScalingGroup":
		in, err := groupInput(f)
		if err != nil {
			return nil, err
		}
		if action == "CreateAutoScalingGroup" {
			return nil, c.CreateGroup(in)
		}
		return nil, c.UpdateGroup(in)
	case "DeleteAutoScalingGroup":
		force := f.boolp("ForceDelete")
		if err := c.DeleteGroup(group, force != nil && *force); err != nil {
			return nil, err
		}
		// AWS deletes a group's scaling policies, and the alarms target
		// tracking made for them, with the group.
		c.mu.Lock()
		c.deleteGroupPoliciesLocked(group)
		c.mu.Unlock()
		return nil, nil
	case "DescribeAutoScalingGroups":
		inc := f.boolp("IncludeInstances")
		max, err := f.intp("MaxRecords")
		if err != nil {
			return nil, err
		}
		limit := 50
		if max != nil {
			if *max < 1 || *max > 100 {
				return nil, validation("MaxRecords (%d) must be between 1 and 100", *max)
			}
			limit = *max
		}
		var out struct {
			Groups    []xGroup `xml:"AutoScalingGroups>member"`
			NextToken string   `xml:"NextToken,omitempty"`
		}
		after := f.str("NextToken")
		for _, g := range c.Groups(f.list("AutoScalingGroupNames.member")) {
			// Groups come sorted by name; the token is the last name served.
			if after != "" && g.Name <= after {
				continue
			}
			if len(out.Groups) == limit {
				out.NextToken = out.Groups[len(out.Groups)-1].AutoScalingGroupName
				break
			}
			x := xGroup{
				AutoScalingGroupName: g.Name, AutoScalingGroupARN: g.ARN, LaunchTemplate: xLT{g.LT.ID, g.LT.Name, g.LT.Version},
				MinSize: g.Min, MaxSize: g.Max, DesiredCapacity: g.Desired, DefaultCooldown: g.DefaultCooldown,
				AvailabilityZones: g.AZs(), HealthCheckType: g.HealthCheckType, HealthCheckGracePeriod: g.HealthCheckGracePeriod,
				CreatedTime: awsTime(g.Created), VPCZoneIdentifier: joinComma(g.Subnets), TerminationPolicies: g.TerminationPolicies,
				NewInstancesProtectedFromScaleIn: g.NewInstancesProtected,
				ServiceLinkedRoleARN:             "arn:aws:iam::" + c.cfg.AccountID + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
			}
			if g.Deleting {
				x.Status = "Delete in progress"
			}
			x.CapacityRebalance = g.CapacityRebalance
			if x.WarmPoolConfiguration = toXWarmPool(g.WarmPool); x.WarmPoolConfiguration != nil {
				n := c.WarmPoolSize(g.Name)
				x.WarmPoolSize = &n
			}
			if inc == nil || *inc {
				for _, in := range g.Instances {
					x.Instances = append(x.Instances, xGroupInstance{in.ID, in.InstanceType, in.AZ, in.Lifecycle, in.Health, ltOf(in.LT), in.Protected})
				}
			}
			procs := make([]string, 0, len(g.Suspended))
			for p := range g.Suspended {
				procs = append(procs, p)
			}
			sort.Strings(procs)
			for _, p := range procs {
				x.SuspendedProcesses = append(x.SuspendedProcesses, xSuspended{p, g.Suspended[p]})
			}
			for _, t := range g.Tags {
				x.Tags = append(x.Tags, xTag{g.Name, "auto-scaling-group", t.Key, t.Value, t.Propagate})
			}
			out.Groups = append(out.Groups, x)
		}
		return out, nil
	case "DescribeAutoScalingInstances":
		var out struct {
			Instances []xInstanceDetails `xml:"AutoScalingInstances>member"`
		}
		for _, in := range c.GroupInstances(f.list("InstanceIds.member")) {
			out.Instances = append(out.Instances, xInstanceDetails{in.ID, in.InstanceType, in.Group, in.AZ, in.Lifecycle, in.Health, ltOf(in.LT), in.Protected})
		}
		return out, nil
	case "DescribeScalingActivities":
		max, err := f.intp("MaxRecords")
		if err != nil {
			return nil, err
		}
		n := 0
		if max != nil {
			n = *max
		}
		acts, token, err := c.Activities(group, f.list("ActivityIds.member"), n, f.str("NextToken"))
		if err != nil {
			return nil, err
		}
		var out struct {
			Activities []xActivity `xml:"Activities>member"`
			NextToken  string      `xml:"NextToken,omitempty"`
		}
		out.NextToken = token
		for _, a := range acts {
			out.Activities = append(out.Activities, toXActivity(a))
		}
		return out, nil
	case "SetDesiredCapacity":
		d, err := f.intp("DesiredCapacity")
		if err != nil {
			return nil, err
		}
		if d == nil {
			return nil, validation("DesiredCapacity is required")
		}
		honor := f.boolp("HonorCooldown")
		return nil, c.SetDesired(group, *d, honor != nil && *honor)
	case "TerminateInstanceInAutoScalingGroup":
		dec := f.boolp("ShouldDecrementDesiredCapacity")
		if dec == nil {
			return nil, validation("ShouldDecrementDesiredCapacity is required")
		}
		var out struct {
			Activity xActivity `xml:"Activity"`
		}
		if wa, ok := c.terminateWarm(f.str("InstanceId")); ok {
			out.Activity = toXActivity(wa)
			return out, nil
		}
		a, err := c.TerminateInGroup(f.str("InstanceId"), *dec)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		out.Activity = toXActivity(*a)
		c.mu.Unlock()
		return out, nil
	case "SetInstanceProtection":
		p := f.boolp("ProtectedFromScaleIn")
		if p == nil {
			return nil, validation("ProtectedFromScaleIn is required")
		}
		return struct{}{}, c.SetProtection(group, f.list("InstanceIds.member"), *p)
	case "SuspendProcesses", "ResumeProcesses":
		return nil, c.SuspendResume(group, f.list("ScalingProcesses.member"), action == "SuspendProcesses")
	case "PutLifecycleHook":
		t, err := f.intp("HeartbeatTimeout")
		if err != nil {
			return nil, err
		}
		h := Hook{Name: f.str("LifecycleHookName"), Transition: f.str("LifecycleTransition"), DefaultResult: f.str("DefaultResult"),
			NotificationMetadata: f.str("NotificationMetadata"), NotificationTargetARN: f.str("NotificationTargetARN"), RoleARN: f.str("RoleARN")}
		if t != nil {
			h.HeartbeatTimeout = *t
		}
		return struct{}{}, c.PutHook(group, h)
	case "DescribeLifecycleHooks":
		hooks, err := c.Hooks(group, f.list("LifecycleHookNames.member"))
		if err != nil {
			return nil, err
		}
		var out struct {
			Hooks []xHook `xml:"LifecycleHooks>member"`
		}
		for _, h := range hooks {
			out.Hooks = append(out.Hooks, xHook{h.Name, group, h.Transition, h.NotificationTargetARN, h.RoleARN, h.NotificationMetadata,
				h.HeartbeatTimeout, min(100*h.HeartbeatTimeout, 172800), h.DefaultResult})
		}
		return out, nil
	case "DescribeInstanceRefreshes":
		// The local cloud never runs instance refreshes (StartInstanceRefresh
		// is not implemented), so the truthful answer is an empty list.
		c.mu.Lock()
		_, err := c.groupLocked(group)
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return struct {
			Refreshes []struct{} `xml:"InstanceRefreshes>member"`
		}{}, nil
	case "DeleteLifecycleHook":
		return struct{}{}, c.DeleteHook(group, f.str("LifecycleHookName"))
	case "CompleteLifecycleAction":
		return struct{}{}, c.CompleteAction(group, f.str("LifecycleHookName"), f.str("InstanceId"), f.str("LifecycleActionToken"), f.str("LifecycleActionResult"))
	case "RecordLifecycleActionHeartbeat":
		return struct{}{}, c.RecordHeartbeat(group, f.str("LifecycleHookName"), f.str("InstanceId"), f.str("LifecycleActionToken"))
	}
	return nil, apiErr(http.StatusBadRequest, "InvalidAction", "The action %s is not valid for this web service (the local cloud implements a subset of Auto Scaling).", action)
}

func groupInput(f qform) (GroupInput, error) {
	in := GroupInput{
		Name: f.str("AutoScalingGroupName"), HealthCheckType: f.str("HealthCheckType"),
		VPCZoneIdentifier: f.str("VPCZoneIdentifier"), AvailabilityZones: f.list("AvailabilityZones.member"),
		TerminationPolicies: f.list("TerminationPolicies.member"), NewInstancesProtected: f.boolp("NewInstancesProtectedFromScaleIn"),
		CapacityRebalance: f.boolp("CapacityRebalance"),
	}
	var err error
	for k, p := range map[string]**int{"MinSize": &in.Min, "MaxSize": &in.Max, "DesiredCapacity": &in.Desired, "DefaultCooldown": &in.DefaultCooldown, "HealthCheckGracePeriod": &in.HealthCheckGracePeriod} {
		if *p, err = f.intp(k); err != nil {
			return in, err
		}
	}
	if f.has("LaunchTemplate.LaunchTemplateId") || f.has("LaunchTemplate.LaunchTemplateName") {
		in.LT = &LTRef{ID: f.str("LaunchTemplate.LaunchTemplateId"), Name: f.str("LaunchTemplate.LaunchTemplateName"), Version: f.str("LaunchTemplate.Version")}
	}
	if f.has("LaunchConfigurationName") || f.has("MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateName") {
		return in, validation("The local cloud supports LaunchTemplate only, not LaunchConfigurationName or MixedInstancesPolicy")
	}
	for _, p := range f.structs("Tags.member") {
		t := GroupTag{Key: f.str(p + "Key"), Value: f.str(p + "Value"), Propagate: f.str(p+"PropagateAtLaunch") == "true"}
		if rid := f.str(p + "ResourceId"); rid != "" && rid != in.Name {
			return in, validation("Tag ResourceId %q must be the group name %q", rid, in.Name)
		}
		in.Tags = append(in.Tags, t)
	}
	for _, p := range f.structs("LifecycleHookSpecificationList.member") {
		h := Hook{Name: f.str(p + "LifecycleHookName"), Transition: f.str(p + "LifecycleTransition"), DefaultResult: f.str(p + "DefaultResult"),
			NotificationMetadata: f.str(p + "NotificationMetadata"), NotificationTargetARN: f.str(p + "NotificationTargetARN"), RoleARN: f.str(p + "RoleARN")}
		if v := f.str(p + "HeartbeatTimeout"); v != "" {
			if h.HeartbeatTimeout, err = strconv.Atoi(v); err != nil {
				return in, validation("HeartbeatTimeout (%q) must be an integer", v)
			}
		}
		in.Hooks = append(in.Hooks, h)
	}
	return in, nil
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}

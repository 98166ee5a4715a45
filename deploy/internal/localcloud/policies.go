package localcloud

import (
	"fmt"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/deploy/awsmodel"
	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cwstore"
)

// Policy is a dynamic scaling policy (PutScalingPolicy). What an invocation
// does to the group is awsmodel's, the rules the simulator runs too; this
// file only keeps the policies, their alarms and the API around them.
type Policy struct {
	ARN     string `json:"arn"`
	Name    string `json:"name"`
	Group   string `json:"group"`
	Type    string `json:"type"` // TargetTrackingScaling | StepScaling
	Enabled bool   `json:"enabled"`
	// Warmup is EstimatedInstanceWarmup; nil falls back to the group's
	// default cooldown, as PutScalingPolicy documents.
	Warmup *int `json:"warmup,omitempty"`

	// Target tracking.
	Target         float64           `json:"target,omitempty"`
	Metric         cwstore.MetricID  `json:"metric"`
	Statistic      string            `json:"statistic,omitempty"`
	Unit           string            `json:"unit,omitempty"`
	Period         int               `json:"period,omitempty"`
	Predefined     string            `json:"predefined,omitempty"`
	ResourceLabel  string            `json:"resourceLabel,omitempty"`
	DisableScaleIn bool              `json:"disableScaleIn,omitempty"`
	Alarms         map[string]string `json:"alarms,omitempty"` // kind → alarm name

	// Step scaling.
	AdjustmentType         string          `json:"adjustmentType,omitempty"`
	MetricAggregationType  string          `json:"metricAggregationType,omitempty"`
	MinAdjustmentMagnitude int             `json:"minAdjustmentMagnitude,omitempty"`
	Steps                  []awsmodel.Step `json:"steps,omitempty"`

	lastScale   time.Time
	lastInvoked map[string]time.Time // by alarm name
}

// predefined maps PredefinedMetricType to the metric AWS tracks for it
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PredefinedMetricSpecification.html).
var predefined = map[string]struct{ ns, name, stat string }{
	"ASGAverageCPUUtilization": {"AWS/EC2", "CPUUtilization", "Average"},
	"ASGAverageNetworkIn":      {"AWS/EC2", "NetworkIn", "Average"},
	"ASGAverageNetworkOut":     {"AWS/EC2", "NetworkOut", "Average"},
	"ALBRequestCountPerTarget": {"AWS/ApplicationELB", "RequestCountPerTarget", "Sum"},
}

func (c *Cloud) policyARN(group, name string) string {
	return fmt.Sprintf("arn:aws:autoscaling:%s:%s:scalingPolicy:%s:autoScalingGroupName/%s:policyName/%s", c.cfg.Region, c.cfg.AccountID, newUUID(), group, name)
}

func (c *Cloud) alarmARN(name string) string {
	return "arn:aws:cloudwatch:" + c.cfg.Region + ":" + c.cfg.AccountID + ":alarm:" + name
}

func (c *Cloud) PutPolicy(p *Policy) (*Policy, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.groupLocked(p.Group); err != nil {
		return nil, err
	}
	prev := c.policyLocked(p.Group, p.Name)
	if prev != nil {
		// An update keeps the ARN, as AWS's does, and replaces the alarms.
		p.ARN = prev.ARN
		c.deletePolicyAlarmsLocked(prev)
	} else {
		p.ARN = c.policyARN(p.Group, p.Name)
	}
	p.lastInvoked = map[string]time.Time{}
	if p.Type == "TargetTrackingScaling" {
		now := c.clock.Now()
		p.Alarms = map[string]string{}
		for _, spec := range awsmodel.TargetTrackingAlarms(p.Target, p.Period, p.DisableScaleIn) {
			name := awsmodel.AlarmName(p.Group, spec.Kind, newUUID())
			a := cwstore.Alarm{
				Name: name, ActionsEnabled: true, AlarmActions: []string{p.ARN},
				Description: "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy " + p.ARN + ".",
				Metric:      p.Metric, Statistic: p.Statistic, Unit: p.Unit, Period: spec.Period,
				EvaluationPeriods: spec.EvaluationPeriods, DatapointsToAlarm: spec.DatapointsToAlarm,
				Threshold: spec.Threshold, ComparisonOperator: spec.ComparisonOperator, TreatMissingData: spec.TreatMissingData,
			}
			if err := a.Validate(); err != nil {
				return nil, validation("%v", err)
			}
			na := cwstore.NewAlarm(a, nil, now)
			c.alarms[name] = &na
			p.Alarms[spec.Kind] = name
		}
	}
	c.policies[p.ARN] = p
	c.dirty = true
	return p, nil
}

func (c *Cloud) policyLocked(group, name string) *Policy {
	for _, p := range c.policies {
		if p.Group == group && p.Name == name {
			return p
		}
	}
	return nil
}

// deletePolicyAlarmsLocked deletes the alarms target tracking created for
// the policy and removes the policy from every other alarm's actions,
// leaving those alarms in place: "Deleting a step scaling policy ... deletes
// the underlying alarm action, but it does not delete the CloudWatch alarm"
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/deleting-scaling-policy.html).
func (c *Cloud) deletePolicyAlarmsLocked(p *Policy) {
	for _, name := range p.Alarms {
		delete(c.alarms, name)
	}
	for _, a := range c.alarms {
		kept := a.AlarmActions[:0]
		for _, arn := range a.AlarmActions {
			if arn != p.ARN {
				kept = append(kept, arn)
			}
		}
		a.AlarmActions = kept
	}
}

// DeletePolicy deletes a policy by name (with the group) or ARN, and the
// alarms target tracking created for it.
func (c *Cloud) DeletePolicy(group, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.policies[name]
	if p == nil {
		if group == "" {
			return validation("AutoScalingGroupName is required unless PolicyName is an ARN")
		}
		p = c.policyLocked(group, name)
	}
	if p == nil {
		return validation("The scaling policy %q of group %q was not found", name, group)
	}
	c.deletePolicyAlarmsLocked(p)
	delete(c.policies, p.ARN)
	c.dirty = true
	return nil
}

// deleteGroupPoliciesLocked removes a deleted group's policies and alarms.
func (c *Cloud) deleteGroupPoliciesLocked(group string) {
	for arn, p := range c.policies {
		if p.Group == group {
			c.deletePolicyAlarmsLocked(p)
			delete(c.policies, arn)
		}
	}
}

// Policies is DescribePolicies: sorted by group then name.
func (c *Cloud) Policies(group string, names, types []string) []Policy {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Policy
	for _, p := range c.policies {
		if group != "" && p.Group != group {
			continue
		}
		if len(names) > 0 && !contains(names, p.Name) && !contains(names, p.ARN) {
			continue
		}
		if len(types) > 0 && !contains(types, p.Type) {
			continue
		}
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// capacityLocked is the group as awsmodel sees it: ready instances are in
// service and past the policy's warm-up.
func (c *Cloud) capacityLocked(g *Group, p *Policy, now time.Time) awsmodel.Capacity {
	warmup := time.Duration(g.DefaultCooldown) * time.Second
	if p.Warmup != nil {
		warmup = time.Duration(*p.Warmup) * time.Second
	}
	ready := 0
	for _, in := range c.activeLocked(g.Name) {
		if in.Lifecycle == "InService" && !now.Before(in.inServiceAt.Add(warmup)) {
			ready++
		}
	}
	return awsmodel.Capacity{Desired: g.Desired, Ready: min(ready, g.Desired), Min: g.Min, Max: g.Max}
}

// latestValue is the alarm's newest complete datapoint.
func (c *Cloud) latestValue(a *cwstore.Alarm, now time.Time) (float64, bool) {
	period := time.Duration(a.Period) * time.Second
	end := now.Truncate(period)
	aggs, err := c.metrics.Query(a.Metric, end.Add(-period), end, period, a.Unit, 1)
	if err != nil || len(aggs) == 0 {
		return 0, false
	}
	stat := a.Statistic
	if a.ExtendedStatistic != "" {
		stat = a.ExtendedStatistic
	}
	return aggs[len(aggs)-1].Statistic(stat)
}

// invokePoliciesLocked runs the policy behind every alarm in ALARM whose
// action names one: on the transition, then once in each later minute
// (awsmodel.ActionRepeat) while it stays there. Minutes are counted on the
// clock's minute boundaries, as the simulator's evaluations are, so the
// moment of a re-invocation does not depend on how late in a minute an
// evaluation ran. It reports whether a desired capacity changed.
func (c *Cloud) invokePoliciesLocked(now time.Time) bool {
	changed := false
	for _, a := range c.alarms.Sorted() {
		if a.State != cwstore.StateAlarm || !a.ActionsEnabled {
			continue
		}
		for _, arn := range a.AlarmActions {
			p := c.policies[arn]
			if p == nil || !p.Enabled {
				continue
			}
			last, ok := p.lastInvoked[a.Name]
			repeat := awsmodel.ActionRepeat * time.Second
			if ok && !a.StateTransitioned.After(last) && !now.Truncate(repeat).After(last.Truncate(repeat)) {
				continue
			}
			p.lastInvoked[a.Name] = now
			if c.invokeLocked(p, a, now) {
				changed = true
			}
		}
	}
	return changed
}

func (c *Cloud) invokeLocked(p *Policy, a *cwstore.Alarm, now time.Time) bool {
	g := c.groups[p.Group]
	if g == nil || g.Deleting {
		return false
	}
	v, ok := c.latestValue(a, now)
	if !ok {
		return false
	}
	capy := c.capacityLocked(g, p, now)
	want := g.Desired
	switch p.Type {
	case "TargetTrackingScaling":
		switch a.Name {
		case p.Alarms[awsmodel.KindHigh]:
			want = awsmodel.ScaleOut(capy, v, p.Target)
		case p.Alarms[awsmodel.KindLow]:
			since := int64(-1)
			if !p.lastScale.IsZero() {
				since = int64(now.Sub(p.lastScale) / time.Second)
			}
			want = awsmodel.ScaleIn(capy, v, p.Target, since, awsmodel.DefaultCooldown)
		}
	case "StepScaling":
		adj, ok := awsmodel.StepFor(p.Steps, v-a.Threshold)
		if !ok {
			return false
		}
		want = awsmodel.StepCapacity(capy, p.AdjustmentType, adj, p.MinAdjustmentMagnitude)
	}
	return c.scaleLocked(g, p, fmt.Sprintf("a monitor alarm %s in state ALARM", a.Name), want, now)
}

func (c *Cloud) scaleLocked(g *Group, p *Policy, by string, want int, now time.Time) bool {
	if want == g.Desired {
		return false
	}
	g.scaleCause = fmt.Sprintf("At %s %s triggered policy %s changing the desired capacity from %d to %d.  ",
		now.UTC().Format(time.RFC3339), by, p.Name, g.Desired, want)
	c.log.Info("scaling policy changed desired capacity", "group", g.Name, "policy", p.Name, "from", g.Desired, "to", want)
	g.Desired = want
	p.lastScale = now
	return true
}

// ExecutePolicy runs a step scaling policy by hand with the metric value
// and breach threshold the caller gives, as ExecutePolicy does.
func (c *Cloud) ExecutePolicy(group, name string, value, threshold *float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.policies[name]
	if p == nil {
		p = c.policyLocked(group, name)
	}
	if p == nil {
		return validation("The scaling policy %q of group %q was not found", name, group)
	}
	if p.Type != "StepScaling" {
		return validation("ExecutePolicy is valid only for SimpleScaling and StepScaling policies, not %s", p.Type)
	}
	switch {
	case value == nil:
		return validation("MetricValue is required for a StepScaling policy")
	case threshold == nil:
		return validation("BreachThreshold is required for a StepScaling policy")
	}
	g, err := c.groupLocked(p.Group)
	if err != nil {
		return err
	}
	now := c.clock.Now()
	adj, ok := awsmodel.StepFor(p.Steps, *value-*threshold)
	if !ok {
		return validation("MetricValue (%g) minus BreachThreshold (%g) falls in no step adjustment of policy %s", *value, *threshold, p.Name)
	}
	if c.scaleLocked(g, p, "a user request", awsmodel.StepCapacity(c.capacityLocked(g, p, now), p.AdjustmentType, adj, p.MinAdjustmentMagnitude), now) {
		c.dirty = true
		c.poke()
	}
	return nil
}

// XML shapes of DescribePolicies.
type xAlarmRef struct {
	AlarmName string `xml:"AlarmName"`
	AlarmARN  string `xml:"AlarmARN"`
}

type xDim struct {
	Name  string `xml:"Name"`
	Value string `xml:"Value"`
}

type xCustomMetric struct {
	MetricName string `xml:"MetricName"`
	Namespace  string `xml:"Namespace"`
	Dimensions []xDim `xml:"Dimensions>member"`
	Statistic  string `xml:"Statistic"`
	Unit       string `xml:"Unit,omitempty"`
	Period     int    `xml:"Period,omitempty"`
}

type xPredefined struct {
	PredefinedMetricType string `xml:"PredefinedMetricType"`
	ResourceLabel        string `xml:"ResourceLabel,omitempty"`
}

type xTargetTracking struct {
	Predefined     *xPredefined   `xml:"PredefinedMetricSpecification,omitempty"`
	Custom         *xCustomMetric `xml:"CustomizedMetricSpecification,omitempty"`
	TargetValue    float64        `xml:"TargetValue"`
	DisableScaleIn bool           `xml:"DisableScaleIn"`
}

type xStep struct {
	Lower      *float64 `xml:"MetricIntervalLowerBound,omitempty"`
	Upper      *float64 `xml:"MetricIntervalUpperBound,omitempty"`
	Adjustment int      `xml:"ScalingAdjustment"`
}

type xPolicy struct {
	AutoScalingGroupName    string           `xml:"AutoScalingGroupName"`
	PolicyName              string           `xml:"PolicyName"`
	PolicyARN               string           `xml:"PolicyARN"`
	PolicyType              string           `xml:"PolicyType"`
	AdjustmentType          string           `xml:"AdjustmentType,omitempty"`
	MinAdjustmentMagnitude  int              `xml:"MinAdjustmentMagnitude,omitempty"`
	StepAdjustments         []xStep          `xml:"StepAdjustments>member"`
	MetricAggregationType   string           `xml:"MetricAggregationType,omitempty"`
	EstimatedInstanceWarmup *int             `xml:"EstimatedInstanceWarmup,omitempty"`
	Alarms                  []xAlarmRef      `xml:"Alarms>member"`
	TargetTracking          *xTargetTracking `xml:"TargetTrackingConfiguration,omitempty"`
	Enabled                 bool             `xml:"Enabled"`
}

func (c *Cloud) toXPolicy(p Policy) xPolicy {
	x := xPolicy{AutoScalingGroupName: p.Group, PolicyName: p.Name, PolicyARN: p.ARN, PolicyType: p.Type,
		AdjustmentType: p.AdjustmentType, MinAdjustmentMagnitude: p.MinAdjustmentMagnitude,
		MetricAggregationType: p.MetricAggregationType, EstimatedInstanceWarmup: p.Warmup, Enabled: p.Enabled}
	for _, s := range p.Steps {
		x.StepAdjustments = append(x.StepAdjustments, xStep{s.Lower, s.Upper, s.Adjustment})
	}
	for _, kind := range []string{awsmodel.KindHigh, awsmodel.KindLow} {
		if n, ok := p.Alarms[kind]; ok {
			x.Alarms = append(x.Alarms, xAlarmRef{n, c.alarmARN(n)})
		}
	}
	// Alarms whose actions name the policy are its alarms too (a step
	// policy has no others).
	c.mu.Lock()
	for _, a := range c.alarms.Sorted() {
		if contains(a.AlarmActions, p.ARN) && a.Name != p.Alarms[awsmodel.KindHigh] && a.Name != p.Alarms[awsmodel.KindLow] {
			x.Alarms = append(x.Alarms, xAlarmRef{a.Name, c.alarmARN(a.Name)})
		}
	}
	c.mu.Unlock()
	if p.Type == "TargetTrackingScaling" {
		t := &xTargetTracking{TargetValue: p.Target, DisableScaleIn: p.DisableScaleIn}
		if p.Predefined != "" {
			t.Predefined = &xPredefined{p.Predefined, p.ResourceLabel}
		} else {
			cm := &xCustomMetric{MetricName: p.Metric.MetricName, Namespace: p.Metric.Namespace, Statistic: p.Statistic, Unit: p.Unit, Period: p.Period}
			for _, d := range p.Metric.Dimensions {
				cm.Dimensions = append(cm.Dimensions, xDim{d.Name, d.Value})
			}
			t.Custom = cm
		}
		x.TargetTracking = t
	}
	return x
}

// autoScalingPolicy serves the policy actions of the Auto Scaling API.
func (s *Server) autoScalingPolicy(action string, f qform) (any, bool, error) {
	c := s.cloud
	switch action {
	case "PutScalingPolicy":
		in, err := policyInput(f)
		if err != nil {
			return nil, true, err
		}
		p, err := c.PutPolicy(in)
		if err != nil {
			return nil, true, err
		}
		x := c.toXPolicy(*p)
		return struct {
			PolicyARN string      `xml:"PolicyARN"`
			Alarms    []xAlarmRef `xml:"Alarms>member"`
		}{p.ARN, x.Alarms}, true, nil
	case "DescribePolicies":
		var out struct {
			Policies []xPolicy `xml:"ScalingPolicies>member"`
		}
		group := f.str("AutoScalingGroupName")
		if group != "" {
			c.mu.Lock()
			_, err := c.groupLocked(group)
			c.mu.Unlock()
			if err != nil {
				return nil, true, err
			}
		}
		for _, p := range c.Policies(group, f.list("PolicyNames.member"), f.list("PolicyTypes.member")) {
			out.Policies = append(out.Policies, c.toXPolicy(p))
		}
		return out, true, nil
	case "DeletePolicy":
		if f.str("PolicyName") == "" {
			return nil, true, validation("PolicyName is required")
		}
		return struct{}{}, true, c.DeletePolicy(f.str("AutoScalingGroupName"), f.str("PolicyName"))
	case "ExecutePolicy":
		if f.str("PolicyName") == "" {
			return nil, true, validation("PolicyName is required")
		}
		v, err := floatp(f, "MetricValue")
		if err != nil {
			return nil, true, err
		}
		th, err := floatp(f, "BreachThreshold")
		if err != nil {
			return nil, true, err
		}
		return struct{}{}, true, c.ExecutePolicy(f.str("AutoScalingGroupName"), f.str("PolicyName"), v, th)
	}
	return nil, false, nil
}

package localcloud

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cwstore"
)

func ttInput(group, name string, period *int32) *autoscaling.PutScalingPolicyInput {
	return &autoscaling.PutScalingPolicyInput{
		AutoScalingGroupName: aws.String(group), PolicyName: aws.String(name), PolicyType: aws.String("TargetTrackingScaling"),
		EstimatedInstanceWarmup: aws.Int32(0),
		TargetTrackingConfiguration: &astypes.TargetTrackingConfiguration{
			TargetValue: aws.Float64(50),
			CustomizedMetricSpecification: &astypes.CustomizedMetricSpecification{
				MetricName: aws.String("Busy"), Namespace: aws.String("Test"), Statistic: astypes.MetricStatisticAverage, Period: period,
				Dimensions: []astypes.MetricDimension{{Name: aws.String("AutoScalingGroupName"), Value: aws.String(group)}},
			},
		},
	}
}

func TestPutScalingPolicyValidation(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 3, 0, nil)
	step := func(mut func(*autoscaling.PutScalingPolicyInput)) *autoscaling.PutScalingPolicyInput {
		in := &autoscaling.PutScalingPolicyInput{AutoScalingGroupName: aws.String("g"), PolicyName: aws.String("s"), PolicyType: aws.String("StepScaling"),
			AdjustmentType: aws.String("ChangeInCapacity"), StepAdjustments: []astypes.StepAdjustment{{MetricIntervalLowerBound: aws.Float64(0), ScalingAdjustment: aws.Int32(1)}}}
		mut(in)
		return in
	}
	tt := func(mut func(*autoscaling.PutScalingPolicyInput)) *autoscaling.PutScalingPolicyInput {
		in := ttInput("g", "t", nil)
		mut(in)
		return in
	}
	tests := []struct {
		name  string
		in    *autoscaling.PutScalingPolicyInput
		field string
	}{
		{"period 20", ttInput("g", "t", aws.Int32(20)), "CustomizedMetricSpecification.Period"},
		{"period 120", ttInput("g", "t", aws.Int32(120)), "CustomizedMetricSpecification.Period"},
		{"zero target", tt(func(in *autoscaling.PutScalingPolicyInput) {
			in.TargetTrackingConfiguration.TargetValue = aws.Float64(0)
		}), "TargetValue"},
		{"no metric", tt(func(in *autoscaling.PutScalingPolicyInput) {
			in.TargetTrackingConfiguration.CustomizedMetricSpecification = nil
		}), "CustomizedMetricSpecification"},
		{"bad statistic", tt(func(in *autoscaling.PutScalingPolicyInput) {
			in.TargetTrackingConfiguration.CustomizedMetricSpecification.Statistic = "p99"
		}), "Statistic"},
		{"bad predefined", tt(func(in *autoscaling.PutScalingPolicyInput) {
			in.TargetTrackingConfiguration.CustomizedMetricSpecification = nil
			in.TargetTrackingConfiguration.PredefinedMetricSpecification = &astypes.PredefinedMetricSpecification{PredefinedMetricType: "Nope"}
		}), "PredefinedMetricType"},
		{"step fields on target tracking", tt(func(in *autoscaling.PutScalingPolicyInput) { in.AdjustmentType = aws.String("ChangeInCapacity") }), "AdjustmentType"},
		{"negative warmup", tt(func(in *autoscaling.PutScalingPolicyInput) { in.EstimatedInstanceWarmup = aws.Int32(-1) }), "EstimatedInstanceWarmup"},
		{"bad policy type", step(func(in *autoscaling.PutScalingPolicyInput) { in.PolicyType = aws.String("Wild") }), "PolicyType"},
		{"no adjustment type", step(func(in *autoscaling.PutScalingPolicyInput) { in.AdjustmentType = nil }), "AdjustmentType"},
		{"bad adjustment type", step(func(in *autoscaling.PutScalingPolicyInput) { in.AdjustmentType = aws.String("Double") }), "AdjustmentType"},
		{"no steps", step(func(in *autoscaling.PutScalingPolicyInput) { in.StepAdjustments = nil }), "StepAdjustments"},
		{"step gap", step(func(in *autoscaling.PutScalingPolicyInput) {
			in.StepAdjustments = []astypes.StepAdjustment{
				{MetricIntervalLowerBound: aws.Float64(0), MetricIntervalUpperBound: aws.Float64(10), ScalingAdjustment: aws.Int32(1)},
				{MetricIntervalLowerBound: aws.Float64(20), ScalingAdjustment: aws.Int32(2)}}
		}), "StepAdjustments"},
		{"magnitude without percent", step(func(in *autoscaling.PutScalingPolicyInput) { in.MinAdjustmentMagnitude = aws.Int32(2) }), "MinAdjustmentMagnitude"},
		{"bad aggregation", step(func(in *autoscaling.PutScalingPolicyInput) { in.MetricAggregationType = aws.String("Sum") }), "MetricAggregationType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tc.asg.PutScalingPolicy(ctxT(t), tt.in)
			wantCode(t, err, "ValidationError")
			var ae smithy.APIError
			if errors.As(err, &ae); !strings.Contains(ae.ErrorMessage(), tt.field) {
				t.Errorf("message %q does not name %s", ae.ErrorMessage(), tt.field)
			}
		})
	}
	_, err := tc.asg.PutScalingPolicy(ctxT(t), ttInput("nope", "t", nil))
	wantCode(t, err, "ValidationError")
	if out, err := tc.asg.DescribePolicies(ctxT(t), &autoscaling.DescribePoliciesInput{AutoScalingGroupName: aws.String("g")}); err != nil || len(out.ScalingPolicies) != 0 {
		t.Fatalf("after only bad input: %v, %d policies", err, len(out.ScalingPolicies))
	}
}

func TestTargetTrackingPolicyOwnsItsAlarms(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 3, 0, nil)
	put, err := tc.asg.PutScalingPolicy(ctxT(t), ttInput("g", "t", aws.Int32(10)))
	if err != nil {
		t.Fatal(err)
	}
	if len(put.Alarms) != 2 || !strings.HasPrefix(aws.ToString(put.PolicyARN), "arn:aws:autoscaling:us-east-1:") {
		t.Fatalf("put: arn %q, %d alarms", aws.ToString(put.PolicyARN), len(put.Alarms))
	}
	al, err := tc.cw.DescribeAlarms(ctxT(t), &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("TargetTracking-g-")})
	if err != nil {
		t.Fatal(err)
	}
	if len(al.MetricAlarms) != 2 {
		t.Fatalf("%d alarms, want 2", len(al.MetricAlarms))
	}
	byKind := map[string]cwtypes.MetricAlarm{}
	for _, a := range al.MetricAlarms {
		for _, k := range []string{"AlarmHigh", "AlarmLow"} {
			if strings.HasPrefix(aws.ToString(a.AlarmName), "TargetTracking-g-"+k+"-") {
				byKind[k] = a
			}
		}
		if len(a.AlarmActions) != 1 || a.AlarmActions[0] != aws.ToString(put.PolicyARN) {
			t.Errorf("%s actions %v, want the policy", aws.ToString(a.AlarmName), a.AlarmActions)
		}
	}
	hi, lo := byKind["AlarmHigh"], byKind["AlarmLow"]
	if aws.ToFloat64(hi.Threshold) != 50 || hi.ComparisonOperator != cwtypes.ComparisonOperatorGreaterThanThreshold ||
		aws.ToInt32(hi.EvaluationPeriods) != 3 || aws.ToInt32(hi.DatapointsToAlarm) != 3 || aws.ToInt32(hi.Period) != 10 || aws.ToString(hi.TreatMissingData) != "notBreaching" {
		t.Errorf("AlarmHigh: %+v", hi)
	}
	if aws.ToFloat64(lo.Threshold) != 45 || lo.ComparisonOperator != cwtypes.ComparisonOperatorLessThanThreshold ||
		aws.ToInt32(lo.EvaluationPeriods) != 15 || aws.ToInt32(lo.Period) != 10 {
		t.Errorf("AlarmLow: %+v", lo)
	}
	pol, err := tc.asg.DescribePolicies(ctxT(t), &autoscaling.DescribePoliciesInput{AutoScalingGroupName: aws.String("g")})
	if err != nil || len(pol.ScalingPolicies) != 1 {
		t.Fatalf("DescribePolicies: %v, %+v", err, pol)
	}
	p := pol.ScalingPolicies[0]
	if aws.ToString(p.PolicyType) != "TargetTrackingScaling" || len(p.Alarms) != 2 || p.TargetTrackingConfiguration == nil ||
		aws.ToInt32(p.TargetTrackingConfiguration.CustomizedMetricSpecification.Period) != 10 || aws.ToFloat64(p.TargetTrackingConfiguration.TargetValue) != 50 {
		t.Errorf("policy: %+v", p)
	}
	// Updating the policy keeps its ARN and replaces its alarms.
	again, err := tc.asg.PutScalingPolicy(ctxT(t), ttInput("g", "t", nil))
	if err != nil || aws.ToString(again.PolicyARN) != aws.ToString(put.PolicyARN) {
		t.Fatalf("update: %v, arn %q", err, aws.ToString(again.PolicyARN))
	}
	if al, _ := tc.cw.DescribeAlarms(ctxT(t), &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("TargetTracking-g-")}); len(al.MetricAlarms) != 2 || aws.ToInt32(al.MetricAlarms[0].Period) != 60 {
		t.Fatalf("after update: %+v", al.MetricAlarms)
	}
	if _, err := tc.asg.DeletePolicy(ctxT(t), &autoscaling.DeletePolicyInput{AutoScalingGroupName: aws.String("g"), PolicyName: aws.String("t")}); err != nil {
		t.Fatal(err)
	}
	if al, _ := tc.cw.DescribeAlarms(ctxT(t), &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("TargetTracking-")}); len(al.MetricAlarms) != 0 {
		t.Fatalf("alarms left after DeletePolicy: %d", len(al.MetricAlarms))
	}
	_, err = tc.asg.DeletePolicy(ctxT(t), &autoscaling.DeletePolicyInput{AutoScalingGroupName: aws.String("g"), PolicyName: aws.String("t")})
	wantCode(t, err, "ValidationError")
}

func TestStepScalingPolicy(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 1, 10, 1, nil)
	tc.waitInService(t, "g", 1)
	put, err := tc.asg.PutScalingPolicy(ctxT(t), &autoscaling.PutScalingPolicyInput{
		AutoScalingGroupName: aws.String("g"), PolicyName: aws.String("out"), PolicyType: aws.String("StepScaling"),
		AdjustmentType: aws.String("ChangeInCapacity"), EstimatedInstanceWarmup: aws.Int32(0),
		StepAdjustments: []astypes.StepAdjustment{
			{MetricIntervalLowerBound: aws.Float64(0), MetricIntervalUpperBound: aws.Float64(20), ScalingAdjustment: aws.Int32(1)},
			{MetricIntervalLowerBound: aws.Float64(20), ScalingAdjustment: aws.Int32(3)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// ExecutePolicy picks the step from MetricValue − BreachThreshold.
	if _, err := tc.asg.ExecutePolicy(ctxT(t), &autoscaling.ExecutePolicyInput{AutoScalingGroupName: aws.String("g"), PolicyName: aws.String("out"),
		MetricValue: aws.Float64(65), BreachThreshold: aws.Float64(60)}); err != nil {
		t.Fatal(err)
	}
	if d := aws.ToInt32(tc.describeGroup(t, "g").DesiredCapacity); d != 2 {
		t.Fatalf("after ExecutePolicy: desired %d, want 2", d)
	}
	_, err = tc.asg.ExecutePolicy(ctxT(t), &autoscaling.ExecutePolicyInput{AutoScalingGroupName: aws.String("g"), PolicyName: aws.String("out"), MetricValue: aws.Float64(65)})
	wantCode(t, err, "ValidationError")
	tc.waitInService(t, "g", 2)

	// An alarm whose action is the policy invokes it with its datapoint.
	if _, err := tc.cw.PutMetricAlarm(ctxT(t), &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("hot"), Namespace: aws.String("Test"), MetricName: aws.String("Busy"),
		Statistic: cwtypes.StatisticAverage, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(60),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold, AlarmActions: []string{aws.ToString(put.PolicyARN)}}); err != nil {
		t.Fatal(err)
	}
	now := tc.now(t)
	if _, err := tc.cw.PutMetricData(ctxT(t), &cloudwatch.PutMetricDataInput{Namespace: aws.String("Test"),
		MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("Busy"), Value: aws.Float64(95), Timestamp: aws.Time(now)}}}); err != nil {
		t.Fatal(err)
	}
	// To 1 s after the datapoint's minute ends, whatever real time passed.
	tc.hook(t, http.MethodPost, "/_localcloud/clock?set="+url.QueryEscape(now.Truncate(time.Minute).Add(61*time.Second).Format(time.RFC3339Nano)))
	if d := aws.ToInt32(tc.describeGroup(t, "g").DesiredCapacity); d != 5 {
		t.Fatalf("after the alarm: desired %d, want 2+3", d)
	}
	acts, err := tc.asg.DescribeScalingActivities(ctxT(t), &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("g")})
	if err != nil {
		t.Fatal(err)
	}
	tc.eventually(t, 10*time.Second, func() error {
		acts, err = tc.asg.DescribeScalingActivities(ctxT(t), &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("g")})
		if err != nil {
			return err
		}
		for _, a := range acts.Activities {
			if strings.Contains(aws.ToString(a.Cause), "a monitor alarm hot in state ALARM triggered policy out changing the desired capacity from 2 to 5") {
				return nil
			}
		}
		return fmt.Errorf("no activity names the alarm and policy")
	})
	pol, err := tc.asg.DescribePolicies(ctxT(t), &autoscaling.DescribePoliciesInput{AutoScalingGroupName: aws.String("g"), PolicyTypes: []string{"StepScaling"}})
	if err != nil || len(pol.ScalingPolicies) != 1 || len(pol.ScalingPolicies[0].Alarms) != 1 || len(pol.ScalingPolicies[0].StepAdjustments) != 2 {
		t.Fatalf("DescribePolicies: %v %+v", err, pol)
	}
	// Deleting a step policy keeps its alarm and drops the action.
	if _, err := tc.asg.DeletePolicy(ctxT(t), &autoscaling.DeletePolicyInput{PolicyName: put.PolicyARN}); err != nil {
		t.Fatal(err)
	}
	al, err := tc.cw.DescribeAlarms(ctxT(t), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"hot"}})
	if err != nil || len(al.MetricAlarms) != 1 || len(al.MetricAlarms[0].AlarmActions) != 0 {
		t.Fatalf("alarm after DeletePolicy: %v %+v", err, al.MetricAlarms)
	}
}

func TestPoliciesSurviveStateFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	c, _, _ := newStateCloud(t, func(cfg *Config) { cfg.StateFile = file })
	mustGroup(t, c, "g", 0, 2, 0)
	in, err := policyInput(qform{"AutoScalingGroupName": {"g"}, "PolicyName": {"t"}, "PolicyType": {"TargetTrackingScaling"},
		"TargetTrackingConfiguration.TargetValue":                                        {"40"},
		"TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType": {"ASGAverageCPUUtilization"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.PutPolicy(in)
	if err != nil {
		t.Fatal(err)
	}
	c.Reconcile() // saves

	c2, _, _ := newStateCloud(t, func(cfg *Config) { cfg.StateFile = file })
	ps := c2.Policies("g", nil, nil)
	if len(ps) != 1 || ps[0].ARN != p.ARN || ps[0].Target != 40 || ps[0].Metric.MetricName != "CPUUtilization" || len(ps[0].Alarms) != 2 {
		t.Fatalf("policies after reload: %+v", ps)
	}
	for _, name := range ps[0].Alarms {
		if c2.alarms[name] == nil || c2.alarms[name].AlarmActions[0] != p.ARN {
			t.Fatalf("alarm %s after reload: %+v", name, c2.alarms[name])
		}
	}
}

// TestTargetTrackingCountsWarmingCapacity runs the local cloud's target
// tracking on a fake clock: a repeated AlarmHigh while new instances warm
// up adds only the difference, and AlarmLow removes nothing until every
// instance is warm.
func TestTargetTrackingCountsWarmingCapacity(t *testing.T) {
	c, clk, _ := newStateCloud(t, func(cfg *Config) { cfg.BootDelay = 0 })
	mustGroup(t, c, "g", 1, 10, 2)
	c.Reconcile() // launch
	c.Reconcile() // boot
	in, err := policyInput(qform{"AutoScalingGroupName": {"g"}, "PolicyName": {"t"}, "PolicyType": {"TargetTrackingScaling"},
		"EstimatedInstanceWarmup": {"1200"}, "TargetTrackingConfiguration.TargetValue": {"50"},
		"TargetTrackingConfiguration.CustomizedMetricSpecification.MetricName": {"Busy"},
		"TargetTrackingConfiguration.CustomizedMetricSpecification.Namespace":  {"T"},
		"TargetTrackingConfiguration.CustomizedMetricSpecification.Statistic":  {"Average"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutPolicy(in); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(1200 * time.Second) // the first two are warm
	minute := func(v float64) {
		t.Helper()
		if err := c.metrics.Put(clk.t, []cwstore.Datum{{Metric: cwstore.MetricID{Namespace: "T", MetricName: "Busy"}, Timestamp: clk.t, Values: []float64{v}}}); err != nil {
			t.Fatal(err)
		}
		clk.t = clk.t.Add(time.Minute)
		c.EvaluateAlarms()
		c.Reconcile() // launch or terminate
		c.Reconcile() // boot
	}
	desired := func() int { return c.Groups([]string{"g"})[0].Desired }
	for range 3 {
		minute(100)
	}
	if d := desired(); d != 4 {
		t.Fatalf("after AlarmHigh: desired %d, want ceil(2 × 100/50) = 4", d)
	}
	minute(100) // AlarmHigh invokes again a minute later; 2 instances warm up
	if d := desired(); d != 4 {
		t.Fatalf("repeated AlarmHigh during warm-up: desired %d, want 4 (warming capacity counts)", d)
	}
	minute(150)
	if d := desired(); d != 6 {
		t.Fatalf("AlarmHigh at 150 during warm-up: desired %d, want ceil(2 ready × 150/50) = 6", d)
	}
	// AlarmLow fires after 15 low minutes, but the last two instances
	// joined 15 minutes ago and warm up for 20: scale-in waits until then.
	for range 15 {
		minute(10)
	}
	if d := desired(); d != 6 {
		t.Fatalf("AlarmLow while instances warm up: desired %d, want 6", d)
	}
	for range 4 {
		minute(10)
	}
	if d := desired(); d != 6 {
		t.Fatalf("a minute before the last warm-up ends: desired %d, want 6", d)
	}
	minute(10)
	if d := desired(); d != 2 {
		t.Fatalf("once all are warm: desired %d, want ceil(6 × 10/50) = 2", d)
	}
}

//go:build multiprocess

package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/shoal-dev/shoal/deploy/testkit"
)

// TestLocalcloudTargetTracking drives the local cloud's own target tracking
// through its clock hook, with aws-sdk-go-v2 as the only client: the policy
// creates the two alarms AWS creates, scales out after AlarmHigh's 3
// datapoints (not before) and in after AlarmLow's 15 (not before), and
// says so in the scaling activities; once on 1-minute and once on
// high-resolution 10-second datapoints.
func TestLocalcloudTargetTracking(t *testing.T) {
	for _, tc := range []struct {
		period int32
		// lowTicks is the datapoint after which the group scales in.
		// 60 s: AlarmHigh's scale-out was 15 minutes ago, past the 300 s
		// cooldown, so AlarmLow acts on its 15th datapoint. 10 s: AlarmLow
		// goes to ALARM 150 s after the scale-out, inside the cooldown, and
		// invokes the policy again in each later minute (210 s, 270 s,
		// 330 s after it): the first past 300 s is the 33rd datapoint.
		lowTicks int
	}{{60, 15}, {10, 33}} {
		t.Run(fmt.Sprintf("period=%ds", tc.period), func(t *testing.T) { targetTracking(t, tc.period, tc.lowTicks) })
	}
}

func targetTracking(t *testing.T, period int32, lowTicks int) {
	start := time.Now()
	lc := startLocalcloud(t)
	// Should an assertion fail before the local cloud stops them, the
	// instances alive at the end must not outlive the test (only those: a
	// terminated instance's process group id may belong to someone else by
	// then).
	t.Cleanup(func() {
		for _, in := range lc.instances(t) {
			if in.PID > 0 && in.State == "running" {
				_ = syscall.Kill(-in.PID, syscall.SIGKILL)
			}
		}
	})
	t.Setenv("AWS_ENDPOINT_URL", lc.url)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDE2E")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	asg, cw, ec := autoscaling.NewFromConfig(cfg), cloudwatch.NewFromConfig(cfg), ec2.NewFromConfig(cfg)

	const group = "tt-web"
	if _, err := ec.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(group),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-localbase"), UserData: aws.String(base64.StdEncoding.EncodeToString([]byte("exec sleep 600")))}}); err != nil {
		t.Fatal(err)
	}
	sn, err := ec.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(group),
		MinSize: aws.Int32(1), MaxSize: aws.Int32(4), DesiredCapacity: aws.Int32(1), VPCZoneIdentifier: sn.Subnets[0].SubnetId,
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(group)}}); err != nil {
		t.Fatal(err)
	}
	inService := func(n int) {
		t.Helper()
		testkit.Eventually(t, 15*time.Second, func() error {
			out, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
			if err != nil {
				return err
			}
			k := 0
			for _, in := range out.AutoScalingGroups[0].Instances {
				if in.LifecycleState == astypes.LifecycleStateInService {
					k++
				}
			}
			if k != n || len(out.AutoScalingGroups[0].Instances) != n {
				return fmt.Errorf("%d instances, %d in service; want %d", len(out.AutoScalingGroups[0].Instances), k, n)
			}
			return nil
		})
	}
	inService(1)

	dims := []astypes.MetricDimension{{Name: aws.String("AutoScalingGroupName"), Value: aws.String(group)}}
	put, err := asg.PutScalingPolicy(ctx, &autoscaling.PutScalingPolicyInput{
		AutoScalingGroupName: aws.String(group), PolicyName: aws.String("busy-50"), PolicyType: aws.String("TargetTrackingScaling"),
		EstimatedInstanceWarmup: aws.Int32(60),
		TargetTrackingConfiguration: &astypes.TargetTrackingConfiguration{TargetValue: aws.Float64(50),
			CustomizedMetricSpecification: &astypes.CustomizedMetricSpecification{MetricName: aws.String("Busy"), Namespace: aws.String("E2E"),
				Statistic: astypes.MetricStatisticAverage, Dimensions: dims, Period: aws.Int32(period)}},
	})
	if err != nil {
		t.Fatal(err)
	}

	// The alarms AWS creates for the policy.
	al, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("TargetTracking-" + group + "-")})
	if err != nil {
		t.Fatal(err)
	}
	uuid := `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	want := map[string]struct {
		threshold float64
		op        cwtypes.ComparisonOperator
		periods   int32
	}{
		"AlarmHigh": {50, cwtypes.ComparisonOperatorGreaterThanThreshold, 3},
		"AlarmLow":  {45, cwtypes.ComparisonOperatorLessThanThreshold, 15},
	}
	names := map[string]string{}
	for _, a := range al.MetricAlarms {
		name := aws.ToString(a.AlarmName)
		m := regexp.MustCompile(`^TargetTracking-` + group + `-(AlarmHigh|AlarmLow)-` + uuid + `$`).FindStringSubmatch(name)
		if m == nil {
			t.Fatalf("alarm name %q is not TargetTracking-%s-AlarmHigh|AlarmLow-<uuid>", name, group)
		}
		w := want[m[1]]
		names[m[1]] = name
		if aws.ToFloat64(a.Threshold) != w.threshold || a.ComparisonOperator != w.op || aws.ToInt32(a.EvaluationPeriods) != w.periods ||
			aws.ToInt32(a.DatapointsToAlarm) != w.periods || aws.ToInt32(a.Period) != period || aws.ToString(a.TreatMissingData) != "notBreaching" ||
			a.Statistic != cwtypes.StatisticAverage || aws.ToString(a.MetricName) != "Busy" || len(a.AlarmActions) != 1 || a.AlarmActions[0] != aws.ToString(put.PolicyARN) {
			t.Errorf("%s: threshold %v %s, %d/%d datapoints of %ds, missing %q, actions %v",
				name, aws.ToFloat64(a.Threshold), a.ComparisonOperator, aws.ToInt32(a.DatapointsToAlarm), aws.ToInt32(a.EvaluationPeriods),
				aws.ToInt32(a.Period), aws.ToString(a.TreatMissingData), a.AlarmActions)
		}
	}
	if len(names) != 2 {
		t.Fatalf("alarms %v, want AlarmHigh and AlarmLow", names)
	}

	// One datapoint a period on the local cloud's clock, then the period
	// passes (the hook evaluates the alarms as that period's end would).
	resolution := int32(60)
	if period < 60 {
		resolution = 1
	}
	// The cloud's clock is real time plus an offset, so the test sets it to
	// exact instants: each datapoint 1 s into its period, each evaluation
	// 1 s after the period ends. Milliseconds of real time between calls
	// then never move a datapoint into the next period.
	// The first set also lets the first instance finish its 60 s warm-up:
	// until then its metrics do not count, and a scale-out would have
	// nothing to be proportional to.
	tick := time.Duration(period) * time.Second
	at := lc.now(t).Add(time.Minute).Truncate(time.Minute).Add(time.Minute + time.Second)
	lc.hookPost(t, "/_localcloud/clock?set="+url.QueryEscape(at.Format(time.RFC3339Nano)))
	minute := func(v float64) {
		t.Helper()
		if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("E2E"), MetricData: []cwtypes.MetricDatum{{
			MetricName: aws.String("Busy"), Value: aws.Float64(v), Timestamp: aws.Time(at), StorageResolution: aws.Int32(resolution),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("AutoScalingGroupName"), Value: aws.String(group)}}}}}); err != nil {
			t.Fatal(err)
		}
		at = at.Add(tick)
		lc.hookPost(t, "/_localcloud/clock?set="+url.QueryEscape(at.Format(time.RFC3339Nano)))
	}
	desired := func() int32 {
		t.Helper()
		out, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToInt32(out.AutoScalingGroups[0].DesiredCapacity)
	}
	alarmState := func(name string) cwtypes.StateValue {
		t.Helper()
		out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
		if err != nil || len(out.MetricAlarms) != 1 {
			t.Fatalf("DescribeAlarms %s: %v", name, err)
		}
		return out.MetricAlarms[0].StateValue
	}
	activity := func(alarm string, from, to int) {
		t.Helper()
		wantCause := fmt.Sprintf("a monitor alarm %s in state ALARM triggered policy busy-50 changing the desired capacity from %d to %d.", alarm, from, to)
		testkit.Eventually(t, 15*time.Second, func() error {
			out, err := asg.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(group)})
			if err != nil {
				return err
			}
			for _, a := range out.Activities {
				if strings.Contains(aws.ToString(a.Cause), wantCause) {
					return nil
				}
			}
			return fmt.Errorf("no scaling activity with cause %q", wantCause)
		})
	}

	// Twice the target: 2 datapoints are not enough, the 3rd is.
	minute(100)
	minute(100)
	if d := desired(); d != 1 {
		t.Fatalf("desired %d after 2 high datapoints, want 1 (AlarmHigh needs 3)", d)
	}
	minute(100)
	if s := alarmState(names["AlarmHigh"]); s != cwtypes.StateValueAlarm {
		t.Fatalf("AlarmHigh %s after 3 high datapoints, want ALARM", s)
	}
	if d := desired(); d != 2 {
		t.Fatalf("desired %d after AlarmHigh, want ceil(1 × 100/50) = 2", d)
	}
	activity(names["AlarmHigh"], 1, 2)
	inService(2)

	// A fifth of the target: AlarmLow needs 15 datapoints below 45, and
	// the policy scales in on the lowTicks-th.
	for range 14 {
		minute(10)
	}
	if s := alarmState(names["AlarmLow"]); s == cwtypes.StateValueAlarm {
		t.Fatalf("AlarmLow %s after 14 low datapoints, want not ALARM (it needs 15)", s)
	}
	for i := 15; i < lowTicks; i++ {
		minute(10)
		if d := desired(); d != 2 {
			t.Fatalf("desired %d after %d low datapoints, want 2 until the %dth", d, i, lowTicks)
		}
	}
	minute(10)
	if s := alarmState(names["AlarmLow"]); s != cwtypes.StateValueAlarm {
		t.Fatalf("AlarmLow %s after %d low datapoints, want ALARM", s, lowTicks)
	}
	if d := desired(); d != 1 {
		t.Fatalf("desired %d after %d low datapoints, want ceil(2 × 10/50) = 1", d, lowTicks)
	}
	activity(names["AlarmLow"], 2, 1)
	inService(1)

	// Deleting the policy deletes the alarms it owns.
	if _, err := asg.DeletePolicy(ctx, &autoscaling.DeletePolicyInput{AutoScalingGroupName: aws.String(group), PolicyName: aws.String("busy-50")}); err != nil {
		t.Fatal(err)
	}
	if al, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("TargetTracking-")}); err != nil || len(al.MetricAlarms) != 0 {
		t.Fatalf("after DeletePolicy: %v, %d alarms left", err, len(al.MetricAlarms))
	}
	t.Logf("target tracking round trip in %s", time.Since(start).Round(time.Millisecond))
}

func (lc *localcloud) now(t *testing.T) time.Time {
	t.Helper()
	return (&cliCloud{url: lc.url}).now(t)
}

func (lc *localcloud) hookPost(t *testing.T, path string) {
	t.Helper()
	(&cliCloud{url: lc.url}).hook(t, http.MethodPost, path)
}

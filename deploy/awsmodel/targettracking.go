package awsmodel

import (
	"fmt"
	"math"
)

// Target tracking constants.
const (
	// DefaultPeriod is the metric period, in seconds, when the policy names
	// none. TargetTrackingMetricStat "Period": "The default value is 60.
	// Accepted values are 10, 30, and 60."
	// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_TargetTrackingMetricStat.html
	DefaultPeriod = 60

	// HighDatapoints is AlarmHigh's EvaluationPeriods (and DatapointsToAlarm):
	// 3 consecutive datapoints above the target. assumed: AWS's guides and
	// API reference do not state it (the pages above and
	// as-scaling-target-tracking.html were searched); 3 datapoints within 3
	// minutes is what the alarms target tracking creates are reported to
	// show in the console and DescribeAlarms, and what the simulator used
	// before this package. Also assumed for high-resolution periods: AWS
	// does not say whether a 10 s or 30 s policy keeps 3 datapoints; we keep
	// the count and shorten the period, which is how its guide's "respond
	// more quickly"
	// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/policy-creating-high-resolution-metrics.html)
	// reads without stating it.
	HighDatapoints = 3

	// LowDatapoints is AlarmLow's EvaluationPeriods: 15 consecutive
	// datapoints below the low threshold. assumed, as HighDatapoints: 15
	// datapoints within 15 minutes is the reported console value, not a
	// documented one; the same high-resolution assumption applies.
	LowDatapoints = 15

	// LowThresholdFraction places AlarmLow's threshold below the target.
	// AWS documents that the policy scales in only once the metric falls
	// below a threshold under the target value, usually more than 10 %
	// lower
	// (https://docs.aws.amazon.com/autoscaling/application/userguide/target-tracking-scaling-policy-overview.html).
	// The exact 0.9 is assumed: it is the reported console value, not a
	// documented one.
	LowThresholdFraction = 0.9

	// DefaultCooldown is the group's default cooldown in seconds, which
	// also stands in for the instance warm-up when neither the policy nor
	// the group sets one: "If default instance warmup is null, then
	// EstimatedInstanceWarmup falls back to the value of default cooldown"
	// (PutScalingPolicy, EstimatedInstanceWarmup), and the default cooldown
	// is 300 s
	// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-scaling-cooldowns.html).
	DefaultCooldown = 300

	// MissingData is how both target tracking alarms treat a period with no
	// datapoint: it is not breaching, so a gap breaks a run. assumed: AWS
	// does not document the setting; a run of "consecutive datapoints" that
	// a gap does not break would scale on stale data.
	MissingData = "notBreaching"
)

// ValidPeriod reports whether p is a metric period target tracking accepts:
// 10, 30 or 60 (API_TargetTrackingMetricStat.html, "Accepted values are 10,
// 30, and 60"; "Metric periods greater than 60 aren't supported",
// policy-creating-high-resolution-metrics.html).
func ValidPeriod(p int) bool { return p == 10 || p == 30 || p == 60 }

// Alarm is the definition of one alarm that a target tracking policy owns.
type Alarm struct {
	// Kind is "AlarmHigh" or "AlarmLow", the part of the name that says
	// which one this is.
	Kind               string
	Threshold          float64
	ComparisonOperator string
	EvaluationPeriods  int
	DatapointsToAlarm  int
	Period             int
	TreatMissingData   string
}

// Breaches reports whether one datapoint breaches the alarm's threshold.
func (a Alarm) Breaches(v float64) bool {
	switch a.ComparisonOperator {
	case "GreaterThanThreshold":
		return v > a.Threshold
	case "LessThanThreshold":
		return v < a.Threshold
	}
	return false
}

// Alarm kinds, as they appear in the alarm names.
const (
	KindHigh = "AlarmHigh"
	KindLow  = "AlarmLow"
)

// TargetTrackingAlarms returns the alarms a target tracking policy creates
// for a target on a metric of the given period. A policy with scale-in
// disabled creates no AlarmLow, since nothing would act on it
// (assumed: AWS documents DisableScaleIn as "doesn't remove instances", not
// which alarms remain).
func TargetTrackingAlarms(target float64, period int, disableScaleIn bool) []Alarm {
	out := []Alarm{{
		Kind: KindHigh, Threshold: target, ComparisonOperator: "GreaterThanThreshold",
		EvaluationPeriods: HighDatapoints, DatapointsToAlarm: HighDatapoints, Period: period, TreatMissingData: MissingData,
	}}
	if !disableScaleIn {
		out = append(out, Alarm{
			Kind: KindLow, Threshold: LowThresholdFraction * target, ComparisonOperator: "LessThanThreshold",
			EvaluationPeriods: LowDatapoints, DatapointsToAlarm: LowDatapoints, Period: period, TreatMissingData: MissingData,
		})
	}
	return out
}

// AlarmName is the name AWS gives a target tracking alarm:
// TargetTracking-<group>-AlarmHigh-<uuid> (as DescribeAlarms lists them;
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-target-tracking.html
// warns not to edit or delete these "TargetTracking-" alarms).
func AlarmName(group, kind, id string) string {
	return fmt.Sprintf("TargetTracking-%s-%s-%s", group, kind, id)
}

// Capacity is the group as a scaling decision sees it.
type Capacity struct {
	// Desired is the group's desired capacity.
	Desired int
	// Ready counts instances in service and past their warm-up: the ones
	// whose metrics the aggregate includes.
	Ready int
	// Min and Max bound the result.
	Min, Max int
}

// Warming is the capacity that is pending or inside its warm-up.
func (c Capacity) Warming() int { return max(c.Desired-c.Ready, 0) }

func (c Capacity) clamp(n int) int { return min(max(n, c.Min), c.Max) }

// ScaleOut is the new desired capacity when AlarmHigh invokes the policy on
// metric value v. It is proportional, ceil(ready × v / target), and counts
// warming instances toward the current capacity without using their
// metrics, so a repeated alarm adds only the difference
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-default-instance-warmup.html
// says, in substance: a warming instance's metrics are left out of the
// aggregate, and it counts toward the group's capacity so the policy does
// not launch more than needed).
func ScaleOut(c Capacity, v, target float64) int {
	// The epsilon keeps an exact ratio (e.g. 2 × 60/60) from rounding up on
	// floating-point noise.
	return c.clamp(max(c.Desired, int(math.Ceil(float64(c.Ready)*v/target-1e-9))))
}

// ScaleIn is the new desired capacity when AlarmLow invokes the policy on
// metric value v. It is conservative: nothing is removed while any
// instance is still warming up, nor within cooldown seconds of this
// policy's last scaling activity (sinceLast < 0 means there was none);
// the result is proportional but never above the current capacity
// (warm-up: ec2-auto-scaling-default-instance-warmup.html, which holds
// scale-in back until the warming instances finish; cooldown:
// ec2-auto-scaling-scaling-cooldowns.html).
func ScaleIn(c Capacity, v, target float64, sinceLast, cooldown int64) int {
	if c.Warming() > 0 || (sinceLast >= 0 && sinceLast < cooldown) {
		return c.clamp(c.Desired)
	}
	return c.clamp(min(c.Desired, int(math.Ceil(float64(c.Desired)*v/target-1e-9))))
}

// ActionRepeat is how often, in seconds, an alarm that stays in ALARM
// invokes its Auto Scaling action again. CloudWatch performs actions only on
// a state change, except Auto Scaling actions
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-actions.html),
// which it invokes once each minute while the alarm remains in the new
// state, whatever the alarm's period
// (https://repost.aws/knowledge-center/autoscaling-policy-cloudwatch-alarm).
const ActionRepeat = 60

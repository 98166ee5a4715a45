package simulate

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/deploy/awsmodel"
)

// awsTargetTracking models an EC2 Auto Scaling target tracking policy as
// AWS documents it. The rules (the two alarms, proportional scale-out that
// counts warming capacity, conservative scale-in) and their sources live in
// deploy/awsmodel, which the local cloud runs too; this type only stands in
// for CloudWatch.
//
// With the default 60 s period (PolicyAWS) it is the legacy cadence: one
// datapoint a minute. With a high-resolution metric (PolicyAWSHires) the
// period is 10, 30 or 60 s, rule by rule:
//
//   - The policy's metric period is 10, 30 or 60 s ("Accepted values are 10,
//     30, and 60", API_TargetTrackingMetricStat.html; the high-resolution
//     guide, policy-creating-high-resolution-metrics.html, "Create a target
//     tracking policy using high-resolution metrics for faster response",
//     2024). awsmodel.ValidPeriod.
//   - A datapoint is the average over its period of the instances that
//     report (the group aggregate leaves warming instances out,
//     ec2-auto-scaling-default-instance-warmup.html); a period without one
//     is missing and breaks a run of breaching datapoints
//     (awsmodel.MissingData).
//   - Each alarm keeps its datapoint counts at a shorter period (3 for
//     AlarmHigh, 15 for AlarmLow): awsmodel.HighDatapoints and
//     LowDatapoints, assumed there, since AWS does not publish the
//     high-resolution alarms' counts.
//   - The alarm is evaluated at the end of every period. On the transition
//     to ALARM it invokes the policy at once; while it stays in ALARM it
//     invokes it again once per clock minute, whatever the period
//     (awsmodel.ActionRepeat: alarm-actions.html, and
//     knowledge-center/autoscaling-policy-cloudwatch-alarm). The local
//     cloud's invokePoliciesLocked applies the same rule.
//   - What an invocation does is awsmodel.ScaleOut and ScaleIn: proportional
//     scale-out counting warming capacity, scale-in only with no instance
//     warming and outside the 300 s default cooldown.
//
// At a 60 s period the two invocation rules coincide (every evaluation is a
// new minute), so PolicyAWS scores exactly as it did before periods.
type awsTargetTracking struct {
	name   string
	target float64
	period int64

	// The current period's accumulator and the closed datapoints (NaN for
	// a period with no data), newest last.
	sum        float64
	n          int
	datapoints []float64
	lastScale  int64
	scaled     bool
	high, low  awsmodel.Alarm
	// Alarm state (in ALARM) and the second each alarm last invoked the
	// policy, for the once-a-minute repeat.
	inAlarm     [2]bool
	lastInvoked [2]int64
}

// NewAWSTargetTracking returns the AWS target tracking model for a target
// value in the metric's units, on the legacy 60 s period. The group's
// instance warm-up is the fleet model's: Observation.Reporting already
// leaves warming instances out.
func NewAWSTargetTracking(target float64) Autoscaler {
	return newAWS(PolicyAWS, target, awsmodel.DefaultPeriod)
}

// NewAWSTargetTrackingHires returns the model on a high-resolution metric
// of the given period in seconds: 10, 30 or 60.
func NewAWSTargetTrackingHires(target float64, period int) (Autoscaler, error) {
	if !awsmodel.ValidPeriod(period) {
		return nil, fmt.Errorf("%w: compare: %s: period must be 10, 30 or 60 s, as the TargetTrackingMetricStat API accepts (got %d)", ErrBadConfig, PolicyAWSHires, period)
	}
	name := PolicyAWSHires
	if period != DefaultHiresPeriod {
		name = fmt.Sprintf("%s:%d", PolicyAWSHires, period)
	}
	return newAWS(name, target, period), nil
}

// DefaultHiresPeriod is the period `aws-target-tracking-hires` uses
// without a suffix: the shortest AWS accepts.
const DefaultHiresPeriod = 10

func newAWS(name string, target float64, period int) *awsTargetTracking {
	alarms := awsmodel.TargetTrackingAlarms(target, period, false)
	return &awsTargetTracking{name: name, target: target, period: int64(period), high: alarms[0], low: alarms[1]}
}

// parseHires reads "aws-target-tracking-hires" or
// "aws-target-tracking-hires:P"; ok is false for any other name.
func parseHires(name string) (period int, ok bool, err error) {
	rest, found := strings.CutPrefix(name, PolicyAWSHires)
	switch {
	case !found:
		return 0, false, nil
	case rest == "":
		return DefaultHiresPeriod, true, nil
	case !strings.HasPrefix(rest, ":"):
		return 0, false, nil
	}
	p, perr := strconv.Atoi(rest[1:])
	if perr != nil || !awsmodel.ValidPeriod(p) {
		return 0, true, fmt.Errorf("%w: compare: %q: the period after %s: must be 10, 30 or 60 s, as the TargetTrackingMetricStat API accepts", ErrBadConfig, name, PolicyAWSHires)
	}
	return p, true, nil
}

func (a *awsTargetTracking) Name() string { return a.name }

func (a *awsTargetTracking) Step(obs *Observation) (int32, error) {
	want := obs.Desired
	if obs.Now > 0 && obs.Now%a.period == 0 {
		want = a.evaluate(obs)
	}
	// The aggregate metric leaves out instances inside the warm-up. A
	// datapoint covers [t−period, t) and is evaluated at t.
	if obs.Reporting > 0 {
		a.sum += obs.Value
		a.n++
	}
	return want, nil
}

// evaluate closes the period's datapoint, updates both alarms and invokes
// the policy for an alarm that just entered ALARM or stays there into a new
// minute; what an invocation does is awsmodel's, shared with the local
// cloud.
func (a *awsTargetTracking) evaluate(obs *Observation) int32 {
	dp := math.NaN()
	if a.n > 0 {
		dp = a.sum / float64(a.n)
	}
	a.sum, a.n = 0, 0
	a.datapoints = append(a.datapoints, dp)
	if len(a.datapoints) > a.low.EvaluationPeriods {
		a.datapoints = a.datapoints[len(a.datapoints)-a.low.EvaluationPeriods:]
	}

	warming := 0 // pending or inside warm-up
	for _, m := range obs.Serving {
		if !m.Reporting {
			warming++
		}
	}
	warming += int(obs.Desired) - len(obs.Serving)
	c := awsmodel.Capacity{Desired: int(obs.Desired), Ready: int(obs.Desired) - warming, Min: int(obs.Min), Max: int(obs.Max)}

	want := c.Desired
	high := a.invoke(0, a.breaching(a.high), obs.Now)
	low := a.invoke(1, a.breaching(a.low), obs.Now)
	switch {
	case high:
		want = awsmodel.ScaleOut(c, dp, a.target)
	case low:
		since := int64(-1)
		if a.scaled {
			since = obs.Now - a.lastScale
		}
		want = awsmodel.ScaleIn(c, dp, a.target, since, awsmodel.DefaultCooldown)
	}
	want = min(max(want, c.Min), c.Max)
	if want != c.Desired {
		a.lastScale, a.scaled = obs.Now, true
	}
	return int32(want)
}

// invoke records alarm i's state and reports whether it invokes the policy
// now: on entering ALARM, then once in each later clock minute.
func (a *awsTargetTracking) invoke(i int, breaching bool, now int64) bool {
	was := a.inAlarm[i]
	a.inAlarm[i] = breaching
	if !breaching {
		return false
	}
	if was && now/awsmodel.ActionRepeat == a.lastInvoked[i]/awsmodel.ActionRepeat {
		return false
	}
	a.lastInvoked[i] = now
	return true
}

// breaching reports whether the alarm's last EvaluationPeriods datapoints
// all exist and breach it (missing data is not breaching).
func (a *awsTargetTracking) breaching(al awsmodel.Alarm) bool {
	k := al.EvaluationPeriods
	if len(a.datapoints) < k {
		return false
	}
	for _, v := range a.datapoints[len(a.datapoints)-k:] {
		if math.IsNaN(v) || !al.Breaches(v) {
			return false
		}
	}
	return true
}

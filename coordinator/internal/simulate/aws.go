package simulate

import (
	"math"

	"github.com/shoal-dev/shoal/deploy/awsmodel"
)

// awsTargetTracking models an EC2 Auto Scaling target tracking policy as
// AWS documents it (legacy cadence, before the 2024 "highly responsive"
// option). The rules (the two alarms, proportional scale-out that counts
// warming capacity, conservative scale-in) and their sources live in
// deploy/awsmodel, which the local cloud runs too; this type only stands in
// for CloudWatch: it closes one datapoint a minute and re-invokes the policy
// for every period an alarm stays in ALARM
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html,
// "alarm actions").
//
// A minute with no reporting instance yields no datapoint, which breaks a
// run of consecutive breaching datapoints (awsmodel.MissingData).
type awsTargetTracking struct {
	target float64

	// The current minute's accumulator and the closed datapoints (NaN for
	// a minute with no data), newest last.
	sum        float64
	n          int
	datapoints []float64
	lastScale  int64
	scaled     bool
	high, low  awsmodel.Alarm
}

// NewAWSTargetTracking returns the AWS target tracking model for a target
// value in the metric's units. The group's instance warm-up is the fleet
// model's: Observation.Reporting already leaves warming instances out.
func NewAWSTargetTracking(target float64) Autoscaler {
	alarms := awsmodel.TargetTrackingAlarms(target, awsmodel.DefaultPeriod, false)
	return &awsTargetTracking{target: target, high: alarms[0], low: alarms[1]}
}

func (a *awsTargetTracking) Name() string { return PolicyAWS }

func (a *awsTargetTracking) Step(obs *Observation) (int32, error) {
	want := obs.Desired
	if obs.Now > 0 && obs.Now%awsmodel.DefaultPeriod == 0 {
		want = a.evaluate(obs)
	}
	// The aggregate metric leaves out instances inside the warm-up. A
	// datapoint covers [t−60 s, t) and is evaluated at t.
	if obs.Reporting > 0 {
		a.sum += obs.Value
		a.n++
	}
	return want, nil
}

// evaluate closes the minute's datapoint and runs both alarms; what an
// alarm in ALARM does to the capacity is awsmodel's, shared with the local
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
	switch {
	case a.breaching(a.high):
		want = awsmodel.ScaleOut(c, dp, a.target)
	case a.breaching(a.low):
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

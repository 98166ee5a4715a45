package simulate

import "math"

// awsTargetTracking models an EC2 Auto Scaling target tracking policy as
// AWS documents it (legacy cadence, before the 2024 "highly responsive"
// option):
//
//   - The policy creates two CloudWatch alarms on a 1-minute metric
//     (https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-target-tracking.html,
//     which recommends 1-minute "detailed monitoring" metrics):
//     AlarmHigh, 3 consecutive datapoints above the target, and AlarmLow,
//     15 consecutive datapoints below a lower threshold of about 90 % of the
//     target (the console shows both alarms with these settings).
//   - An alarm whose action is a scaling policy re-invokes it for every
//     period it stays in ALARM
//     (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html,
//     "alarm actions").
//   - The new capacity is proportional: ceil(capacity × metric / target).
//     Scale-out counts instances still warming up as capacity but leaves
//     their metrics out, so a repeated alarm adds only the difference
//     (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-default-instance-warmup.html).
//   - Scale-in is conservative: it waits for the 300 s default cooldown
//     after the last scaling activity
//     (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-scaling-cooldowns.html;
//     Application Auto Scaling documents ScaleInCooldown's default as 300 s)
//     and does not remove capacity while instances are still warming up.
//
// A minute with no reporting instance yields no datapoint, which breaks a
// run of consecutive breaching datapoints (missing data treated as "not
// breaching", the target tracking alarms' setting).
type awsTargetTracking struct {
	target   float64
	cooldown int64

	// The current minute's accumulator and the closed datapoints (NaN for
	// a minute with no data), newest last.
	sum        float64
	n          int
	datapoints []float64
	lastScale  int64
	scaled     bool
}

// Documented AWS constants.
const (
	awsPeriod         = 60  // seconds per datapoint
	awsHighDatapoints = 3   // AlarmHigh evaluation periods
	awsLowDatapoints  = 15  // AlarmLow evaluation periods
	awsLowThreshold   = 0.9 // AlarmLow threshold as a fraction of the target
	awsCooldown       = 300 // seconds, default cooldown
)

// NewAWSTargetTracking returns the AWS target tracking model for a target
// value in the metric's units. The group's instance warm-up is the fleet
// model's: Observation.Reporting already leaves warming instances out.
func NewAWSTargetTracking(target float64) Autoscaler {
	return &awsTargetTracking{target: target, cooldown: awsCooldown}
}

func (a *awsTargetTracking) Name() string { return PolicyAWS }

func (a *awsTargetTracking) Step(obs *Observation) (int32, error) {
	want := obs.Desired
	if obs.Now > 0 && obs.Now%awsPeriod == 0 {
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

// evaluate closes the minute's datapoint and runs both alarms.
func (a *awsTargetTracking) evaluate(obs *Observation) int32 {
	dp := math.NaN()
	if a.n > 0 {
		dp = a.sum / float64(a.n)
	}
	a.sum, a.n = 0, 0
	a.datapoints = append(a.datapoints, dp)
	if len(a.datapoints) > awsLowDatapoints {
		a.datapoints = a.datapoints[len(a.datapoints)-awsLowDatapoints:]
	}

	warming := 0 // pending or inside warm-up
	for _, m := range obs.Serving {
		if !m.Reporting {
			warming++
		}
	}
	warming += int(obs.Desired) - len(obs.Serving)
	ready := int(obs.Desired) - warming

	want := obs.Desired
	switch {
	case a.breaching(awsHighDatapoints, func(v float64) bool { return v > a.target }):
		// Warming capacity counts toward the new capacity.
		want = max(obs.Desired, int32(math.Ceil(float64(ready)*dp/a.target-1e-9)))
	case a.breaching(awsLowDatapoints, func(v float64) bool { return v < awsLowThreshold*a.target }):
		if warming > 0 || (a.scaled && obs.Now-a.lastScale < a.cooldown) {
			break
		}
		want = min(obs.Desired, int32(math.Ceil(float64(obs.Desired)*dp/a.target-1e-9)))
	}
	want = min(max(want, obs.Min), obs.Max)
	if want != obs.Desired {
		a.lastScale, a.scaled = obs.Now, true
	}
	return want
}

// breaching reports whether the last k datapoints all exist and satisfy f.
func (a *awsTargetTracking) breaching(k int, f func(float64) bool) bool {
	if len(a.datapoints) < k {
		return false
	}
	for _, v := range a.datapoints[len(a.datapoints)-k:] {
		if math.IsNaN(v) || !f(v) {
			return false
		}
	}
	return true
}

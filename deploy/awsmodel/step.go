package awsmodel

import (
	"errors"
	"fmt"
	"math"
)

// Adjustment types (PutScalingPolicy AdjustmentType: "The valid values are
// ChangeInCapacity, ExactCapacity, and PercentChangeInCapacity",
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutScalingPolicy.html).
const (
	ChangeInCapacity        = "ChangeInCapacity"
	ExactCapacity           = "ExactCapacity"
	PercentChangeInCapacity = "PercentChangeInCapacity"
)

// ValidAdjustmentType reports whether t is one of the three adjustment types.
func ValidAdjustmentType(t string) bool {
	return t == ChangeInCapacity || t == ExactCapacity || t == PercentChangeInCapacity
}

// Step is one step adjustment. Bounds are relative to the alarm's threshold
// (metric − threshold); a nil bound is infinite. The lower bound is
// inclusive and the upper exclusive for a breach above the threshold, and
// the other way round below it
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_StepAdjustment.html).
type Step struct {
	Lower, Upper *float64
	Adjustment   int
}

// ErrSteps is wrapped by every step validation error.
var ErrSteps = errors.New("invalid step adjustments")

// ValidateSteps checks the rules API_StepAdjustment.html states: at least
// one step, no step with both bounds null, ranges that neither overlap nor
// leave gaps, and at most one null lower and one null upper bound. field
// names the request member for the error text.
func ValidateSteps(field string, steps []Step) error {
	if len(steps) == 0 {
		return fmt.Errorf("%w: %s: at least one step adjustment is required for StepScaling", ErrSteps, field)
	}
	nullLower, nullUpper := 0, 0
	for i, s := range steps {
		switch {
		case s.Lower == nil && s.Upper == nil:
			return fmt.Errorf("%w: %s.member.%d: MetricIntervalLowerBound and MetricIntervalUpperBound cannot both be null", ErrSteps, field, i+1)
		case s.Lower != nil && s.Upper != nil && *s.Upper <= *s.Lower:
			return fmt.Errorf("%w: %s.member.%d: MetricIntervalUpperBound (%g) must be greater than MetricIntervalLowerBound (%g)", ErrSteps, field, i+1, *s.Upper, *s.Lower)
		}
		if s.Lower == nil {
			nullLower++
		}
		if s.Upper == nil {
			nullUpper++
		}
	}
	if nullLower > 1 || nullUpper > 1 {
		return fmt.Errorf("%w: %s: at most one step may have a null lower bound and one a null upper bound", ErrSteps, field)
	}
	for i, s := range steps {
		if s.Lower != nil && *s.Lower < 0 && nullLower == 0 {
			return fmt.Errorf("%w: %s.member.%d: a negative MetricIntervalLowerBound needs a step with a null lower bound", ErrSteps, field, i+1)
		}
		if s.Upper != nil && *s.Upper > 0 && nullUpper == 0 {
			return fmt.Errorf("%w: %s.member.%d: a positive MetricIntervalUpperBound needs a step with a null upper bound", ErrSteps, field, i+1)
		}
	}
	sorted := sortedSteps(steps)
	for i := 1; i < len(sorted); i++ {
		prev, cur := sorted[i-1], sorted[i]
		if prev.Upper == nil || cur.Lower == nil || *prev.Upper != *cur.Lower {
			return fmt.Errorf("%w: %s: step intervals must be contiguous without overlaps or gaps", ErrSteps, field)
		}
	}
	return nil
}

func lowerOf(s Step) float64 {
	if s.Lower == nil {
		return math.Inf(-1)
	}
	return *s.Lower
}

func sortedSteps(steps []Step) []Step {
	out := append([]Step(nil), steps...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && lowerOf(out[j]) < lowerOf(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// StepFor returns the adjustment of the step that holds the breach
// delta = metric − threshold, and false when no step holds it.
func StepFor(steps []Step, delta float64) (int, bool) {
	for _, s := range steps {
		lo, hi := math.Inf(-1), math.Inf(1)
		if s.Lower != nil {
			lo = *s.Lower
		}
		if s.Upper != nil {
			hi = *s.Upper
		}
		// Above the threshold the interval is [lo, hi); below it (lo, hi].
		in := delta >= lo && delta < hi
		if delta < 0 || (delta == 0 && hi <= 0) {
			in = delta > lo && delta <= hi
		}
		if in {
			return s.Adjustment, true
		}
	}
	return 0, false
}

// Apply turns an adjustment into a new desired capacity from the current
// one, bounded by min and max. For PercentChangeInCapacity AWS rounds a
// change above 1 down and one below -1 up (toward zero), turns a change
// between 0 and 1 into 1 and one between -1 and 0 into -1, and
// MinAdjustmentMagnitude is the smallest change it makes
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-simple-step.html#as-scaling-adjustment).
func Apply(c Capacity, adjType string, adj, minMagnitude int) int {
	switch adjType {
	case ExactCapacity:
		return c.clamp(adj)
	case PercentChangeInCapacity:
		d := float64(c.Desired) * float64(adj) / 100
		var n int
		switch {
		case d > 1:
			n = int(math.Floor(d))
		case d > 0:
			n = 1
		case d < -1:
			n = int(math.Ceil(d))
		case d < 0:
			n = -1
		}
		if n != 0 && minMagnitude > 0 && abs(n) < minMagnitude {
			n = minMagnitude * sign(n)
		}
		return c.clamp(c.Desired + n)
	}
	return c.clamp(c.Desired + adj)
}

// StepCapacity is the desired capacity a step scaling policy asks for when
// its alarm fires. Instances still warming up count toward the current
// capacity, so a repeated alarm during warm-up does not add the same step
// again: AWS compares the new step's result with the capacity that the
// warming instances already bring and adds only what is missing
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-simple-step.html,
// instance warm-up; Application Auto Scaling's StepScalingPolicyConfiguration
// Cooldown gives the worked example: a step of +2 in progress and a new
// step of +3 add 1).
func StepCapacity(c Capacity, adjType string, adj, minMagnitude int) int {
	if c.Warming() == 0 || adj < 0 || adjType == ExactCapacity {
		return Apply(c, adjType, adj, minMagnitude)
	}
	base := Capacity{Desired: c.Ready, Ready: c.Ready, Min: c.Min, Max: c.Max}
	return max(c.Desired, Apply(base, adjType, adj, minMagnitude))
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func sign(n int) int {
	if n < 0 {
		return -1
	}
	return 1
}

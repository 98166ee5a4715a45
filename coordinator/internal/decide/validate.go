package decide

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// ErrInvalidPolicy is wrapped by every error Validate returns.
var ErrInvalidPolicy = errors.New("invalid scaling policy")

// KnownMetrics are the vocabulary metric names (ARCHITECTURE.md).
var KnownMetrics = []string{"cpu", "mem", "load1", "net_rx", "net_tx", "disk", "requests_per_target"}

// CustomMetricPattern is what a custom agent metric name must look like: it
// doubles as a CloudWatch metric name and a Prometheus label value, so it is
// kept to lower-case letters, digits and underscores.
const CustomMetricPattern = `^[a-z][a-z0-9_]{0,62}$`

var customMetricRE = regexp.MustCompile(CustomMetricPattern)

// MaxPolicyMetrics bounds a policy's target_tracking plus step_scaling
// entries, and MaxSteps one step_scaling entry's steps: a policy lives in
// the replicated state, so its size must not be up to whoever writes it.
const (
	MaxPolicyMetrics = 10
	MaxSteps         = 20
)

// MaxPolicyDuration bounds a policy's warmup, windows and rate-limit
// periods: a day is far beyond any sensible value.
const MaxPolicyDuration = 24 * time.Hour

// FieldError is one problem in a policy, naming the field as it appears in
// the JSON form (e.g. policy.target_tracking[0].target).
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalidPolicy) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidPolicy }

// Validate rejects policies and bounds that cannot work. It reports every
// problem it finds, one per line, each naming its field. A nil policy is
// valid: such a fleet is only scaled by hand.
func Validate(p *shoalv1.ScalingPolicy, min, max int32) error {
	var v validator
	if min < 0 {
		v.add("min", "must be >= 0 (got %d)", min)
	}
	if max < 0 {
		v.add("max", "must be >= 0 (got %d)", max)
	}
	if min > max {
		v.add("min", "min (%d) must be <= max (%d)", min, max)
	}
	if p != nil {
		v.policy(p)
	}
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (v *validator) policy(p *shoalv1.ScalingPolicy) {
	if len(p.TargetTracking) == 0 && len(p.StepScaling) == 0 {
		v.add("policy", "needs at least one target_tracking or step_scaling entry")
	}
	if n := len(p.TargetTracking) + len(p.StepScaling); n > MaxPolicyMetrics {
		v.add("policy", "has %d target_tracking and step_scaling entries; at most %d are allowed", n, MaxPolicyMetrics)
		return
	}
	seen := map[string]string{}
	for i, t := range p.TargetTracking {
		f := fmt.Sprintf("policy.target_tracking[%d]", i)
		v.metric(f+".metric", t.Metric, seen)
		switch {
		case math.IsNaN(t.Target) || math.IsInf(t.Target, 0):
			v.add(f+".target", "must be a finite number (got %v)", t.Target)
		case t.Target <= 0:
			v.add(f+".target", "must be > 0 (got %v)", t.Target)
		}
		if math.IsNaN(t.Tolerance) || t.Tolerance < 0 || t.Tolerance >= 1 {
			v.add(f+".tolerance", "must be in [0, 1) (got %v)", t.Tolerance)
		}
	}
	for i, s := range p.StepScaling {
		f := fmt.Sprintf("policy.step_scaling[%d]", i)
		v.metric(f+".metric", s.Metric, seen)
		v.steps(f+".steps", s.Steps)
	}
	v.duration("policy.warmup", p.GetWarmup())
	v.duration("policy.scale_out_window", p.GetScaleOutWindow())
	v.duration("policy.scale_in_window", p.GetScaleInWindow())
	v.limit("policy.scale_out_limit", p.ScaleOutLimit)
	v.limit("policy.scale_in_limit", p.ScaleInLimit)
	if s := p.Sustain; !(s >= 0 && s <= MaxSustain) {
		v.add("policy.sustain", "must be a share of the launch delay in [0, %d] (got %v)", MaxSustain, s)
	}
}

// metric checks a metric name and that no metric is driven by two entries,
// which would make the combined decision depend on entry order.
func (v *validator) metric(field, m string, seen map[string]string) {
	switch {
	case m == "":
		v.add(field, "must be set (one of %s, or a custom name matching %s)", strings.Join(KnownMetrics, ", "), CustomMetricPattern)
		return
	case !IsMetricName(m):
		v.add(field, "unknown metric %q (want one of %s, or a custom name matching %s)", m, strings.Join(KnownMetrics, ", "), CustomMetricPattern)
		return
	}
	if prev, ok := seen[m]; ok {
		v.add(field, "metric %q is already used by %s", m, prev)
		return
	}
	seen[m] = strings.TrimSuffix(field, ".metric")
}

// IsMetricName reports whether m is a vocabulary metric or a valid custom name.
func IsMetricName(m string) bool {
	for _, k := range KnownMetrics {
		if m == k {
			return true
		}
	}
	return customMetricRE.MatchString(m)
}

func (v *validator) steps(field string, steps []*shoalv1.Step) {
	if len(steps) == 0 {
		v.add(field, "must have at least one step")
		return
	}
	if len(steps) > MaxSteps {
		v.add(field, "has %d steps; at most %d are allowed", len(steps), MaxSteps)
		return
	}
	type band struct {
		i            int
		lower, upper float64
	}
	var bands []band
	for j, st := range steps {
		f := fmt.Sprintf("%s[%d]", field, j)
		if st.Lower == nil && st.Upper == nil {
			v.add(f, "must set lower or upper (a step with no bound matches every value)")
			continue
		}
		b := band{i: j, lower: math.Inf(-1), upper: math.Inf(1)}
		ok := true
		if st.Lower != nil {
			if math.IsNaN(*st.Lower) || math.IsInf(*st.Lower, 0) {
				v.add(f+".lower", "must be a finite number (got %v)", *st.Lower)
				ok = false
			}
			b.lower = *st.Lower
		}
		if st.Upper != nil {
			if math.IsNaN(*st.Upper) || math.IsInf(*st.Upper, 0) {
				v.add(f+".upper", "must be a finite number (got %v)", *st.Upper)
				ok = false
			}
			b.upper = *st.Upper
		}
		if ok && b.lower >= b.upper {
			v.add(f, "lower (%v) must be < upper (%v)", b.lower, b.upper)
			ok = false
		}
		v.adjustment(f, st)
		if ok {
			bands = append(bands, b)
		}
	}
	sort.Slice(bands, func(a, b int) bool { return bands[a].lower < bands[b].lower })
	for k := 1; k < len(bands); k++ {
		prev, cur := bands[k-1], bands[k]
		if cur.lower < prev.upper {
			v.add(fmt.Sprintf("%s[%d]", field, cur.i), "overlaps %s[%d]: [%v, %v) and [%v, %v)",
				field, prev.i, cur.lower, cur.upper, prev.lower, prev.upper)
		}
	}
}

func (v *validator) adjustment(f string, st *shoalv1.Step) {
	a := st.Adjustment
	if math.IsNaN(a) || math.IsInf(a, 0) {
		v.add(f+".adjustment", "must be a finite number (got %v)", a)
		return
	}
	switch st.AdjustmentType {
	case shoalv1.AdjustmentType_ADJUSTMENT_TYPE_CHANGE_IN_CAPACITY:
		if a != math.Trunc(a) {
			v.add(f+".adjustment", "must be a whole number of instances for change_in_capacity (got %v)", a)
		}
	case shoalv1.AdjustmentType_ADJUSTMENT_TYPE_PERCENT_CHANGE:
		if a <= -100 {
			v.add(f+".adjustment", "must be > -100 for percent_change (got %v)", a)
		}
	case shoalv1.AdjustmentType_ADJUSTMENT_TYPE_EXACT_CAPACITY:
		if a < 0 || a != math.Trunc(a) {
			v.add(f+".adjustment", "must be a whole number >= 0 for exact_capacity (got %v)", a)
		}
	default:
		v.add(f+".adjustment_type", "must be change_in_capacity, percent_change or exact_capacity")
	}
}

func (v *validator) duration(field string, d *durationpb.Duration) {
	if d == nil {
		return
	}
	if err := d.CheckValid(); err != nil {
		v.add(field, "must be a valid duration (%v)", err)
		return
	}
	if d.AsDuration() < 0 {
		v.add(field, "must be >= 0 (got %v)", d.AsDuration())
	}
	// A window or period beyond this is a mistake, and the arithmetic on
	// it must not overflow.
	if d.AsDuration() > MaxPolicyDuration {
		v.add(field, "must be at most %v (got %v)", MaxPolicyDuration, d.AsDuration())
	}
}

func (v *validator) limit(field string, r *shoalv1.RateLimit) {
	if r == nil {
		return
	}
	if r.MaxInstances < 0 {
		v.add(field+".max_instances", "must be >= 0 (got %d)", r.MaxInstances)
	}
	if math.IsNaN(r.MaxPercent) || math.IsInf(r.MaxPercent, 0) || r.MaxPercent < 0 {
		v.add(field+".max_percent", "must be a finite number >= 0 (got %v)", r.MaxPercent)
	}
	v.duration(field+".period", r.GetPeriod())
	if (r.MaxInstances > 0 || r.MaxPercent > 0) && r.GetPeriod().AsDuration() <= 0 {
		v.add(field+".period", "must be > 0 when max_instances or max_percent is set")
	}
}

// ErrInvalidInput is wrapped when Decide's input (not the policy) is wrong.
var ErrInvalidInput = errors.New("invalid decide input")

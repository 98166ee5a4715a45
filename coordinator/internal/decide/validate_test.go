package decide

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func f64(v float64) *float64 { return &v }

func tt(metric string, target float64) *shoalv1.ScalingPolicy {
	return &shoalv1.ScalingPolicy{
		TargetTracking: []*shoalv1.TargetTracking{{Metric: metric, Target: target}},
		ScaleInWindow:  durationpb.New(60_000 * time.Millisecond),
	}
}

func step(lower, upper *float64, typ shoalv1.AdjustmentType, adj float64) *shoalv1.Step {
	return &shoalv1.Step{Lower: lower, Upper: upper, AdjustmentType: typ, Adjustment: adj}
}

const (
	change  = shoalv1.AdjustmentType_ADJUSTMENT_TYPE_CHANGE_IN_CAPACITY
	percent = shoalv1.AdjustmentType_ADJUSTMENT_TYPE_PERCENT_CHANGE
	exact   = shoalv1.AdjustmentType_ADJUSTMENT_TYPE_EXACT_CAPACITY
)

func TestValidate(t *testing.T) {
	with := func(f func(p *shoalv1.ScalingPolicy)) *shoalv1.ScalingPolicy {
		p := tt("cpu", 50)
		f(p)
		return p
	}
	steps := func(s ...*shoalv1.Step) *shoalv1.ScalingPolicy {
		return &shoalv1.ScalingPolicy{StepScaling: []*shoalv1.StepScaling{{Metric: "cpu", Steps: s}}}
	}
	cases := []struct {
		name     string
		p        *shoalv1.ScalingPolicy
		min, max int32
		want     string // "" means valid
	}{
		{name: "target tracking ok", p: tt("cpu", 50), min: 1, max: 10},
		{name: "nil policy is manual only", p: nil, min: 0, max: 3},
		{name: "every known metric", p: &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{
			{Metric: "cpu", Target: 1}, {Metric: "mem", Target: 1}, {Metric: "load1", Target: 1}, {Metric: "net_rx", Target: 1},
			{Metric: "net_tx", Target: 1}, {Metric: "disk", Target: 1}, {Metric: "requests_per_target", Target: 1}}}, max: 1},
		{name: "custom metric", p: tt("queue_depth", 100), max: 5},
		{name: "target zero", p: tt("cpu", 0), max: 5, want: "policy.target_tracking[0].target: must be > 0 (got 0)"},
		{name: "target negative", p: tt("cpu", -3), max: 5, want: "policy.target_tracking[0].target: must be > 0 (got -3)"},
		{name: "unknown metric", p: tt("CPU%", 50), max: 5, want: `policy.target_tracking[0].metric: unknown metric "CPU%"`},
		{name: "metric missing", p: tt("", 50), max: 5, want: "policy.target_tracking[0].metric: must be set"},
		{name: "custom metric too long", p: tt("a"+strings.Repeat("b", 63), 50), max: 5, want: "unknown metric"},
		{name: "duplicate metric", p: with(func(p *shoalv1.ScalingPolicy) {
			p.TargetTracking = append(p.TargetTracking, &shoalv1.TargetTracking{Metric: "cpu", Target: 70})
		}), max: 5, want: `policy.target_tracking[1].metric: metric "cpu" is already used by policy.target_tracking[0]`},
		{name: "ten metrics is the most", p: manyMetrics(MaxPolicyMetrics), max: 5},
		{name: "eleven metrics", p: manyMetrics(MaxPolicyMetrics + 1), max: 5,
			want: "policy: has 11 target_tracking and step_scaling entries; at most 10 are allowed"},
		{name: "too many steps", p: steps(manySteps(MaxSteps + 1)...), max: 5,
			want: "policy.step_scaling[0].steps: has 21 steps; at most 20 are allowed"},
		{name: "twenty steps is the most", p: steps(manySteps(MaxSteps)...), max: 5},
		{name: "tolerance one", p: with(func(p *shoalv1.ScalingPolicy) { p.TargetTracking[0].Tolerance = 1 }), max: 5,
			want: "policy.target_tracking[0].tolerance: must be in [0, 1) (got 1)"},
		{name: "tolerance negative", p: with(func(p *shoalv1.ScalingPolicy) { p.TargetTracking[0].Tolerance = -0.1 }), max: 5,
			want: "policy.target_tracking[0].tolerance: must be in [0, 1)"},
		{name: "min above max", p: tt("cpu", 50), min: 5, max: 3, want: "min: min (5) must be <= max (3)"},
		{name: "negative min", p: tt("cpu", 50), min: -1, max: 3, want: "min: must be >= 0 (got -1)"},
		{name: "empty policy", p: &shoalv1.ScalingPolicy{}, max: 3, want: "policy: needs at least one target_tracking or step_scaling entry"},
		{name: "negative warmup", p: with(func(p *shoalv1.ScalingPolicy) { p.Warmup = durationpb.New(-1000 * time.Millisecond) }), max: 5, want: "policy.warmup: must be >= 0 (got -1s)"},
		{name: "negative scale-in window", p: with(func(p *shoalv1.ScalingPolicy) { p.ScaleInWindow = durationpb.New(-5 * time.Millisecond) }), max: 5, want: "policy.scale_in_window: must be >= 0"},
		{name: "sustain zero is off", p: with(func(p *shoalv1.ScalingPolicy) { p.Sustain = 0 }), max: 5},
		{name: "sustain in range", p: with(func(p *shoalv1.ScalingPolicy) { p.Sustain = 0.02 }), max: 5},
		{name: "sustain at the bound", p: with(func(p *shoalv1.ScalingPolicy) { p.Sustain = MaxSustain }), max: 5},
		{name: "sustain above the bound", p: with(func(p *shoalv1.ScalingPolicy) { p.Sustain = 2.5 }), max: 5,
			want: "policy.sustain: must be a share of the launch delay in [0, 2] (got 2.5)"},
		{name: "sustain negative", p: with(func(p *shoalv1.ScalingPolicy) { p.Sustain = -0.1 }), max: 5,
			want: "policy.sustain: must be a share of the launch delay in [0, 2] (got -0.1)"},
		{name: "sustain NaN", p: with(func(p *shoalv1.ScalingPolicy) { p.Sustain = math.NaN() }), max: 5,
			want: "policy.sustain: must be a share of the launch delay in [0, 2] (got NaN)"},
		{name: "sustain infinite", p: with(func(p *shoalv1.ScalingPolicy) { p.Sustain = math.Inf(1) }), max: 5,
			want: "policy.sustain: must be a share of the launch delay in [0, 2] (got +Inf)"},
		{name: "negative scale-out window", p: with(func(p *shoalv1.ScalingPolicy) { p.ScaleOutWindow = durationpb.New(-5 * time.Millisecond) }), max: 5, want: "policy.scale_out_window: must be >= 0"},
		{name: "rate limit without period", p: with(func(p *shoalv1.ScalingPolicy) {
			p.ScaleOutLimit = &shoalv1.RateLimit{MaxInstances: 4}
		}), max: 5, want: "policy.scale_out_limit.period: must be > 0 when max_instances or max_percent is set"},
		{name: "rate limit negative percent", p: with(func(p *shoalv1.ScalingPolicy) {
			p.ScaleInLimit = &shoalv1.RateLimit{MaxPercent: -10, Period: durationpb.New(1000 * time.Millisecond)}
		}), max: 5, want: "policy.scale_in_limit.max_percent: must be a finite number >= 0 (got -10)"},
		{name: "rate limit ok", p: with(func(p *shoalv1.ScalingPolicy) {
			p.ScaleOutLimit = &shoalv1.RateLimit{MaxInstances: 4, MaxPercent: 100, Period: durationpb.New(15000 * time.Millisecond)}
		}), max: 5},
		{name: "steps ok", p: steps(step(nil, f64(30), change, -1), step(f64(70), f64(90), change, 2), step(f64(90), nil, percent, 50)), max: 9},
		{name: "steps overlap", p: steps(step(f64(70), f64(90), change, 2), step(f64(80), nil, change, 4)), max: 9,
			want: "policy.step_scaling[0].steps[1]: overlaps policy.step_scaling[0].steps[0]: [80, +Inf) and [70, 90)"},
		{name: "two steps unbounded below", p: steps(step(nil, f64(30), change, -1), step(nil, f64(20), change, -2)), max: 9,
			want: "overlaps"},
		{name: "step with no bound", p: steps(step(nil, nil, change, 1)), max: 9,
			want: "policy.step_scaling[0].steps[0]: must set lower or upper"},
		{name: "step lower not below upper", p: steps(step(f64(50), f64(50), change, 1)), max: 9,
			want: "policy.step_scaling[0].steps[0]: lower (50) must be < upper (50)"},
		{name: "no steps", p: steps(), max: 9, want: "policy.step_scaling[0].steps: must have at least one step"},
		{name: "step type missing", p: steps(step(f64(50), nil, 0, 1)), max: 9,
			want: "policy.step_scaling[0].steps[0].adjustment_type: must be change_in_capacity, percent_change or exact_capacity"},
		{name: "fractional change", p: steps(step(f64(50), nil, change, 1.5)), max: 9,
			want: "policy.step_scaling[0].steps[0].adjustment: must be a whole number"},
		{name: "negative exact", p: steps(step(f64(50), nil, exact, -2)), max: 9,
			want: "policy.step_scaling[0].steps[0].adjustment: must be a whole number >= 0 for exact_capacity (got -2)"},
		{name: "percent of -100", p: steps(step(nil, f64(10), percent, -100)), max: 9,
			want: "policy.step_scaling[0].steps[0].adjustment: must be > -100"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(c.p, c.min, c.max)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Validate: unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate: error %q does not contain %q", err, c.want)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("Validate: error %v does not wrap ErrInvalidPolicy", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	p := tt("cpu", 0)
	p.Warmup = durationpb.New(-1 * time.Millisecond)
	err := Validate(p, 4, 2)
	if err == nil {
		t.Fatal("want an error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 problems (min, target, warmup), got %d: %q", len(lines), err)
	}
}

// manyMetrics is a policy with n target_tracking entries on distinct custom metrics.
func manyMetrics(n int) *shoalv1.ScalingPolicy {
	p := &shoalv1.ScalingPolicy{}
	for i := range n {
		p.TargetTracking = append(p.TargetTracking, &shoalv1.TargetTracking{Metric: fmt.Sprintf("m%d", i), Target: 1})
	}
	return p
}

// manySteps is n adjacent, non-overlapping change_in_capacity steps.
func manySteps(n int) []*shoalv1.Step {
	var out []*shoalv1.Step
	for i := range n {
		out = append(out, step(f64(float64(i)), f64(float64(i+1)), change, 1))
	}
	return out
}

package decide

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// fleet builds instances in service for an hour with the given value of
// metric; NaN-free "missing" is spelled by passing nil via fleetOf.
func fleet(metric string, values ...float64) []Instance {
	var out []Instance
	for i, v := range values {
		out = append(out, Instance{ID: string(rune('a' + i)), InService: t0.Add(-time.Hour), Metrics: map[string]float64{metric: v}})
	}
	return out
}

func missingData(n int) []Instance {
	var out []Instance
	for i := 0; i < n; i++ {
		out = append(out, Instance{ID: string(rune('z' - i)), InService: t0.Add(-time.Hour)})
	}
	return out
}

func warming(metric string, since time.Duration, values ...float64) []Instance {
	out := fleet(metric, values...)
	for i := range out {
		out[i].ID = "w" + out[i].ID
		out[i].InService = t0.Add(-since)
	}
	return out
}

func cat(groups ...[]Instance) []Instance {
	var out []Instance
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func multi(values map[string][]float64) []Instance {
	var out []Instance
	n := 0
	for _, v := range values {
		n = max(n, len(v))
	}
	for i := 0; i < n; i++ {
		inst := Instance{ID: string(rune('a' + i)), InService: t0.Add(-time.Hour), Metrics: map[string]float64{}}
		for m, v := range values {
			if i < len(v) {
				inst.Metrics[m] = v[i]
			}
		}
		out = append(out, inst)
	}
	return out
}

func policy(f func(p *shoalv1.ScalingPolicy)) *shoalv1.ScalingPolicy {
	p := &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}}
	if f != nil {
		f(p)
	}
	return p
}

func stepPolicy(steps ...*shoalv1.Step) *shoalv1.ScalingPolicy {
	return &shoalv1.ScalingPolicy{StepScaling: []*shoalv1.StepScaling{{Metric: "cpu", Steps: steps}}}
}

func recs(ds ...any) []Recommendation {
	var out []Recommendation
	for i := 0; i < len(ds); i += 2 {
		out = append(out, Recommendation{At: t0.Add(-ds[i].(time.Duration)), Desired: int32(ds[i+1].(int))})
	}
	return out
}

func TestDecide(t *testing.T) {
	twoMetrics := func(p *shoalv1.ScalingPolicy) {
		p.TargetTracking = append(p.TargetTracking, &shoalv1.TargetTracking{Metric: "mem", Target: 50})
	}
	cases := []struct {
		name       string
		p          *shoalv1.ScalingPolicy
		min, max   int32
		current    int32
		instances  []Instance
		aggregates map[string]float64
		state      State
		want       int32
		wantReason string
		wantInputs map[string]float64
	}{
		{name: "target tracking scales out", p: policy(nil), max: 20, current: 4, instances: fleet("cpu", 75, 75, 75, 75),
			want: 6, wantReason: "scale out 4 → 6: cpu wants 6", wantInputs: map[string]float64{"cpu": 75, "cpu.target": 50, "current": 4, "ready": 4}},
		{name: "target tracking scales in", p: policy(nil), max: 20, current: 4, instances: fleet("cpu", 20, 20, 20, 20),
			want: 2, wantReason: "scale in 4 → 2: cpu wants 2"},
		{name: "inside default tolerance", p: policy(nil), max: 20, current: 4, instances: fleet("cpu", 54, 54, 54, 54),
			want: 4, wantReason: "hold at 4: cpu wants no change"},
		{name: "just outside default tolerance", p: policy(nil), max: 20, current: 4, instances: fleet("cpu", 56, 56, 56, 56),
			want: 5, wantReason: "scale out 4 → 5"},
		{name: "inside custom tolerance", p: policy(func(p *shoalv1.ScalingPolicy) { p.TargetTracking[0].Tolerance = 0.2 }),
			max: 20, current: 4, instances: fleet("cpu", 58, 58, 58, 58), want: 4, wantReason: "hold at 4"},
		{name: "warming instances are left out of the metric", p: policy(func(p *shoalv1.ScalingPolicy) { p.Warmup = durationpb.New(30_000 * time.Millisecond) }),
			max: 20, current: 6, instances: cat(fleet("cpu", 20, 20, 20, 20), warming("cpu", 10*time.Second, 100, 100)),
			want: 2, wantInputs: map[string]float64{"cpu": 20, "ready": 4, "unready": 2}},
		{name: "instances past warmup count", p: policy(func(p *shoalv1.ScalingPolicy) { p.Warmup = durationpb.New(30_000 * time.Millisecond) }),
			max: 20, current: 6, instances: cat(fleet("cpu", 20, 20, 20, 20), warming("cpu", 31*time.Second, 100, 100)),
			want: 6, wantReason: "hold at 6"},
		{name: "pending count as zero on scale-out", p: policy(nil), max: 20, current: 4, instances: fleet("cpu", 150, 150),
			want: 6, wantInputs: map[string]float64{"cpu": 150, "cpu.adjusted": 75}},
		{name: "pending already enough: no double scale-out", p: policy(nil), max: 20, current: 6, instances: fleet("cpu", 140, 140),
			want: 6, wantReason: "hold at 6"},
		{name: "missing data counts as 0 on scale-up", p: policy(nil), max: 20, current: 4,
			instances: cat(fleet("cpu", 60), missingData(3)), want: 4, wantReason: "hold at 4"},
		{name: "missing data counts as target on scale-down", p: policy(nil), max: 20, current: 4,
			instances: cat(fleet("cpu", 10, 10), missingData(2)), want: 3, wantInputs: map[string]float64{"cpu": 10, "cpu.adjusted": 30}},
		{name: "non-finite values count as missing", p: policy(nil), max: 20, current: 4,
			instances: fleet("cpu", 10, 10, math.NaN(), math.Inf(1)), want: 3, wantInputs: map[string]float64{"cpu": 10, "cpu.adjusted": 30}},
		{name: "non-finite aggregate is no data", p: &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "requests_per_target", Target: 100}}},
			max: 20, current: 4, aggregates: map[string]float64{"requests_per_target": math.NaN()}, want: 4, wantReason: "no metric has data"},
		{name: "no data at all holds", p: policy(nil), max: 20, current: 4, instances: missingData(4),
			want: 4, wantReason: "hold at 4: no metric has data"},
		{name: "fleet aggregate", p: &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "requests_per_target", Target: 100}}},
			max: 20, current: 4, aggregates: map[string]float64{"requests_per_target": 150}, want: 6},
		{name: "step change in capacity", p: stepPolicy(step(f64(70), f64(90), change, 2), step(f64(90), nil, change, 4)),
			max: 20, current: 4, instances: fleet("cpu", 85, 85, 85, 85), want: 6, wantReason: "scale out 4 → 6"},
		{name: "step upper band", p: stepPolicy(step(f64(70), f64(90), change, 2), step(f64(90), nil, change, 4)),
			max: 20, current: 4, instances: fleet("cpu", 95, 95, 95, 95), want: 8},
		{name: "step percent change", p: stepPolicy(step(f64(90), nil, percent, 50)),
			max: 20, current: 4, instances: fleet("cpu", 95, 95, 95, 95), want: 6},
		{name: "step percent rounds away from zero", p: stepPolicy(step(f64(90), nil, percent, 10)),
			max: 20, current: 4, instances: fleet("cpu", 95, 95, 95, 95), want: 5},
		{name: "step percent scale-in", p: stepPolicy(step(nil, f64(30), percent, -25)),
			max: 20, current: 8, instances: fleet("cpu", 10, 10, 10, 10, 10, 10, 10, 10), want: 6},
		{name: "step exact capacity", p: stepPolicy(step(nil, f64(10), exact, 1)),
			max: 20, current: 4, instances: fleet("cpu", 5, 5, 5, 5), want: 1},
		{name: "no step matches", p: stepPolicy(step(f64(90), nil, change, 2)),
			max: 20, current: 4, instances: fleet("cpu", 50, 50, 50, 50), want: 4, wantReason: "hold at 4"},
		{name: "step adds only the difference while warming", p: stepPolicy(step(f64(70), nil, change, 2)),
			max: 20, current: 6, instances: fleet("cpu", 85, 85, 85, 85), want: 6},
		{name: "any metric scales out", p: policy(twoMetrics), max: 20, current: 4,
			instances: multi(map[string][]float64{"cpu": {100, 100, 100, 100}, "mem": {10, 10, 10, 10}}), want: 8, wantReason: "cpu wants 8"},
		{name: "scale in only if all agree", p: policy(twoMetrics), max: 20, current: 4,
			instances: multi(map[string][]float64{"cpu": {20, 20, 20, 20}, "mem": {50, 50, 50, 50}}), want: 4, wantReason: "hold at 4: mem wants no change"},
		{name: "all agree: least reduction", p: policy(twoMetrics), max: 20, current: 4,
			instances: multi(map[string][]float64{"cpu": {20, 20, 20, 20}, "mem": {30, 30, 30, 30}}), want: 3, wantReason: "all 2 metrics agree"},
		{name: "metric without data blocks scale-in", p: policy(twoMetrics), max: 20, current: 4,
			instances: fleet("cpu", 20, 20, 20, 20), want: 4, wantReason: "hold at 4"},
		{name: "bounded by max", p: policy(nil), max: 10, current: 4, instances: fleet("cpu", 200, 200, 200, 200),
			want: 10, wantReason: "bounded to 10 by min 0 / max 10"},
		{name: "bounded by min", p: policy(nil), min: 3, max: 10, current: 4, instances: fleet("cpu", 5, 5, 5, 5),
			want: 3, wantReason: "bounded to 3"},
		{name: "below min scales up even when no data", p: policy(nil), min: 3, max: 10, current: 1, instances: missingData(1),
			want: 3},
		{name: "scale-in window holds the highest recommendation", p: policy(nil), max: 20, current: 6,
			instances: fleet("cpu", 20, 20, 20, 20, 20, 20), state: State{Recommendations: recs(30*time.Second, 6, 10*time.Second, 5)},
			want: 6, wantReason: "scale-in window 1m0s: highest recommendation is 6"},
		{name: "scale-in window steps down to the highest in window", p: policy(nil), max: 20, current: 6,
			instances: fleet("cpu", 20, 20, 20, 20, 20, 20), state: State{Recommendations: recs(70*time.Second, 6, 10*time.Second, 4)},
			want: 4},
		{name: "custom scale-in window", p: policy(func(p *shoalv1.ScalingPolicy) { p.ScaleInWindow = durationpb.New(20_000 * time.Millisecond) }), max: 20, current: 6,
			instances: fleet("cpu", 20, 20, 20, 20, 20, 20), state: State{Recommendations: recs(30*time.Second, 6)},
			want: 3},
		{name: "scale-out window takes the lowest", p: policy(func(p *shoalv1.ScalingPolicy) { p.ScaleOutWindow = durationpb.New(30_000 * time.Millisecond) }), max: 20, current: 4,
			instances: fleet("cpu", 100, 100, 100, 100), state: State{Recommendations: recs(10*time.Second, 5)},
			want: 5, wantReason: "scale-out window 30s: lowest recommendation is 5"},
		{name: "default scale-out window is zero", p: policy(nil), max: 20, current: 4,
			instances: fleet("cpu", 100, 100, 100, 100), state: State{Recommendations: recs(1*time.Second, 4)}, want: 8},
		{name: "scale-out limit in instances", p: policy(func(p *shoalv1.ScalingPolicy) {
			p.ScaleOutLimit = &shoalv1.RateLimit{MaxInstances: 2, Period: durationpb.New(60_000 * time.Millisecond)}
		}), max: 20, current: 4, instances: fleet("cpu", 125, 125, 125, 125), want: 6, wantReason: "at most 6 (wanted 10)"},
		{name: "scale-out limit counts earlier events", p: policy(func(p *shoalv1.ScalingPolicy) {
			p.ScaleOutLimit = &shoalv1.RateLimit{MaxInstances: 2, Period: durationpb.New(60_000 * time.Millisecond)}
		}), max: 20, current: 4, instances: fleet("cpu", 125, 125, 125, 125),
			state: State{Events: []Event{{At: t0.Add(-30 * time.Second), From: 2, To: 4}}}, want: 4},
		{name: "scale-out limit period expires", p: policy(func(p *shoalv1.ScalingPolicy) {
			p.ScaleOutLimit = &shoalv1.RateLimit{MaxInstances: 2, Period: durationpb.New(60_000 * time.Millisecond)}
		}), max: 20, current: 4, instances: fleet("cpu", 125, 125, 125, 125),
			state: State{Events: []Event{{At: t0.Add(-61 * time.Second), From: 2, To: 4}}}, want: 6},
		{name: "scale-out limit takes the larger of count and percent", p: policy(func(p *shoalv1.ScalingPolicy) {
			p.ScaleOutLimit = &shoalv1.RateLimit{MaxInstances: 4, MaxPercent: 100, Period: durationpb.New(15_000 * time.Millisecond)}
		}), max: 40, current: 6, instances: fleet("cpu", 250, 250, 250, 250, 250, 250), want: 12},
		{name: "scale-in limit", p: policy(func(p *shoalv1.ScalingPolicy) {
			p.ScaleInLimit = &shoalv1.RateLimit{MaxInstances: 1, Period: durationpb.New(60_000 * time.Millisecond)}
		}), max: 20, current: 6, instances: fleet("cpu", 10, 10, 10, 10, 10, 10), want: 5, wantReason: "at least 5 (wanted 2)"},
		{name: "scale-in percent limit", p: policy(func(p *shoalv1.ScalingPolicy) {
			p.ScaleInLimit = &shoalv1.RateLimit{MaxPercent: 50, Period: durationpb.New(60_000 * time.Millisecond)}
		}), max: 20, current: 8, instances: fleet("cpu", 5, 5, 5, 5, 5, 5, 5, 5), want: 4},
		{name: "no policy holds inside bounds", p: nil, min: 2, max: 5, current: 7, want: 5, wantReason: "scale in 7 → 5: no scaling policy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := Input{Now: t0, Policy: c.p, Min: c.min, Max: c.max, Current: c.current, Instances: c.instances, Aggregates: c.aggregates}
			d, _, err := Decide(in, c.state)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Desired != c.want {
				t.Fatalf("desired = %d, want %d\nreason: %s\ndetails:\n  %s", d.Desired, c.want, d.Reason, strings.Join(d.Details, "\n  "))
			}
			if d.Current != c.current {
				t.Errorf("current = %d, want %d", d.Current, c.current)
			}
			if !strings.Contains(d.Reason, c.wantReason) {
				t.Errorf("reason %q does not contain %q", d.Reason, c.wantReason)
			}
			for k, v := range c.wantInputs {
				if got, ok := d.Inputs[k]; !ok || got != v {
					t.Errorf("inputs[%q] = %v (present %v), want %v", k, got, ok, v)
				}
			}
		})
	}
}

func TestDecideState(t *testing.T) {
	p := policy(nil)
	in := Input{Now: t0, Policy: p, Max: 20, Current: 4, Instances: fleet("cpu", 100, 100, 100, 100)}
	orig := State{Recommendations: recs(10*time.Second, 4)}
	snapshot := State{Recommendations: append([]Recommendation(nil), orig.Recommendations...)}

	d1, s1, err := Decide(in, orig)
	if err != nil {
		t.Fatal(err)
	}
	d2, s2, _ := Decide(in, orig)
	if !reflect.DeepEqual(d1, d2) || !reflect.DeepEqual(s1, s2) {
		t.Fatal("Decide is not deterministic for equal inputs")
	}
	if !reflect.DeepEqual(orig, snapshot) {
		t.Fatalf("Decide modified the caller's state: %+v", orig)
	}
	wantRecs := append(recs(10*time.Second, 4), Recommendation{At: t0, Desired: 8, Sustained: 8})
	if !reflect.DeepEqual(s1.Recommendations, wantRecs) {
		t.Fatalf("recommendations = %+v, want %+v", s1.Recommendations, wantRecs)
	}
	if want := []Event{{At: t0, From: 4, To: 8}}; !reflect.DeepEqual(s1.Events, want) {
		t.Fatalf("events = %+v, want %+v", s1.Events, want)
	}

	// Old history is pruned: the 60 s scale-in window keeps nothing from 2 min ago.
	in.Now = t0.Add(2 * time.Minute)
	in.Current = 8
	in.Instances = fleet("cpu", 50, 50, 50, 50, 50, 50, 50, 50)
	_, s3, _ := Decide(in, s1)
	if len(s3.Recommendations) != 1 || len(s3.Events) != 0 {
		t.Fatalf("state not pruned: %+v", s3)
	}
}

func TestDecideRejectsInvalidPolicy(t *testing.T) {
	_, _, err := Decide(Input{Now: t0, Policy: tt("cpu", 0), Max: 5, Current: 1}, State{})
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("err = %v, want ErrInvalidPolicy", err)
	}
	_, _, err = Decide(Input{Now: t0, Policy: tt("cpu", 50), Max: 5, Current: -1}, State{})
	if !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("err = %v, want ErrInvalidInput", err)
	}
}

// TestScaleInAfterWindow drives Decide over time, as the scaler does, and
// checks that a drop in load scales in only once the window has passed.
func TestScaleInAfterWindow(t *testing.T) {
	p := policy(nil)
	var st State
	current := int32(8)
	var scaledAt time.Duration = -1
	for s := 0; s <= 120; s++ {
		now := t0.Add(time.Duration(s) * time.Second)
		load := 50.0
		if s >= 10 {
			load = 20
		}
		var insts []Instance
		for i := int32(0); i < current; i++ {
			insts = append(insts, Instance{ID: string(rune('a' + i)), InService: t0.Add(-time.Hour), Metrics: map[string]float64{"cpu": load * 8 / float64(current)}})
		}
		d, next, err := Decide(Input{Now: now, Policy: p, Max: 20, Current: current, Instances: insts}, st)
		if err != nil {
			t.Fatal(err)
		}
		st = next
		if d.Changed() && scaledAt < 0 {
			scaledAt = time.Duration(s) * time.Second
			if d.Desired != 4 {
				t.Fatalf("scaled to %d, want 4 (%s)", d.Desired, d.Reason)
			}
		}
		current = d.Desired
	}
	// The last recommendation of 8 was made at s=9; it leaves the 60 s
	// window at s=69.
	if scaledAt != 69*time.Second {
		t.Fatalf("scaled in at %v, want 69s", scaledAt)
	}
}

func TestSeedHoldsScaleInForTheWindow(t *testing.T) {
	in := Input{Policy: policy(nil), Max: 20, Current: 6, Instances: fleet("cpu", 20, 20, 20, 20, 20, 20)}
	st := Seed(t0, 6)
	for _, c := range []struct {
		after time.Duration
		want  int32
	}{{0, 6}, {59 * time.Second, 6}, {60 * time.Second, 3}} {
		in.Now = t0.Add(c.after)
		d, _, err := Decide(in, st)
		if err != nil {
			t.Fatal(err)
		}
		if d.Desired != c.want {
			t.Fatalf("%v after seeding: desired %d, want %d (%s)", c.after, d.Desired, c.want, d.Reason)
		}
	}
	if d, _, _ := Decide(Input{Now: t0, Policy: policy(nil), Max: 20, Current: 6, Instances: fleet("cpu", 20, 20, 20, 20, 20, 20)}, State{}); d.Desired != 3 {
		t.Fatalf("without a seed: desired %d, want 3 at once", d.Desired)
	}
}

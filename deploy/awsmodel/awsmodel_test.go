package awsmodel

import (
	"errors"
	"testing"
)

func TestTargetTrackingAlarms(t *testing.T) {
	got := TargetTrackingAlarms(50, 10, false)
	if len(got) != 2 {
		t.Fatalf("got %d alarms, want 2", len(got))
	}
	high, low := got[0], got[1]
	if high.Kind != KindHigh || high.Threshold != 50 || high.ComparisonOperator != "GreaterThanThreshold" ||
		high.EvaluationPeriods != 3 || high.DatapointsToAlarm != 3 || high.Period != 10 || high.TreatMissingData != "notBreaching" {
		t.Errorf("high = %+v", high)
	}
	if low.Kind != KindLow || low.Threshold != 45 || low.ComparisonOperator != "LessThanThreshold" ||
		low.EvaluationPeriods != 15 || low.DatapointsToAlarm != 15 || low.Period != 10 {
		t.Errorf("low = %+v", low)
	}
	if n := len(TargetTrackingAlarms(50, 60, true)); n != 1 {
		t.Errorf("scale-in disabled: %d alarms, want 1 (no AlarmLow)", n)
	}
	if !high.Breaches(50.1) || high.Breaches(50) || !low.Breaches(44.9) || low.Breaches(45) {
		t.Error("Breaches: thresholds are strict")
	}
	if got := AlarmName("web", KindHigh, "u-1"); got != "TargetTracking-web-AlarmHigh-u-1" {
		t.Errorf("AlarmName = %q", got)
	}
}

func TestValidPeriod(t *testing.T) {
	for p, want := range map[int]bool{10: true, 30: true, 60: true, 0: false, 20: false, 120: false, 1: false} {
		if ValidPeriod(p) != want {
			t.Errorf("ValidPeriod(%d) = %v, want %v", p, !want, want)
		}
	}
}

func TestScaleOutAndIn(t *testing.T) {
	tests := []struct {
		name string
		got  int
		want int
	}{
		{"proportional", ScaleOut(Capacity{Desired: 2, Ready: 2, Min: 1, Max: 10}, 90, 60), 3},
		{"exact ratio does not round up", ScaleOut(Capacity{Desired: 2, Ready: 2, Min: 1, Max: 10}, 60.0000000001, 60), 2},
		{"warming counts as capacity", ScaleOut(Capacity{Desired: 4, Ready: 2, Min: 1, Max: 10}, 120, 60), 4},
		{"warming: only the difference", ScaleOut(Capacity{Desired: 4, Ready: 2, Min: 1, Max: 10}, 150, 60), 5},
		{"max bounds", ScaleOut(Capacity{Desired: 2, Ready: 2, Min: 1, Max: 3}, 600, 60), 3},
		{"scale-in proportional", ScaleIn(Capacity{Desired: 4, Ready: 4, Min: 1, Max: 10}, 20, 60, -1, 300), 2},
		{"scale-in waits for warm-up", ScaleIn(Capacity{Desired: 4, Ready: 3, Min: 1, Max: 10}, 20, 60, -1, 300), 4},
		{"scale-in waits for cooldown", ScaleIn(Capacity{Desired: 4, Ready: 4, Min: 1, Max: 10}, 20, 60, 299, 300), 4},
		{"scale-in after cooldown", ScaleIn(Capacity{Desired: 4, Ready: 4, Min: 1, Max: 10}, 20, 60, 300, 300), 2},
		{"scale-in min bounds", ScaleIn(Capacity{Desired: 4, Ready: 4, Min: 3, Max: 10}, 1, 60, -1, 300), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %d, want %d", tt.got, tt.want)
			}
		})
	}
}

func f(v float64) *float64 { return &v }

func TestValidateSteps(t *testing.T) {
	tests := []struct {
		name  string
		steps []Step
		ok    bool
	}{
		{"out", []Step{{Lower: f(0), Upper: f(10), Adjustment: 1}, {Lower: f(10), Adjustment: 3}}, true},
		{"in", []Step{{Upper: f(0), Adjustment: -1}}, true},
		{"empty", nil, false},
		{"both null", []Step{{Adjustment: 1}}, false},
		{"gap", []Step{{Lower: f(0), Upper: f(10), Adjustment: 1}, {Lower: f(20), Adjustment: 3}}, false},
		{"overlap", []Step{{Lower: f(0), Upper: f(10), Adjustment: 1}, {Lower: f(5), Adjustment: 3}}, false},
		{"upper below lower", []Step{{Lower: f(10), Upper: f(0), Adjustment: 1}}, false},
		{"positive upper, no open end", []Step{{Lower: f(0), Upper: f(10), Adjustment: 1}}, false},
		{"negative lower, no open end", []Step{{Lower: f(-10), Upper: f(0), Adjustment: -1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSteps("StepAdjustments", tt.steps)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrSteps) {
				t.Errorf("err %v does not wrap ErrSteps", err)
			}
		})
	}
}

func TestStepForAndApply(t *testing.T) {
	steps := []Step{{Lower: f(0), Upper: f(10), Adjustment: 1}, {Lower: f(10), Adjustment: 3}}
	for delta, want := range map[float64]int{0: 1, 9.9: 1, 10: 3, 100: 3} {
		if got, ok := StepFor(steps, delta); !ok || got != want {
			t.Errorf("StepFor(%g) = %d,%v; want %d", delta, got, ok, want)
		}
	}
	if _, ok := StepFor(steps, -1); ok {
		t.Error("StepFor(-1) found a step for a breach no step covers")
	}
	in := []Step{{Lower: f(-10), Upper: f(0), Adjustment: -1}, {Upper: f(-10), Adjustment: -2}}
	for delta, want := range map[float64]int{0: -1, -10: -2, -5: -1, -50: -2} {
		if got, ok := StepFor(in, delta); !ok || got != want {
			t.Errorf("scale-in StepFor(%g) = %d,%v; want %d", delta, got, ok, want)
		}
	}
	c := Capacity{Desired: 10, Ready: 10, Min: 1, Max: 20}
	for name, tt := range map[string]struct{ got, want int }{
		"change":                   {Apply(c, ChangeInCapacity, 3, 0), 13},
		"exact":                    {Apply(c, ExactCapacity, 4, 0), 4},
		"percent rounds down":      {Apply(c, PercentChangeInCapacity, 27, 0), 12},
		"percent small is 1":       {Apply(c, PercentChangeInCapacity, 5, 0), 11},
		"percent -small is -1":     {Apply(c, PercentChangeInCapacity, -5, 0), 9},
		"percent neg rounds up":    {Apply(c, PercentChangeInCapacity, -27, 0), 8},
		"min magnitude":            {Apply(c, PercentChangeInCapacity, 10, 4), 14},
		"bounded":                  {Apply(c, ChangeInCapacity, 30, 0), 20},
		"step warming same step":   {StepCapacity(Capacity{Desired: 12, Ready: 10, Min: 1, Max: 20}, ChangeInCapacity, 2, 0), 12},
		"step warming bigger step": {StepCapacity(Capacity{Desired: 12, Ready: 10, Min: 1, Max: 20}, ChangeInCapacity, 3, 0), 13},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %d, want %d", name, tt.got, tt.want)
		}
	}
}

package decide

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// FuzzDecide builds a policy, bounds and a few rounds of fleet metrics from
// fuzz input and runs Decide round after round, as the scaler does. Decide
// must never panic, must refuse only with ErrInvalidPolicy or
// ErrInvalidInput, must keep every answer inside [min, max], and must give
// the same answer twice for the same input and state.
//
// metrics is read 9 bytes per instance: an age byte (0: pending, else
// seconds in service) and a float64 bit pattern, so NaN, Inf and
// subnormals all reach Decide.
func FuzzDecide(f *testing.F) {
	f.Fuzz(func(t *testing.T, target, tolerance, lower, upper, adjustment float64, adjType uint8, warmupMs, inWindowMs, outWindowMs int64,
		limitInstances int32, limitPercent float64, limitPeriodMs int64, lo, hi, current int32, aggregate float64, metrics []byte, rounds uint8) {
		metricNames := []string{"cpu", "requests_per_target"}
		p := &shoalv1.ScalingPolicy{
			Warmup: durationpb.New(time.Duration(warmupMs) * time.Millisecond), ScaleInWindow: durationpb.New(time.Duration(inWindowMs) * time.Millisecond), ScaleOutWindow: durationpb.New(time.Duration(outWindowMs) * time.Millisecond),
			TargetTracking: []*shoalv1.TargetTracking{{Metric: metricNames[adjType&1], Target: target, Tolerance: tolerance}},
			StepScaling: []*shoalv1.StepScaling{{Metric: "mem", Steps: []*shoalv1.Step{
				{Lower: &lower, AdjustmentType: shoalv1.AdjustmentType((adjType >> 1) % 4), Adjustment: adjustment},
				{Upper: &upper, AdjustmentType: shoalv1.AdjustmentType_ADJUSTMENT_TYPE_CHANGE_IN_CAPACITY, Adjustment: -1},
			}}},
			ScaleOutLimit: &shoalv1.RateLimit{MaxInstances: limitInstances, MaxPercent: limitPercent, Period: durationpb.New(time.Duration(limitPeriodMs) * time.Millisecond)},
		}
		if adjType&0x80 != 0 {
			p.StepScaling = nil // a target-tracking-only policy passes Validate more often
		}
		// rounds' low 3 bits count the rounds; the rest set sustain in
		// [0, 1.9375], so the corpus keeps its shape.
		p.Sustain = float64(rounds>>3) / 16
		now := time.Unix(1_700_000_000, 0)
		var st State
		for r := 0; r <= int(rounds%8); r++ {
			in := Input{Now: now, Policy: p, Min: lo, Max: hi, Current: current, Aggregates: map[string]float64{}}
			if adjType&0x40 != 0 {
				in.Aggregates["requests_per_target"] = aggregate
			}
			for i := 0; i+9 <= len(metrics) && i < 9*64; i += 9 {
				inst := Instance{Metrics: map[string]float64{}}
				if age := metrics[i]; age != 0 {
					inst.InService = now.Add(-time.Duration(age) * time.Second)
				}
				v := math.Float64frombits(binary.LittleEndian.Uint64(metrics[i+1 : i+9]))
				inst.Metrics["cpu"], inst.Metrics["mem"], inst.Metrics["requests_per_target"] = v, v/2, v*3
				in.Instances = append(in.Instances, inst)
			}
			d, next, err := Decide(in, st)
			if err != nil {
				if !errors.Is(err, ErrInvalidPolicy) && !errors.Is(err, ErrInvalidInput) {
					t.Fatalf("round %d: error wraps neither ErrInvalidPolicy nor ErrInvalidInput: %v", r, err)
				}
				if Validate(p, lo, hi) == nil && current >= 0 {
					t.Fatalf("round %d: valid policy and input refused: %v", r, err)
				}
				return
			}
			if d.Desired < lo || d.Desired > hi {
				t.Fatalf("round %d: desired %d outside [%d, %d]: %s", r, d.Desired, lo, hi, d.Reason)
			}
			d2, next2, err := Decide(in, st)
			// Printed, not DeepEqual: a NaN among the inputs never equals itself.
			if err != nil || fmt.Sprintf("%+v", d2) != fmt.Sprintf("%+v", d) || fmt.Sprintf("%+v", next2) != fmt.Sprintf("%+v", next) {
				t.Fatalf("round %d: Decide is not deterministic: %+v / %+v (%v)", r, d, d2, err)
			}
			st, current = next, d.Desired
			now = now.Add(time.Duration(1+int(rounds)*7) * time.Second)
		}
	})
}

package decide

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"fmt"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// BenchmarkDecide is one scaler tick for a 50-instance fleet with two
// metrics and a minute of history: the leader pays this every second per
// fleet.
func BenchmarkDecide(b *testing.B) {
	p := &shoalv1.ScalingPolicy{
		TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 60}, {Metric: "mem", Target: 70}},
		Warmup:         durationpb.New(30_000 * time.Millisecond),
		ScaleInWindow:  durationpb.New(60_000 * time.Millisecond),
		ScaleOutLimit:  &shoalv1.RateLimit{MaxInstances: 4, MaxPercent: 100, Period: durationpb.New(15_000 * time.Millisecond)},
	}
	var insts []Instance
	for i := 0; i < 50; i++ {
		insts = append(insts, Instance{ID: fmt.Sprint(i), InService: t0.Add(-time.Hour), Metrics: map[string]float64{"cpu": 55, "mem": 40}})
	}
	var st State
	for s := 0; s < 60; s++ {
		_, st, _ = Decide(Input{Now: t0.Add(time.Duration(s-60) * time.Second), Policy: p, Max: 100, Current: 50, Instances: insts}, st)
	}
	in := Input{Now: t0, Policy: p, Max: 100, Current: 50, Instances: insts}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decide(in, st); err != nil {
			b.Fatal(err)
		}
	}
}

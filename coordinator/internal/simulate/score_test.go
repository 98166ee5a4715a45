package simulate

import (
	"math"
	"testing"
)

func TestScorecard(t *testing.T) {
	cases := []struct {
		name       string
		demand     []float64
		demandInst []int32
		supply     []int32
		billed     []int32
		want       Score
	}{
		{
			name:       "exact supply",
			demand:     []float64{60, 60, 60},
			demandInst: []int32{1, 1, 1},
			supply:     []int32{1, 1, 1},
			billed:     []int32{1, 1, 1},
			want:       Score{InstanceHours: 3.0 / 3600},
		},
		{
			name:       "one under, one over",
			demand:     []float64{50, 150, 150, 250},
			demandInst: []int32{1, 2, 2, 3},
			supply:     []int32{1, 1, 3, 3},
			billed:     []int32{1, 2, 3, 3},
			// supply changes once, demand twice, over 4 s = 1/15 min.
			want: Score{AccuracyU: 0.25, AccuracyO: 0.25, TimeshareU: 0.25, TimeshareO: 0.25,
				Jitter: -15, InstanceHours: 9.0 / 3600, SLOBreachS: 1},
		},
		{
			name:       "flapping supply",
			demand:     []float64{100, 100, 100, 100, 100, 100},
			demandInst: []int32{2, 2, 2, 2, 2, 2},
			supply:     []int32{2, 3, 2, 3, 2, 3},
			billed:     []int32{3, 3, 3, 3, 3, 3},
			want:       Score{AccuracyO: 0.5, TimeshareO: 0.5, Jitter: 50, InstanceHours: 18.0 / 3600},
		},
		{
			name:       "no supply at all breaches every second",
			demand:     []float64{10, 10},
			demandInst: []int32{1, 1},
			supply:     []int32{0, 0},
			billed:     []int32{1, 1},
			want:       Score{AccuracyU: 1, TimeshareU: 1, InstanceHours: 2.0 / 3600, SLOBreachS: 2},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Scorecard("x", c.demand, c.demandInst, c.supply, c.billed, 100)
			c.want.Policy = "x"
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"accuracy_u", got.AccuracyU, c.want.AccuracyU},
				{"accuracy_o", got.AccuracyO, c.want.AccuracyO},
				{"timeshare_u", got.TimeshareU, c.want.TimeshareU},
				{"timeshare_o", got.TimeshareO, c.want.TimeshareO},
				{"jitter", got.Jitter, c.want.Jitter},
				{"instance_hours", got.InstanceHours, c.want.InstanceHours},
				{"slo_breach_s", float64(got.SLOBreachS), float64(c.want.SLOBreachS)},
			} {
				if math.Abs(f.got-f.want) > 1e-9 {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
		})
	}
}

package decide

import (
	"slices"
	"testing"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func TestVictims(t *testing.T) {
	cpu := func(v float64) map[string]float64 { return map[string]float64{"cpu": v} }
	reqs := &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "requests_per_target", Target: 100}}}
	for _, tc := range []struct {
		name   string
		policy *shoalv1.ScalingPolicy
		cands  []Candidate
		n      int
		want   []string
	}{
		{
			name: "an instance at risk goes first, whatever its load or AZ",
			cands: []Candidate{
				{ID: "i-a", AZ: "a", Reported: true, Metrics: cpu(10)},
				{ID: "i-b", AZ: "a", Reported: true, Metrics: cpu(20)},
				{ID: "i-c", AZ: "b", Reported: true, Metrics: cpu(95), AtRisk: true},
			},
			n: 2, want: []string{"i-c", "i-a"},
		},
		{
			name: "then instances not serving yet, before any that serves however idle",
			cands: []Candidate{
				{ID: "i-a", AZ: "a", Reported: true, Metrics: cpu(1)},
				{ID: "i-b", AZ: "a", Reported: true, Metrics: cpu(2)},
				{ID: "i-n1", AZ: "b", NotServing: true},
				{ID: "i-n2", AZ: "b", Reported: true, Metrics: cpu(0), NotServing: true},
				{ID: "i-r", AZ: "a", Reported: true, Metrics: cpu(90), AtRisk: true},
			},
			n: 4, want: []string{"i-r", "i-n2", "i-n1", "i-a"},
		},
		{
			name: "more at risk than needed: newest id first",
			cands: []Candidate{
				{ID: "i-1", AZ: "a", AtRisk: true},
				{ID: "i-2", AZ: "a", AtRisk: true},
				{ID: "i-3", AZ: "a", Reported: true, Metrics: cpu(1)},
			},
			n: 1, want: []string{"i-2"},
		},
		{
			name: "least loaded first",
			cands: []Candidate{
				{ID: "i-a", AZ: "a", Reported: true, Metrics: cpu(70)},
				{ID: "i-b", AZ: "a", Reported: true, Metrics: cpu(20)},
				{ID: "i-c", AZ: "a", Reported: true, Metrics: cpu(40)},
			},
			n: 2, want: []string{"i-b", "i-c"},
		},
		{
			name: "always from the AZ with the most candidates, the first AZ on a tie",
			cands: []Candidate{
				{ID: "i-a1", AZ: "a", Reported: true, Metrics: cpu(90)},
				{ID: "i-a2", AZ: "a", Reported: true, Metrics: cpu(80)},
				{ID: "i-a3", AZ: "a", Reported: true, Metrics: cpu(70)},
				{ID: "i-b1", AZ: "b", Reported: true, Metrics: cpu(10)},
			},
			n: 4, want: []string{"i-a3", "i-a2", "i-a1", "i-b1"},
		},
		{
			name: "equal AZs: the alphabetically first AZ gives first",
			cands: []Candidate{
				{ID: "i-b1", AZ: "b", Reported: true, Metrics: cpu(10)},
				{ID: "i-a1", AZ: "a", Reported: true, Metrics: cpu(90)},
			},
			n: 1, want: []string{"i-a1"},
		},
		{
			name: "silent agent first, metric-less report last",
			cands: []Candidate{
				{ID: "i-quiet", AZ: "a"},
				{ID: "i-nocpu", AZ: "a", Reported: true, Metrics: map[string]float64{"mem": 10}},
				{ID: "i-busy", AZ: "a", Reported: true, Metrics: cpu(99)},
			},
			n: 3, want: []string{"i-quiet", "i-busy", "i-nocpu"},
		},
		{
			name: "ties go to the newest id",
			cands: []Candidate{
				{ID: "i-0001", AZ: "a", Reported: true, Metrics: cpu(50)},
				{ID: "i-0002", AZ: "a", Reported: true, Metrics: cpu(50)},
			},
			n: 1, want: []string{"i-0002"},
		},
		{
			name:   "the policy's first target metric ranks",
			policy: reqs,
			cands: []Candidate{
				{ID: "i-a", AZ: "a", Reported: true, Metrics: map[string]float64{"cpu": 5, "requests_per_target": 300}},
				{ID: "i-b", AZ: "a", Reported: true, Metrics: map[string]float64{"cpu": 95, "requests_per_target": 10}},
			},
			n: 1, want: []string{"i-b"},
		},
		{
			name:  "fewer candidates than asked",
			cands: []Candidate{{ID: "i-a", AZ: "a", Reported: true, Metrics: cpu(1)}},
			n:     3, want: []string{"i-a"},
		},
		{name: "none", n: 1, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Victims(tc.policy, tc.cands, tc.n); !slices.Equal(got, tc.want) {
				t.Fatalf("Victims = %v, want %v", got, tc.want)
			}
		})
	}
}

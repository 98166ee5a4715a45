package ingest

import (
	"math"
	"testing"
)

func TestRingStats(t *testing.T) {
	r := newRing(4)
	for i, v := range []float64{10, 20, 30, 40, 50, 60} {
		vals := map[string]float64{"cpu": v}
		if i == 4 {
			vals = map[string]float64{"mem": 1}
		}
		r.add(int64(1000*(i+1)), vals)
	}
	// The ring holds ts 3000..6000 (cpu 30, 40, -, 60; mem at 5000).
	for _, tc := range []struct {
		name     string
		from, to int64
		want     Stats
	}{
		{"all kept", 0, 10_000, Stats{Count: 3, Sum: 130, Min: 30, Max: 60}},
		{"half-open", 3000, 5000, Stats{Count: 2, Sum: 70, Min: 30, Max: 40}},
		{"evicted", 1000, 3000, Stats{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := r.stats(tc.from, tc.to)["cpu"]
			if got != tc.want {
				t.Fatalf("cpu stats = %+v, want %+v", got, tc.want)
			}
		})
	}
	if got := r.stats(0, math.MaxInt64)["mem"]; got.Count != 1 || got.Sum != 1 {
		t.Fatalf("mem stats = %+v, want one sample", got)
	}
}

func TestStatsMerge(t *testing.T) {
	var s Stats
	s.merge(Stats{Count: 2, Sum: 30, Min: 10, Max: 20})
	s.merge(Stats{})
	s.merge(Stats{Count: 1, Sum: 5, Min: 5, Max: 5})
	if s != (Stats{Count: 3, Sum: 35, Min: 5, Max: 20}) {
		t.Fatalf("merged = %+v", s)
	}
}

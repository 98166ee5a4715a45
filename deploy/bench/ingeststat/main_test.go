package main

import (
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	// 100 samples: 50 in (0,10ms], 40 in (10,20ms], 10 in (20,100ms].
	b := []bucket{{0.01, 50}, {0.02, 90}, {0.1, 100}}
	cases := []struct {
		name  string
		q     float64
		b     []bucket
		total uint64
		want  float64
	}{
		{"median at the first bound", 0.5, b, 100, 0.01},
		{"inside the second bucket", 0.7, b, 100, 0.015},
		{"p99 in the wide bucket", 0.99, b, 100, 0.02 + 0.08*0.9},
		{"first bucket from zero", 0.25, b, 100, 0.005},
		{"past the last finite bound", 0.99, b, 200, math.Inf(1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := quantile(tc.q, tc.b, tc.total); math.Abs(got-tc.want) > 1e-12 && got != tc.want {
				t.Errorf("got %g, want %g", got, tc.want)
			}
		})
	}
	if !math.IsNaN(quantile(0.5, b, 0)) {
		t.Error("no samples must give NaN")
	}
}

func TestDiff(t *testing.T) {
	a := snapshot{UnixNano: 0, CPUSeconds: 1, Count: 10, Buckets: []bucket{{0.01, 10}, {0.1, 10}}, Backlog: 3}
	b := snapshot{UnixNano: 2e9, CPUSeconds: 2, Count: 110, Buckets: []bucket{{0.01, 10}, {0.1, 110}}, Backlog: 5}
	r, err := diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	// Only the window's 100 samples count, all in (10ms, 100ms].
	if r.samples != 100 || r.backlog != 2 || math.Abs(r.p50-0.055) > 1e-12 || r.cpuPct != 50 {
		t.Errorf("got %+v", r)
	}
	if _, err := diff(b, a); err == nil {
		t.Error("reversed snapshots must fail")
	}
}

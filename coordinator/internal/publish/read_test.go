package publish

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSparkline(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name   string
		values []float64
		width  int
		want   string
	}{
		{"empty", nil, 10, ""},
		{"zero width", []float64{1}, 0, ""},
		{"ramp", []float64{0, 1, 2, 3, 4, 5, 6, 7}, 8, "▁▂▃▄▅▆▇█"},
		{"flat is mid height", []float64{5, 5, 5}, 10, "▄▄▄"},
		{"gap", []float64{0, nan, 7}, 10, "▁ █"},
		{"averaged into cells", []float64{0, 0, 7, 7}, 2, "▁█"},
		{"all NaN", []float64{nan, nan}, 4, "  "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sparkline(tt.values, tt.width); got != tt.want {
				t.Fatalf("Sparkline = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteSeries(t *testing.T) {
	base := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		pts  []Point
		want string
	}{
		{"no data", nil, "cpu (Average): no data\n"},
		{"three points", []Point{{base, 10}, {base.Add(10 * time.Second), 55.5}, {base.Add(20 * time.Second), 90}},
			"TIME                 CPU (Average)\n" +
				"2026-11-30 06:00:00  10\n" +
				"2026-11-30 06:00:10  55.5\n" +
				"2026-11-30 06:00:20  90\n" +
				"▁▄█  min 10  max 90\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := WriteSeries(&b, "cpu", "Average", tt.pts, 40); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestSeriesValidatesQuery(t *testing.T) {
	r := NewReader(nil, "shoal")
	now := time.Now()
	tests := []struct {
		name string
		q    Query
		want string
	}{
		{"no group", Query{Metric: "cpu", Start: now.Add(-time.Minute)}, "group: must not be empty"},
		{"no metric", Query{Group: "g", Start: now.Add(-time.Minute)}, "metric: must not be empty"},
		{"bad stat", Query{Group: "g", Metric: "cpu", Stat: "p99", Start: now.Add(-time.Minute)}, `stat ("p99") must be Average, Sum, SampleCount, Minimum or Maximum`},
		{"bad period", Query{Group: "g", Metric: "cpu", Period: 1500 * time.Millisecond, Start: now.Add(-time.Minute)}, "period (1.5s) must be a whole number of seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Series(context.Background(), tt.q)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

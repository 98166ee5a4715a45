package publish

import (
	"math"
	"testing"
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

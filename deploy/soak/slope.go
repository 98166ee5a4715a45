package soak

import "math"

// Slope is the least-squares slope of ys over ts (seconds), per hour. It
// needs three points and some spread in time; ok is false otherwise.
func Slope(ts, ys []float64) (perHour float64, ok bool) {
	n := len(ts)
	if n < 3 || len(ys) != n {
		return 0, false
	}
	var mt, my float64
	for i := range ts {
		mt += ts[i]
		my += ys[i]
	}
	mt /= float64(n)
	my /= float64(n)
	var num, den float64
	for i := range ts {
		dt := ts[i] - mt
		num += dt * (ys[i] - my)
		den += dt * dt
	}
	if den == 0 || math.IsNaN(num) {
		return 0, false
	}
	return num / den * 3600, true
}

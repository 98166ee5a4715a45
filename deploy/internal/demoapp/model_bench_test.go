package demoapp

import (
	"testing"
	"time"
)

// BenchmarkModel measures the capacity model's cost per request (Reserve)
// and per scrape (Utilization) at a busy instance's history length.
func BenchmarkModel(b *testing.B) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.Run("Reserve", func(b *testing.B) {
		m := NewModel(1000, 1000, 2*time.Second)
		for i := 0; b.Loop(); i++ {
			m.Reserve(t0.Add(time.Duration(i) * time.Millisecond))
		}
	})
	b.Run("Utilization/2000-in-window", func(b *testing.B) {
		m := NewModel(1000, 1000, 2*time.Second)
		for i := range 2000 {
			m.Reserve(t0.Add(time.Duration(i) * time.Millisecond))
		}
		now := t0.Add(2 * time.Second)
		for b.Loop() {
			m.Utilization(now)
		}
	})
}

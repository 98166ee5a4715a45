package demoapp

import (
	"strings"
	"testing"
	"time"
)

func TestModelUtilization(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const window = time.Second
	tests := []struct {
		name     string
		capacity float64
		arrivals []time.Duration // offsets from t0
		at       time.Duration
		wantMin  float64
		wantMax  float64
	}{
		{name: "idle", capacity: 10, at: 5 * time.Second, wantMin: 0, wantMax: 0},
		{name: "half load", capacity: 10, arrivals: every(200*time.Millisecond, 20), at: 4 * time.Second, wantMin: 49, wantMax: 51},
		{name: "offered twice capacity saturates", capacity: 10, arrivals: every(50*time.Millisecond, 80), at: 4 * time.Second, wantMin: 100, wantMax: 100},
		{name: "burst then quiet drains the window", capacity: 10, arrivals: every(0, 5), at: 10 * time.Second, wantMin: 0, wantMax: 0},
		{name: "burst is served back to back", capacity: 10, arrivals: every(0, 10), at: time.Second, wantMin: 100, wantMax: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewModel(tc.capacity, 1000, window)
			for _, a := range tc.arrivals {
				if _, ok := m.Reserve(t0.Add(a)); !ok {
					t.Fatalf("reserve at %s rejected", a)
				}
			}
			got := m.Utilization(t0.Add(tc.at))
			if got < tc.wantMin || got > tc.wantMax {
				t.Fatalf("utilization = %.2f, want in [%.0f, %.0f]", got, tc.wantMin, tc.wantMax)
			}
		})
	}
}

func TestModelQueue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewModel(10, 3, time.Second) // 100 ms per request
	var starts []time.Time
	for i := range 4 {
		s, ok := m.Reserve(t0)
		if !ok {
			t.Fatalf("request %d rejected with room in the queue", i)
		}
		starts = append(starts, s)
	}
	for i, s := range starts {
		if want := t0.Add(time.Duration(i) * 100 * time.Millisecond); !s.Equal(want) {
			t.Errorf("request %d starts at +%s, want +%s (FIFO, one service time apart)", i, s.Sub(t0), want.Sub(t0))
		}
	}
	if got := m.Queued(t0); got != 3 {
		t.Errorf("queued = %d, want 3 (one in service)", got)
	}
	if _, ok := m.Reserve(t0); ok {
		t.Fatal("fifth request admitted into a full queue of 3")
	}
	// Once the first waiter has started, there is room for one more.
	if _, ok := m.Reserve(t0.Add(150 * time.Millisecond)); !ok {
		t.Fatal("request rejected after the queue drained by one")
	}
	if got := m.Queued(t0.Add(10 * time.Second)); got != 0 {
		t.Errorf("queued long after = %d, want 0", got)
	}
}

func TestModelNoQueue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewModel(1, 0, time.Second)
	if _, ok := m.Reserve(t0); !ok {
		t.Fatal("idle server rejected a request")
	}
	if _, ok := m.Reserve(t0.Add(500 * time.Millisecond)); ok {
		t.Fatal("busy server without a queue admitted a second request")
	}
	if _, ok := m.Reserve(t0.Add(time.Second)); !ok {
		t.Fatal("server free again rejected a request")
	}
}

func TestModelPrunesHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewModel(1000, 10, 100*time.Millisecond)
	for i := range 10000 {
		m.Reserve(t0.Add(time.Duration(i) * 2 * time.Millisecond))
	}
	m.mu.Lock()
	n := len(m.starts)
	m.mu.Unlock()
	if n > 60 {
		t.Fatalf("model keeps %d reservations, want about window/interarrival = 50", n)
	}
}

func every(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i) * d
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "defaults are valid", mutate: func(*Config) {}},
		{name: "zero capacity", mutate: func(c *Config) { c.Capacity = 0 }, wantErr: "capacity (0) must be"},
		{name: "negative queue", mutate: func(c *Config) { c.QueueSize = -1 }, wantErr: "queue (-1) must be >= 0"},
		{name: "work beyond service time", mutate: func(c *Config) { c.Capacity = 100; c.Work = 20 * time.Millisecond }, wantErr: "work (20ms) must be <= 1/capacity (10ms)"},
		{name: "bad listen", mutate: func(c *Config) { c.Listen = "8080" }, wantErr: `listen ("8080") must be host:port`},
		{name: "zero window", mutate: func(c *Config) { c.UtilWindow = 0 }, wantErr: "util-window (0s) must be > 0"},
		{name: "zero shutdown timeout", mutate: func(c *Config) { c.ShutdownTimeout = 0 }, wantErr: "shutdown-timeout (0s) must be > 0"},
		{name: "no clock", mutate: func(c *Config) { c.Clock = nil }, wantErr: "clock is required"},
		{name: "zero config", mutate: func(c *Config) { *c = Config{} }, wantErr: "listen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

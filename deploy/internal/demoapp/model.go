package demoapp

import (
	"sort"
	"sync"
	"time"
)

// Clock is the capacity model's time source, injectable for tests.
type Clock interface{ Now() time.Time }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Model is one instance's capacity: a virtual single server with a fixed
// service time of 1/capacity, fed FIFO from a bounded queue. It computes
// schedules only; callers do the waiting, so tests can drive it with any
// clock and no sleeps.
//
// Hand-written rather than golang.org/x/time/rate: a token bucket says when a
// request may start but not how busy the server was over a window, and the
// utilisation is the whole point of the demo.
type Model struct {
	service  time.Duration
	maxQueue int
	window   time.Duration

	mu       sync.Mutex
	nextFree time.Time
	// starts holds service start times, non-decreasing (FIFO), of every
	// reservation that may still overlap the utilisation window.
	starts []time.Time
}

// NewModel returns a model serving capacity requests/s with at most
// maxQueue waiting, measuring utilisation over window.
func NewModel(capacity float64, maxQueue int, window time.Duration) *Model {
	return &Model{
		service:  time.Duration(float64(time.Second) / capacity),
		maxQueue: maxQueue,
		window:   window,
	}
}

// Service is the modelled time one request occupies the server.
func (m *Model) Service() time.Duration { return m.service }

// Reserve books the next free service slot for a request arriving at now
// and returns when its service starts. ok is false when the queue is full;
// nothing is booked then. A booked slot stays booked even if the caller
// gives up, as a request already read off the socket still costs a worker.
func (m *Model) Reserve(now time.Time) (start time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	if m.waiting(now) >= m.maxQueue && m.nextFree.After(now) {
		return time.Time{}, false
	}
	start = m.nextFree
	if start.Before(now) {
		start = now
	}
	m.nextFree = start.Add(m.service)
	m.starts = append(m.starts, start)
	return start, true
}

// Queued is how many booked requests have not started service at now.
func (m *Model) Queued(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waiting(now)
}

// Utilization is the share of the window ending at now that the server was
// busy, 0–100.
func (m *Model) Utilization(now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	from := now.Add(-m.window)
	var busy time.Duration
	for _, s := range m.starts {
		if !s.Before(now) {
			break
		}
		lo, hi := s, s.Add(m.service)
		if lo.Before(from) {
			lo = from
		}
		if hi.After(now) {
			hi = now
		}
		if hi.After(lo) {
			busy += hi.Sub(lo)
		}
	}
	u := 100 * float64(busy) / float64(m.window)
	return min(u, 100)
}

// waiting counts starts after now; m.mu is held.
func (m *Model) waiting(now time.Time) int {
	i := sort.Search(len(m.starts), func(i int) bool { return m.starts[i].After(now) })
	return len(m.starts) - i
}

// prune drops reservations that ended before the window; m.mu is held.
func (m *Model) prune(now time.Time) {
	from := now.Add(-m.window)
	i := sort.Search(len(m.starts), func(i int) bool { return m.starts[i].Add(m.service).After(from) })
	switch {
	case i == 0:
	case i > len(m.starts)/2:
		// Compact only once half is stale, so each request pays O(1)
		// amortised rather than a copy of the whole window.
		m.starts = append(m.starts[:0], m.starts[i:]...)
	default:
		m.starts = m.starts[i:]
	}
}

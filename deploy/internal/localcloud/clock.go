package localcloud

import (
	"sync"
	"time"
)

// Clock is the single time source of the local cloud: boot delays, lifecycle
// hook timeouts, activity timestamps and alarm evaluation all read it, so a
// test that advances it sees every time-driven behaviour move together.
type Clock interface {
	Now() time.Time
}

// OffsetClock is real time plus an adjustable offset. Tests move it forward
// (or set it) through the /_localcloud/clock hook instead of sleeping.
type OffsetClock struct {
	mu     sync.Mutex
	offset time.Duration
	real   func() time.Time
}

// NewOffsetClock returns a clock that starts at real time.
func NewOffsetClock() *OffsetClock { return &OffsetClock{real: time.Now} }

// Now implements Clock.
func (c *OffsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.real().Add(c.offset)
}

// Advance moves the clock forward by d (d must be >= 0: time never runs back,
// because alarms and activities assume monotonic timestamps).
func (c *OffsetClock) Advance(d time.Duration) {
	if d < 0 {
		return
	}
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// Set moves the clock to t if t is later than now; it reports whether it did.
func (c *OffsetClock) Set(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.real().Add(c.offset)
	if t.Before(now) {
		return false
	}
	c.offset += t.Sub(now)
	return true
}

package balance

import (
	"math"
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds, in seconds, of the latency histogram
// every backend keeps; the last bucket is +Inf.
var LatencyBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

var latencyBoundsNs = func() []int64 {
	out := make([]int64, len(LatencyBounds))
	for i, s := range LatencyBounds {
		out[i] = int64(s * 1e9)
	}
	return out
}()

// Backend is one upstream. Its fields are atomics so the request path never
// locks.
type Backend struct {
	ID   string
	Addr string
	// Transport is owned by the proxy (set in Hooks.Added).
	Transport any

	state         atomic.Int32
	load          atomic.Uint64 // float64 bits
	healthy       atomic.Bool
	healthErr     atomic.Pointer[string]
	inflight      atomic.Int64
	removed       atomic.Bool
	drainDeadline atomic.Int64

	rampStart int64
	rampUntil atomic.Int64

	consecFail   atomic.Int32
	ejectedUntil atomic.Int64
	lastEjectEnd atomic.Int64
	ejectCount   atomic.Int32
	// Ejections counts ejections of this backend.
	Ejections atomic.Uint64

	requests atomic.Uint64
	errors   atomic.Uint64
	latSum   atomic.Uint64 // ns
	latHist  [17]atomic.Uint64
}

// State returns the feed state.
func (be *Backend) State() State { return State(be.state.Load()) }

// InFlight is the number of requests picked and not yet Done.
func (be *Backend) InFlight() int64 { return be.inflight.Load() }

// Removed reports whether the backend left the set.
func (be *Backend) Removed() bool { return be.removed.Load() }

// Load is the reported load weight.
func (be *Backend) Load() float64 { return math.Float64frombits(be.load.Load()) }

// DrainDeadline is when long-lived streams must end (zero when unset).
func (be *Backend) DrainDeadline() time.Time {
	if ns := be.drainDeadline.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Healthy reports the last active health check result.
func (be *Backend) Healthy() bool { return be.healthy.Load() }

// HealthError is the last failed check's reason ("" when healthy).
func (be *Backend) HealthError() string {
	if p := be.healthErr.Load(); p != nil {
		return *p
	}
	return ""
}

// SetHealth records an active health check result.
func (be *Backend) SetHealth(ok bool, reason string) {
	be.healthy.Store(ok)
	if ok {
		be.healthErr.Store(nil)
		return
	}
	be.healthErr.Store(&reason)
}

// EjectedUntil is the end of the current ejection, zero when never ejected.
func (be *Backend) EjectedUntil() time.Time {
	if ns := be.ejectedUntil.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func (be *Backend) setLoad(l float64) {
	if l <= 0 || math.IsNaN(l) || math.IsInf(l, 0) {
		l = 1
	}
	be.load.Store(math.Float64bits(l))
}

func (be *Backend) eligible(clock func() int64) bool {
	if State(be.state.Load()) == Draining || !be.healthy.Load() {
		return false
	}
	if u := be.ejectedUntil.Load(); u != 0 && u > clock() {
		return false
	}
	return true
}

// ramp is the slow-start factor in [0.1, 1].
func (be *Backend) ramp(clock func() int64) float64 {
	until := be.rampUntil.Load()
	if until == 0 {
		return 1
	}
	now := clock()
	if now >= until {
		be.rampUntil.Store(0)
		return 1
	}
	f := float64(now-be.rampStart) / float64(until-be.rampStart)
	return max(0.1, f)
}

func (be *Backend) score(clock func() int64) float64 {
	return float64(be.inflight.Load()+1) * be.Load() / be.ramp(clock)
}

func (be *Backend) observe(d time.Duration) {
	ns := int64(d)
	be.latSum.Add(uint64(max(ns, 0)))
	i := 0
	for i < len(latencyBoundsNs) && ns > latencyBoundsNs[i] {
		i++
	}
	be.latHist[i].Add(1)
}

// Stats is a cumulative snapshot of a backend's counters.
type Stats struct {
	Requests uint64
	Errors   uint64
	InFlight int64
	LatSumNs uint64
	// Buckets holds per-bucket (not cumulative) counts, one per
	// LatencyBounds entry plus +Inf.
	Buckets [17]uint64
}

// Stats returns the backend's counters since it was added.
func (be *Backend) Stats() Stats {
	s := Stats{
		Requests: be.requests.Load(),
		Errors:   be.errors.Load(),
		InFlight: be.inflight.Load(),
		LatSumNs: be.latSum.Load(),
	}
	for i := range be.latHist {
		s.Buckets[i] = be.latHist[i].Load()
	}
	return s
}

// Sub returns s minus an earlier snapshot (InFlight stays current).
func (s Stats) Sub(prev Stats) Stats {
	d := s
	d.Requests -= prev.Requests
	d.Errors -= prev.Errors
	d.LatSumNs -= prev.LatSumNs
	for i := range d.Buckets {
		d.Buckets[i] -= prev.Buckets[i]
	}
	return d
}

// Quantile estimates the q-quantile latency (seconds) from the buckets,
// taking each bucket's upper bound; +Inf reports the last finite bound.
func (s Stats) Quantile(q float64) float64 {
	var total uint64
	for _, c := range s.Buckets {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var acc uint64
	for i, c := range s.Buckets {
		acc += c
		if acc >= rank {
			if i < len(LatencyBounds) {
				return LatencyBounds[i]
			}
			break
		}
	}
	return LatencyBounds[len(LatencyBounds)-1]
}

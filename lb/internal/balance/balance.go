package balance

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoBackend is wrapped by every "nothing to pick" error.
var ErrNoBackend = errors.New("no healthy backend")

// Policy chooses how Pick selects among eligible backends.
type Policy int

const (
	// P2C picks two eligible backends at random and keeps the one with the
	// lower (in-flight+1) × load ÷ ramp score.
	P2C Policy = iota
	// RoundRobin cycles through eligible backends; slow start skips a
	// ramping backend with probability 1-ramp.
	RoundRobin
	// LeastOutstanding scans every eligible backend for the lowest score.
	LeastOutstanding
)

// ParsePolicy maps a flag value to a Policy.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "p2c", "":
		return P2C, nil
	case "round-robin", "rr":
		return RoundRobin, nil
	case "least-outstanding", "lo":
		return LeastOutstanding, nil
	}
	return 0, fmt.Errorf("policy %q: must be p2c, round-robin or least-outstanding", s)
}

func (p Policy) String() string {
	switch p {
	case RoundRobin:
		return "round-robin"
	case LeastOutstanding:
		return "least-outstanding"
	}
	return "p2c"
}

// State is a backend's feed state.
type State int32

const (
	Warming State = iota + 1
	Active
	Draining
)

func (s State) String() string {
	switch s {
	case Warming:
		return "warming"
	case Active:
		return "active"
	case Draining:
		return "draining"
	}
	return "unknown"
}

// Config tunes a Balancer. Start from DefaultConfig and override fields.
type Config struct {
	Fleet  string
	Policy Policy
	// SlowStart ramps a new backend's weight from 10 % to 100 % over this
	// long; 0 disables it.
	SlowStart time.Duration
	// EjectConsecutive consecutive 5xx or connect failures eject a backend.
	EjectConsecutive int
	// EjectBase is the first ejection's length; each further one doubles it
	// up to EjectMax.
	EjectBase time.Duration
	EjectMax  time.Duration
	// MaxEjectPercent caps the share of backends ejected at once.
	MaxEjectPercent int
	// RetryBudgetPercent bounds concurrent retries to this share of active
	// requests, with MinRetries always allowed.
	RetryBudgetPercent int
	MinRetries         int
	// Now is the clock; tests inject a fake one.
	Now func() time.Time
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Fleet:              "default",
		Policy:             P2C,
		EjectConsecutive:   5,
		EjectBase:          30 * time.Second,
		EjectMax:           5 * time.Minute,
		MaxEjectPercent:    50,
		RetryBudgetPercent: 20,
		MinRetries:         3,
		Now:                time.Now,
	}
}

// Validate reports the first bad field, naming it and the reason. It only
// checks.
func (c Config) Validate() error {
	switch {
	case c.Fleet == "":
		return errors.New("fleet: must not be empty")
	case c.SlowStart < 0:
		return fmt.Errorf("slow-start (%s) must be >= 0", c.SlowStart)
	case c.EjectConsecutive < 1:
		return fmt.Errorf("eject-consecutive (%d) must be >= 1", c.EjectConsecutive)
	case c.EjectBase <= 0:
		return fmt.Errorf("eject-base (%s) must be > 0", c.EjectBase)
	case c.EjectMax < c.EjectBase:
		return fmt.Errorf("eject-max (%s) must be >= eject-base (%s)", c.EjectMax, c.EjectBase)
	case c.MaxEjectPercent < 0 || c.MaxEjectPercent > 100:
		return fmt.Errorf("max-eject-percent (%d) must be within 0..100", c.MaxEjectPercent)
	case c.RetryBudgetPercent < 0 || c.RetryBudgetPercent > 100:
		return fmt.Errorf("retry-budget-percent (%d) must be within 0..100", c.RetryBudgetPercent)
	case c.MinRetries < 0:
		return fmt.Errorf("min-retries (%d) must be >= 0", c.MinRetries)
	case c.Now == nil:
		return errors.New("now: the clock must be set")
	}
	return nil
}

// Spec is a backend as the feed or the static list describes it.
type Spec struct {
	ID    string
	Addr  string
	State State
	// Load is the relative load weight; 1 is nominal, <= 0 means 1.
	Load          float64
	DrainDeadline time.Time
}

// Hooks let a transport attach and release per-backend state.
type Hooks struct {
	// Added runs before a new backend becomes pickable.
	Added func(*Backend)
	// Removed runs after a backend left the set (it may still have
	// requests in flight, which keep their pointer).
	Removed func(*Backend)
	// Draining runs when a backend turns draining.
	Draining func(*Backend)
}

// Balancer holds one fleet's backends.
type Balancer struct {
	cfg   Config
	hooks Hooks

	mu  sync.Mutex // serialises Update; readers use the atomic snapshot
	set atomic.Pointer[[]*Backend]

	version atomic.Uint64
	rr      atomic.Uint64
	active  atomic.Int64
	retries atomic.Int64

	lastErr atomic.Pointer[string]

	// Counters for metrics.
	RetriesTotal      atomic.Uint64
	BudgetExhausted   atomic.Uint64
	EjectionsTotal    atomic.Uint64
	NoBackendTotal    atomic.Uint64
	ejectionsRefused  atomic.Uint64
	removedWhileInUse atomic.Uint64
}

// New returns a Balancer; cfg must Validate.
func New(cfg Config, hooks Hooks) (*Balancer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Balancer{cfg: cfg, hooks: hooks}
	empty := []*Backend{}
	b.set.Store(&empty)
	return b, nil
}

// Config returns the effective configuration.
func (b *Balancer) Config() Config { return b.cfg }

// Backends returns the current set; callers must not modify it.
func (b *Balancer) Backends() []*Backend { return *b.set.Load() }

// Version is the feed version last applied with Update.
func (b *Balancer) Version() uint64 { return b.version.Load() }

// Update replaces the set. Backends keep their identity (and counters,
// ejection state, transports) across updates when their address is unchanged.
func (b *Balancer) Update(version uint64, specs []Spec) error {
	seen := make(map[string]bool, len(specs))
	for i, s := range specs {
		if s.Addr == "" {
			return fmt.Errorf("backend %d (%q): address must not be empty", i, s.ID)
		}
		if seen[s.Addr] {
			return fmt.Errorf("backend %d: address %s listed twice", i, s.Addr)
		}
		seen[s.Addr] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	old := *b.set.Load()
	byAddr := make(map[string]*Backend, len(old))
	for _, be := range old {
		byAddr[be.Addr] = be
	}
	next := make([]*Backend, 0, len(specs))
	var drained []*Backend
	for _, s := range specs {
		st := s.State
		if st == 0 {
			st = Active
		}
		be := byAddr[s.Addr]
		if be == nil {
			be = &Backend{ID: s.ID, Addr: s.Addr}
			if be.ID == "" {
				be.ID = s.Addr
			}
			be.healthy.Store(true)
			if b.cfg.SlowStart > 0 {
				be.rampStart = now.UnixNano()
				be.rampUntil.Store(now.Add(b.cfg.SlowStart).UnixNano())
			}
			if b.hooks.Added != nil {
				b.hooks.Added(be)
			}
		} else {
			delete(byAddr, s.Addr)
		}
		prev := State(be.state.Swap(int32(st)))
		if st == Draining && prev != Draining {
			drained = append(drained, be)
		}
		be.setLoad(s.Load)
		if !s.DrainDeadline.IsZero() {
			be.drainDeadline.Store(s.DrainDeadline.UnixNano())
		} else {
			be.drainDeadline.Store(0)
		}
		next = append(next, be)
	}
	b.set.Store(&next)
	b.version.Store(version)
	for _, be := range drained {
		if b.hooks.Draining != nil {
			b.hooks.Draining(be)
		}
	}
	for _, be := range byAddr {
		be.removed.Store(true)
		if be.InFlight() > 0 {
			b.removedWhileInUse.Add(1)
		}
		if b.hooks.Removed != nil {
			b.hooks.Removed(be)
		}
	}
	return nil
}

// Pick returns a backend for a new request, skipping exclude (the backends
// a retried request already failed on). The caller must call Done exactly
// once.
func (b *Balancer) Pick(exclude []*Backend) (*Backend, error) {
	set := *b.set.Load()
	n := len(set)
	if n == 0 {
		return nil, b.noBackend(set)
	}
	var now int64 // read the clock only when a backend needs it
	clock := func() int64 {
		if now == 0 {
			now = b.cfg.Now().UnixNano()
		}
		return now
	}
	var be *Backend
	switch b.cfg.Policy {
	case RoundRobin:
		start := int(b.rr.Add(1) % uint64(n))
		var fallback *Backend
		for i := range n {
			c := set[(start+i)%n]
			if excluded(c, exclude) || !c.eligible(clock) {
				continue
			}
			if fallback == nil {
				fallback = c
			}
			if r := c.ramp(clock); r < 1 && rand.Float64() > r {
				continue
			}
			be = c
			break
		}
		if be == nil {
			be = fallback
		}
	case LeastOutstanding:
		best := math.Inf(1)
		off := rand.IntN(n) // break ties at random so equal backends share
		for i := range n {
			c := set[(off+i)%n]
			if excluded(c, exclude) || !c.eligible(clock) {
				continue
			}
			if s := c.score(clock); s < best {
				best, be = s, c
			}
		}
	default:
		i := rand.IntN(n)
		a := nextEligible(set, i, exclude, clock)
		if a < 0 {
			break
		}
		j := rand.IntN(n)
		if j == a {
			j = (j + 1) % n
		}
		c := nextEligible(set, j, exclude, clock)
		be = set[a]
		if c >= 0 && c != a && set[c].score(clock) < be.score(clock) {
			be = set[c]
		}
	}
	if be == nil {
		return nil, b.noBackend(set)
	}
	be.inflight.Add(1)
	b.active.Add(1)
	return be, nil
}

// excluded reports whether c is among the few backends a request already
// failed on.
func excluded(c *Backend, exclude []*Backend) bool {
	for _, x := range exclude {
		if x == c {
			return true
		}
	}
	return false
}

func nextEligible(set []*Backend, from int, exclude []*Backend, clock func() int64) int {
	n := len(set)
	for k := range n {
		idx := (from + k) % n
		if c := set[idx]; !excluded(c, exclude) && c.eligible(clock) {
			return idx
		}
	}
	return -1
}

// Outcome is how a request ended on a backend.
type Outcome struct {
	// Status is the HTTP status (0 when no response arrived).
	Status int
	// ConnectFailed: the backend could not be reached.
	ConnectFailed bool
	// Failed: the request failed for another transport reason (reset,
	// timeout); it counts as an error but not towards ejection unless it
	// was a connect failure or a 5xx.
	Failed  bool
	Latency time.Duration
	// Err describes the failure for error messages and the report.
	Err string
}

// Done releases a backend picked with Pick and records the outcome.
func (b *Balancer) Done(be *Backend, o Outcome) {
	be.inflight.Add(-1)
	b.active.Add(-1)
	be.requests.Add(1)
	be.observe(o.Latency)
	bad := o.ConnectFailed || o.Status >= 500
	if bad || o.Failed {
		be.errors.Add(1)
		if o.Err != "" {
			msg := o.Err
			b.lastErr.Store(&msg)
		}
	}
	if !bad {
		if be.consecFail.Load() != 0 {
			be.consecFail.Store(0)
		}
		return
	}
	if int(be.consecFail.Add(1)) < b.cfg.EjectConsecutive {
		return
	}
	b.maybeEject(be)
}

func (b *Balancer) maybeEject(be *Backend) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now().UnixNano()
	if be.ejectedUntil.Load() > now {
		return
	}
	set := *b.set.Load()
	ejected := 0
	for _, c := range set {
		if c.ejectedUntil.Load() > now {
			ejected++
		}
	}
	if (ejected+1)*100 > b.cfg.MaxEjectPercent*len(set) {
		b.ejectionsRefused.Add(1)
		return
	}
	// Backoff: forget old ejections once a backend has behaved for a while.
	if last := be.lastEjectEnd.Load(); last != 0 && now-last > 2*int64(b.cfg.EjectMax) {
		be.ejectCount.Store(0)
	}
	k := be.ejectCount.Add(1)
	d := b.cfg.EjectBase << min(k-1, 20)
	if d > b.cfg.EjectMax || d <= 0 {
		d = b.cfg.EjectMax
	}
	be.ejectedUntil.Store(now + int64(d))
	be.lastEjectEnd.Store(now + int64(d))
	be.consecFail.Store(0)
	be.Ejections.Add(1)
	b.EjectionsTotal.Add(1)
}

// TryRetry reserves a retry from the budget; on true the caller must call
// RetryDone when the retry ends.
func (b *Balancer) TryRetry() bool {
	allowed := max(int64(b.cfg.MinRetries), b.active.Load()*int64(b.cfg.RetryBudgetPercent)/100)
	if b.retries.Add(1) > allowed {
		b.retries.Add(-1)
		b.BudgetExhausted.Add(1)
		return false
	}
	b.RetriesTotal.Add(1)
	return true
}

// NoteFreeRetry counts a retry that needs no budget: the request never
// reached a backend (connect failure, stale pooled connection), so
// replaying it adds no load a budget would have to protect.
func (b *Balancer) NoteFreeRetry() { b.RetriesTotal.Add(1) }

// RetryDone returns a retry reserved with TryRetry.
func (b *Balancer) RetryDone() { b.retries.Add(-1) }

// Active is the number of requests in flight over all backends.
func (b *Balancer) Active() int64 { return b.active.Load() }

// NoteError records the latest failure text for NoBackendError.
func (b *Balancer) NoteError(msg string) { b.lastErr.Store(&msg) }

// NoBackendError says why nothing could be picked.
type NoBackendError struct {
	Fleet      string
	Registered int
	Healthy    int
	Draining   int
	Ejected    int
	Last       string
}

func (e *NoBackendError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "no healthy backend for fleet %s: %d registered, %d passed health checks", e.Fleet, e.Registered, e.Healthy)
	if e.Draining > 0 {
		fmt.Fprintf(&sb, ", %d draining", e.Draining)
	}
	if e.Ejected > 0 {
		fmt.Fprintf(&sb, ", %d ejected as outliers", e.Ejected)
	}
	if e.Last != "" {
		fmt.Fprintf(&sb, " (last: %s)", e.Last)
	}
	return sb.String()
}

func (e *NoBackendError) Unwrap() error { return ErrNoBackend }

func (b *Balancer) noBackend(set []*Backend) error {
	b.NoBackendTotal.Add(1)
	e := &NoBackendError{Fleet: b.cfg.Fleet, Registered: len(set)}
	now := b.cfg.Now().UnixNano()
	for _, c := range set {
		if c.healthy.Load() {
			e.Healthy++
		}
		if State(c.state.Load()) == Draining {
			e.Draining++
		}
		if c.ejectedUntil.Load() > now {
			e.Ejected++
		}
	}
	if p := b.lastErr.Load(); p != nil {
		e.Last = *p
	}
	return e
}

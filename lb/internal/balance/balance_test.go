package balance

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newBal returns a balancer over addrs from the default config, changed by
// mut (when set), on a fake clock.
func newBal(t testing.TB, mut func(*Config), addrs ...string) (*Balancer, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	cfg := DefaultConfig()
	cfg.Fleet, cfg.Now = "web", clk.Now
	if mut != nil {
		mut(&cfg)
	}
	b, err := New(cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	var specs []Spec
	for _, a := range addrs {
		specs = append(specs, Spec{Addr: a, State: Active})
	}
	if err := b.Update(1, specs); err != nil {
		t.Fatal(err)
	}
	return b, clk
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"defaults ok", func(*Config) {}, ""},
		{"empty fleet", func(c *Config) { c.Fleet = "" }, "fleet"},
		{"negative slow start", func(c *Config) { c.SlowStart = -time.Second }, "slow-start"},
		{"eject max below base", func(c *Config) { c.EjectMax = time.Second }, "eject-max"},
		{"eject percent", func(c *Config) { c.MaxEjectPercent = 101 }, "max-eject-percent"},
		{"budget", func(c *Config) { c.RetryBudgetPercent = -1 }, "retry-budget-percent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			err := c.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("unexpected %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestPoliciesSpreadEvenly(t *testing.T) {
	for _, p := range []Policy{P2C, RoundRobin, LeastOutstanding} {
		t.Run(p.String(), func(t *testing.T) {
			b, _ := newBal(t, func(c *Config) { c.Policy = p }, "a:1", "b:1", "c:1")
			counts := map[string]int{}
			// Keep 6 requests in flight, as a loaded proxy would.
			var open []*Backend
			for range 3000 {
				be, err := b.Pick(nil)
				if err != nil {
					t.Fatal(err)
				}
				counts[be.Addr]++
				open = append(open, be)
				if len(open) == 6 {
					b.Done(open[0], Outcome{Status: 200})
					open = open[1:]
				}
			}
			for a, c := range counts {
				if c < 900 || c > 1100 {
					t.Fatalf("%s got %d of 3000: %v", a, c, counts)
				}
			}
		})
	}
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	b, _ := newBal(t, nil, "a:1", "b:1")
	if err := b.Update(2, []Spec{{Addr: "a:1", Load: 1}, {Addr: "b:1", Load: 4}}); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for range 1000 {
		be, _ := b.Pick(nil)
		counts[be.Addr]++
		// Leave them in flight so scores grow.
	}
	if counts["a:1"] < 3*counts["b:1"] {
		t.Fatalf("load weight ignored: %v", counts)
	}
}

func TestDrainingAndUnhealthyGetNoPicks(t *testing.T) {
	var drained []string
	clk := &fakeClock{t: time.Unix(1000, 0)}
	cfg := DefaultConfig()
	cfg.Fleet, cfg.Now = "web", clk.Now
	b, err := New(cfg, Hooks{Draining: func(be *Backend) { drained = append(drained, be.Addr) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(1, []Spec{{Addr: "a:1"}, {Addr: "b:1", State: Draining}, {Addr: "c:1"}}); err != nil {
		t.Fatal(err)
	}
	b.Backends()[2].SetHealth(false, "connect refused c:1")
	for range 200 {
		be, err := b.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		if be.Addr != "a:1" {
			t.Fatalf("picked %s", be.Addr)
		}
		b.Done(be, Outcome{Status: 200})
	}
	if len(drained) != 1 || drained[0] != "b:1" {
		t.Fatalf("draining hook: %v", drained)
	}
	b.Backends()[0].SetHealth(false, "connect refused a:1")
	b.NoteError("connect refused 127.0.1.4:8080")
	_, err = b.Pick(nil)
	var nb *NoBackendError
	if !errors.As(err, &nb) || !errors.Is(err, ErrNoBackend) {
		t.Fatalf("got %v", err)
	}
	want := "no healthy backend for fleet web: 3 registered, 1 passed health checks, 1 draining (last: connect refused 127.0.1.4:8080)"
	if err.Error() != want {
		t.Fatalf("got %q\nwant %q", err.Error(), want)
	}
}

func TestEjectionBackoffCapAndRecovery(t *testing.T) {
	b, clk := newBal(t, func(c *Config) {
		c.EjectConsecutive = 3
		c.EjectBase = 10 * time.Second
		c.EjectMax = 40 * time.Second
		c.MaxEjectPercent = 50
	}, "a:1", "b:1", "c:1")
	set := b.Backends()
	fail := func(be *Backend, n int) {
		for range n {
			be.inflight.Add(1)
			b.active.Add(1)
			b.Done(be, Outcome{Status: 503})
		}
	}
	fail(set[0], 2)
	if !set[0].EjectedUntil().IsZero() {
		t.Fatal("ejected before threshold")
	}
	fail(set[0], 1)
	if got := set[0].EjectedUntil(); !got.Equal(clk.Now().Add(10 * time.Second)) {
		t.Fatalf("ejected until %v", got)
	}
	// Cap: a second ejection would exceed 50 % of 3.
	fail(set[1], 3)
	if !set[1].EjectedUntil().IsZero() {
		t.Fatal("max eject share ignored")
	}
	for range 100 {
		be, _ := b.Pick(nil)
		if be == set[0] {
			t.Fatal("picked ejected backend")
		}
		b.Done(be, Outcome{Status: 200})
	}
	clk.Add(11 * time.Second)
	seen := false
	for range 100 {
		be, _ := b.Pick(nil)
		seen = seen || be == set[0]
		b.Done(be, Outcome{Status: 200})
	}
	if !seen {
		t.Fatal("not recovered after ejection")
	}
	fail(set[0], 3)
	if got := set[0].EjectedUntil(); !got.Equal(clk.Now().Add(20 * time.Second)) {
		t.Fatalf("second ejection not doubled: %v", got.Sub(clk.Now()))
	}
	if b.EjectionsTotal.Load() != 2 {
		t.Fatalf("ejections %d", b.EjectionsTotal.Load())
	}
}

func TestSlowStartRamps(t *testing.T) {
	b, clk := newBal(t, func(c *Config) { c.SlowStart = 10 * time.Second; c.Policy = RoundRobin }, "a:1")
	clk.Add(20 * time.Second) // a:1 is fully ramped
	if err := b.Update(2, []Spec{{Addr: "a:1"}, {Addr: "b:1"}}); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		n := 0
		for range 2000 {
			be, _ := b.Pick(nil)
			if be.Addr == "b:1" {
				n++
			}
			b.Done(be, Outcome{Status: 200})
		}
		return n
	}
	early := count()
	clk.Add(11 * time.Second)
	late := count()
	if early > 400 || late < 900 {
		t.Fatalf("ramp: early %d late %d of 2000", early, late)
	}
}

func TestRetryBudget(t *testing.T) {
	b, _ := newBal(t, func(c *Config) { c.RetryBudgetPercent = 20; c.MinRetries = 1 }, "a:1")
	for range 50 {
		if _, err := b.Pick(nil); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for range 30 {
		if b.TryRetry() {
			got++
		}
	}
	if got != 10 {
		t.Fatalf("budget allowed %d retries with 50 active, want 10", got)
	}
	if b.BudgetExhausted.Load() != 20 {
		t.Fatalf("exhausted %d", b.BudgetExhausted.Load())
	}
	b.RetryDone()
	if !b.TryRetry() {
		t.Fatal("released retry not reusable")
	}
}

func TestUpdateKeepsIdentityAndRejectsDuplicates(t *testing.T) {
	var removed []string
	cfg := DefaultConfig()
	cfg.Fleet = "web"
	b, err := New(cfg, Hooks{Removed: func(be *Backend) { removed = append(removed, be.Addr) }})
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Update(1, []Spec{{Addr: "a:1"}, {Addr: "b:1"}})
	a := b.Backends()[0]
	_ = b.Update(2, []Spec{{Addr: "a:1", Load: 2}})
	if b.Backends()[0] != a || a.Load() != 2 || fmt.Sprint(removed) != "[b:1]" || b.Version() != 2 {
		t.Fatalf("identity %v load %v removed %v", b.Backends()[0] == a, a.Load(), removed)
	}
	if err := b.Update(3, []Spec{{Addr: "x:1"}, {Addr: "x:1"}}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate accepted: %v", err)
	}
}

func TestQuantile(t *testing.T) {
	b, _ := newBal(t, nil, "a:1")
	be := b.Backends()[0]
	for i := range 100 {
		be.observe(time.Duration(i) * 100 * time.Microsecond) // 0..9.9 ms
	}
	s := be.Stats()
	if p50 := s.Quantile(0.5); p50 != 0.005 {
		t.Fatalf("p50 %v", p50)
	}
	if p99 := s.Quantile(0.99); p99 != 0.01 {
		t.Fatalf("p99 %v", p99)
	}
}

func BenchmarkPickDone(b *testing.B) {
	for _, p := range []Policy{P2C, RoundRobin, LeastOutstanding} {
		b.Run(p.String(), func(b *testing.B) {
			bal, _ := newBal(b, func(c *Config) { c.Policy = p }, "a:1", "b:1", "c:1", "d:1", "e:1")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					be, err := bal.Pick(nil)
					if err != nil {
						b.Fatal(err)
					}
					bal.Done(be, Outcome{Status: 200, Latency: time.Millisecond})
				}
			})
		})
	}
}

package balance

import (
	"errors"
	"testing"
)

func TestAttempt(t *testing.T) {
	fail := Outcome{Failed: true, Err: "backend x: reset"}
	t.Run("unsent retries go to backends not tried yet, for free, at most MaxUnsentRetries times", func(t *testing.T) {
		b, _ := newBal(t, func(c *Config) { c.MinRetries = 0; c.RetryBudgetPercent = 0 }, "a:1", "b:1", "c:1", "d:1", "e:1", "f:1", "g:1")
		a := b.Attempt()
		defer a.Close()
		seen := map[*Backend]bool{}
		tries := 0
		for {
			be, err := a.Pick()
			if err != nil {
				t.Fatal(err)
			}
			if seen[be] {
				t.Fatalf("try %d went back to %s, which already failed", tries, be.Addr)
			}
			seen[be] = true
			tries++
			if !a.Failed(be, Outcome{ConnectFailed: true, Err: "connect refused " + be.Addr}, Unsent) {
				break
			}
		}
		if tries != MaxUnsentRetries+1 {
			t.Fatalf("%d tries, want %d", tries, MaxUnsentRetries+1)
		}
		if b.RetriesTotal.Load() != MaxUnsentRetries || b.BudgetExhausted.Load() != 0 {
			t.Fatalf("retries %d, exhausted %d: unsent retries must be counted and free", b.RetriesTotal.Load(), b.BudgetExhausted.Load())
		}
		if !a.Tried() || a.Last() == "" || a.Last()[len(a.Last())-len("(fleet web)"):] != "(fleet web)" {
			t.Fatalf("Last() = %q, want the failure naming the fleet", a.Last())
		}
		if b.Active() != 0 {
			t.Fatalf("%d requests still active: Failed must call Done", b.Active())
		}
	})
	// A scale-in can leave an LB holding several terminated backends until
	// its next set arrives: a request must get past all of them. With one
	// excluded backend at a time, the third try could go back to the first
	// dead one and fail (a 502 "connect refused" seen during scale-in).
	t.Run("gets past every dead backend to the live one", func(t *testing.T) {
		b, _ := newBal(t, func(c *Config) { c.MinRetries = 0; c.RetryBudgetPercent = 0 }, "dead1:1", "dead2:1", "dead3:1", "dead4:1", "live:1")
		for i := 0; i < 200; i++ {
			a := b.Attempt()
			for {
				be, err := a.Pick()
				if err != nil {
					t.Fatalf("request %d: %v after %s", i, err, a.Last())
				}
				if be.Addr == "live:1" {
					b.Done(be, Outcome{Status: 200})
					break
				}
				if !a.Failed(be, Outcome{ConnectFailed: true, Err: "connect refused " + be.Addr}, Unsent) {
					t.Fatalf("request %d failed on dead backends: %s", i, a.Last())
				}
			}
			a.Close()
		}
	})
	t.Run("replay draws on the budget and Close returns it", func(t *testing.T) {
		b, _ := newBal(t, func(c *Config) { c.MinRetries = 1; c.RetryBudgetPercent = 0 }, "a:1", "b:1")
		a := b.Attempt()
		be, _ := a.Pick()
		if !a.Failed(be, fail, Replay) {
			t.Fatal("first replay refused with a budget of 1")
		}
		other := b.Attempt()
		be2, _ := other.Pick()
		if other.Failed(be2, fail, Replay) {
			t.Fatal("second concurrent replay allowed beyond a budget of 1")
		}
		other.Close()
		a.Close()
		third := b.Attempt()
		defer third.Close()
		be3, _ := third.Pick()
		if !third.Failed(be3, fail, Replay) {
			t.Fatal("budget not returned by Close")
		}
	})
	t.Run("stale may go back to the only backend", func(t *testing.T) {
		b, _ := newBal(t, nil, "a:1")
		a := b.Attempt()
		defer a.Close()
		be, _ := a.Pick()
		if !a.Failed(be, fail, Stale) {
			t.Fatal("stale retry refused")
		}
		if again, err := a.Pick(); err != nil || again != be {
			t.Fatalf("Pick after Stale = %v, %v; want the only backend again", again, err)
		}
	})
	t.Run("no retry after NoRetry, and no backend says so", func(t *testing.T) {
		b, _ := newBal(t, nil, "a:1")
		a := b.Attempt()
		defer a.Close()
		be, _ := a.Pick()
		if a.Failed(be, fail, NoRetry) {
			t.Fatal("NoRetry retried")
		}
		empty, _ := newBal(t, nil)
		e := empty.Attempt()
		if _, err := e.Pick(); !errors.Is(err, ErrNoBackend) || e.Tried() {
			t.Fatalf("Pick on an empty set: %v, tried %v", err, e.Tried())
		}
	})
}

package enroll

import (
	"testing"
	"time"
)

func TestRenewAt(t *testing.T) {
	req, _ := NewRequest("i-0abc", nil)
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	leaf := issue(t, req.Key, "agent", "i-0abc", t0, t0.Add(24*time.Hour))[0]
	cases := []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{"fresh", t0.Add(time.Hour), t0.Add(16 * time.Hour)},
		{"just before", t0.Add(16*time.Hour - time.Second), t0.Add(16 * time.Hour)},
		{"past it: now", t0.Add(20 * time.Hour), t0.Add(20 * time.Hour)},
		{"expired: now", t0.Add(48 * time.Hour), t0.Add(48 * time.Hour)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := RenewAt(leaf, c.now); !got.Equal(c.want) {
				t.Fatalf("RenewAt = %s, want %s", got, c.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	req, _ := NewRequest("i-0abc", nil)
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	day := func(role, name string) State {
		return State{Key: req.Key, Chain: issue(t, req.Key, role, name, t0, t0.Add(24*time.Hour)), Nonce: req.Nonce}
	}
	valid := day("agent", "i-0abc")
	cases := []struct {
		name string
		st   State
		id   string
		now  time.Time
		want Action
	}{
		{"nothing stored", State{}, "i-0abc", t0, Enroll},
		{"nonce only", State{Nonce: req.Nonce}, "i-0abc", t0, Reenroll},
		{"key and nonce, answer lost", State{Key: req.Key, Nonce: req.Nonce}, "i-0abc", t0, Reenroll},
		{"fresh certificate", valid, "i-0abc", t0.Add(time.Hour), Use},
		{"just before two thirds", valid, "i-0abc", t0.Add(16*time.Hour - time.Nanosecond), Use},
		{"at two thirds", valid, "i-0abc", t0.Add(16 * time.Hour), Renew},
		{"just before expiry", valid, "i-0abc", t0.Add(24*time.Hour - time.Nanosecond), Renew},
		{"at expiry", valid, "i-0abc", t0.Add(24 * time.Hour), Reenroll},
		{"offline for a week", valid, "i-0abc", t0.Add(7 * 24 * time.Hour), Reenroll},
		{"clock behind NotBefore", valid, "i-0abc", t0.Add(-time.Minute), Use},
		{"certificate of another instance", valid, "i-0def", t0.Add(time.Hour), Enroll},
		{"certificate of another role", day("operator", "i-0abc"), "i-0abc", t0.Add(time.Hour), Enroll},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.st, c.id, c.now)
			if d.Action != c.want {
				t.Fatalf("Decide = %s (%s), want %s", d.Action, d.Reason, c.want)
			}
			if d.Reason == "" {
				t.Fatal("no reason given")
			}
			if c.st.Leaf() != nil && d.Action != Enroll && d.RenewAt.IsZero() {
				t.Fatal("RenewAt not set with a certificate")
			}
		})
	}
}

package publish

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// raftStub stands in for the raft-committed watermark: it records commits
// and can fail them (a leader that lost its leadership).
type raftStub struct {
	mu       sync.Mutex
	commits  []time.Time
	fail     bool
	attempts int
}

func (r *raftStub) commit(_ context.Context, start time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.fail {
		return errors.New("not the leader")
	}
	r.commits = append(r.commits, start)
	return nil
}

func (r *raftStub) last() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.commits) == 0 {
		return time.Time{}
	}
	return r.commits[len(r.commits)-1]
}

func sentPeriods(t *testing.T, s *cborServer) []time.Time {
	t.Helper()
	var out []time.Time
	for _, r := range s.putRequests() {
		ts, err := cbor.AsTime(r.datums[0]["Timestamp"])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ts.UTC())
	}
	return out
}

func TestPublishRefusesOldAndMisalignedPeriods(t *testing.T) {
	p := newTestPublisher(t, nil, nil)
	p.Restore(t0)
	tests := []struct {
		name  string
		start time.Time
		want  error
	}{
		{"the restored period", t0, ErrAlreadyPublished},
		{"before it", t0.Add(-10 * time.Second), ErrAlreadyPublished},
		{"misaligned", t0.Add(15 * time.Second), ErrMisaligned},
		{"the next one", t0.Add(10 * time.Second), nil},
		{"the same again", t0.Add(10 * time.Second), ErrAlreadyPublished},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := p.Publish(Period{Start: tt.start}); !errors.Is(err, tt.want) {
				t.Fatalf("Publish = %v, want %v", err, tt.want)
			}
		})
	}
	bad := []struct {
		name   string
		fleets []FleetStats
		want   string
	}{
		{"no fleet name", []FleetStats{{Group: "g"}}, "bad period: fleets[0].fleet: must not be empty"},
		{"no group", []FleetStats{{Fleet: "web"}}, `bad period: fleets[0].group (fleet "web"): must not be empty`},
		{"fleet twice", []FleetStats{{Fleet: "web", Group: "g"}, {Fleet: "web", Group: "g"}}, `bad period: fleets[1].fleet: "web" listed twice`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Publish(Period{Start: t0.Add(time.Hour), Fleets: tt.fleets})
			if !errors.Is(err, ErrBadPeriod) || err.Error() != tt.want {
				t.Fatalf("Publish = %v, want %q", err, tt.want)
			}
		})
	}
	if got := p.NextPeriod(time.Now()); !got.Equal(t0.Add(20 * time.Second)) {
		t.Errorf("NextPeriod = %v", got)
	}
	fresh := newTestPublisher(t, nil, nil)
	if got := fresh.NextPeriod(t0.Add(25 * time.Second)); !got.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("fresh NextPeriod = %v, want the last complete period", got)
	}
}

// TestWatermarkAcrossLeaderChange: leader A commits each period before
// sending it; B restores A's committed watermark and publishes from the next
// period, so across the change no period is sent twice and none is missing.
func TestWatermarkAcrossLeaderChange(t *testing.T) {
	s := &cborServer{}
	cw := startCBOR(t, s, 1)
	raft := &raftStub{}

	a := newTestPublisher(t, cw, func(c *Config) { c.Commit = raft.commit })
	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	for i := range 3 {
		if err := a.Publish(Period{Start: t0.Add(time.Duration(i) * 10 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "A to send three periods", func() bool { return len(s.putRequests()) == 3 })
	cancelA()
	<-doneA
	if !raft.last().Equal(t0.Add(20*time.Second)) || !a.Committed().Equal(raft.last()) {
		t.Fatalf("committed %v (A says %v), want %v", raft.last(), a.Committed(), t0.Add(20*time.Second))
	}

	b := newTestPublisher(t, cw, func(c *Config) { c.Commit = raft.commit })
	b.Restore(raft.last())
	next := b.NextPeriod(time.Now())
	if !next.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("B's next period = %v", next)
	}
	if err := b.Publish(Period{Start: t0.Add(20 * time.Second)}); !errors.Is(err, ErrAlreadyPublished) {
		t.Fatalf("B republished A's last period: %v", err)
	}
	ctxB, cancelB := context.WithCancel(context.Background())
	doneB := make(chan error, 1)
	go func() { doneB <- b.Run(ctxB) }()
	defer func() { cancelB(); <-doneB }()
	if err := b.Publish(Period{Start: next}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "B to send", func() bool { return len(s.putRequests()) == 4 })
	got := sentPeriods(t, s)
	for i, ts := range got {
		if want := t0.Add(time.Duration(i) * 10 * time.Second); !ts.Equal(want) {
			t.Errorf("request %d carried period %v, want %v", i, ts, want)
		}
	}
}

// TestNothingIsSentWithoutACommit: a leader that cannot commit the watermark
// (it lost leadership) must not send the period.
func TestNothingIsSentWithoutACommit(t *testing.T) {
	s := &cborServer{}
	cw := startCBOR(t, s, 1)
	raft := &raftStub{fail: true}
	p := newTestPublisher(t, cw, func(c *Config) { c.Commit = raft.commit })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if err := p.Publish(Period{Start: t0}); err != nil {
		t.Fatal(err)
	}
	// The request stays queued while commits fail...
	eventually(t, 5*time.Second, "two failed commits", func() bool {
		raft.mu.Lock()
		defer raft.mu.Unlock()
		return raft.attempts >= 2
	})
	if n := len(s.putRequests()); n != 0 {
		t.Fatalf("%d requests sent without a committed watermark", n)
	}
	// Between attempts the request is back in the queue (during one it is
	// held by the sender), never dropped.
	eventually(t, 5*time.Second, "the period kept in the queue", func() bool { return p.QueueLen() == 1 })
	// ...and goes out once a commit succeeds.
	raft.mu.Lock()
	raft.fail = false
	raft.mu.Unlock()
	eventually(t, 5*time.Second, "the period to be sent", func() bool { return len(s.putRequests()) == 1 })
	cancel()
	<-done
	if !raft.last().Equal(t0) {
		t.Fatalf("committed %v", raft.last())
	}
}

package ingest

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestElectionSamplesReachTheNewLeader: while no leader is known, a
// follower keeps its agents' reports queued rather than dropping them, and
// when it wins the election they go into its own store, so the CloudWatch
// periods it rebuilds for the election hold them.
func TestElectionSamplesReachTheNewLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, f, _ := cluster2(t, nil)
		a, err := connect(t, nw, "F", hello("i-1", 1))
		if err != nil {
			t.Fatal(err)
		}
		a.every(t, time.Second, "cpu", 7.0)
		advance(2 * time.Second)
		// The leader dies: nobody is leader for 4 s.
		l.cluster.set(false, "")
		f.cluster.set(false, "")
		from := time.Now()
		advance(4 * time.Second)
		to := time.Now()
		f.cluster.set(true, "F")
		advance(2 * f.cfg.ForwardEvery)
		st, _ := f.svc.PeriodStats("web", from, to)
		if got := st["cpu"].Count; got < 3 {
			t.Fatalf("the new leader holds %d of the election's ~4 samples, want them kept", got)
		}
	})
}

// TestQueuedSamplesGoBeforeNewOnes: the first sample an agent sends to a
// node that just won goes into its store after what the node queued for that
// agent as a follower, not before (the ring refuses older samples after
// newer ones), even when the forward loop has not run yet.
func TestQueuedSamplesGoBeforeNewOnes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, f, _ := cluster2(t, nil)
		a, err := connect(t, nw, "F", hello("i-1", 1))
		if err != nil {
			t.Fatal(err)
		}
		l.cluster.set(false, "")
		f.cluster.set(false, "")
		from := time.Now()
		for range 3 {
			a.send(t, true, smp(time.Now(), "cpu", 5.0))
			advance(time.Second)
		}
		f.cluster.set(true, "F")
		// No time passes: the forward loop still sleeps.
		a.send(t, true, smp(time.Now(), "cpu", 9.0))
		synctest.Wait()
		st, _ := f.svc.PeriodStats("web", from, time.Now().Add(time.Second))
		if got := st["cpu"]; got.Count != 4 || got.Sum != 24 {
			t.Fatalf("the new leader holds %+v, want the 3 queued samples and the new one", got)
		}
	})
}

package cluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
)

func TestVerifyLeaderFencesTheTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := clustertest.Make(t, 3, clustertest.Options{})
		ctx := context.Background()
		leader := tc.Leader(t)
		if err := leader.ReadBarrier(ctx); err != nil {
			t.Fatal(err)
		}
		term := leader.LeaderTerm()
		if term == 0 {
			t.Fatal("a ready leader reports no term")
		}
		if err := leader.VerifyLeader(ctx, term); err != nil {
			t.Fatalf("leader of term %d: %v", term, err)
		}
		if err := leader.VerifyLeader(ctx, term-1); !errors.Is(err, cluster.ErrNotLeader) {
			t.Fatalf("an earlier term verified: %v", err)
		}
		for _, f := range tc.Followers(leader) {
			if f.LeaderTerm() != 0 {
				t.Fatalf("follower %s reports leader term %d", f.NodeID(), f.LeaderTerm())
			}
			if err := f.VerifyLeader(ctx, term); !errors.Is(err, cluster.ErrNotLeader) {
				t.Fatalf("follower %s verified term %d: %v", f.NodeID(), term, err)
			}
		}

		// Without a quorum the check fails rather than waiting forever,
		// and the deposed leader reports no term any more.
		for _, f := range tc.Followers(leader) {
			if err := f.Shutdown(); err != nil {
				t.Fatal(err)
			}
		}
		// A heartbeat answered just before a follower stopped may still
		// count for the first check after it (raft counts any reply that
		// arrives after the check was registered); the next one has only
		// the leader's own vote.
		err := leader.VerifyLeader(ctx, term)
		if err == nil {
			err = leader.VerifyLeader(ctx, term)
		}
		if !errors.Is(err, cluster.ErrNotLeader) {
			t.Fatalf("leader without a quorum verified twice: %v", err)
		}
		if got := leader.LeaderTerm(); got != 0 {
			t.Fatalf("leader without a quorum still reports term %d", got)
		}
	})
}

// TestCaughtUp: the leader and a follower that has applied what the leader
// committed are caught up; a node that has never heard from a leader is not,
// and says so.
func TestCaughtUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := clustertest.Make(t, 3, clustertest.Options{})
		leader := tc.Leader(t)
		if ok, why := leader.CaughtUp(); !ok {
			t.Fatalf("leader not caught up: %s", why)
		}
		for _, f := range tc.Followers(leader) {
			clustertest.Eventually(t, "follower caught up", func() bool { ok, _ := f.CaughtUp(); return ok })
		}
		for _, f := range tc.Followers(leader) {
			if err := f.Shutdown(); err != nil {
				t.Fatal(err)
			}
		}
		// Alone, the old leader steps down and knows no leader.
		clustertest.Await(t, "leader steps down", func() bool { return !leader.IsLeader() && leader.LeaderID() == "" }, leader)
		if ok, why := leader.CaughtUp(); ok || !strings.Contains(why, "has not heard from a leader") {
			t.Fatalf("a node with no leader: caught up %v (%q)", ok, why)
		}
	})
}

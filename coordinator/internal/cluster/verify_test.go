package cluster_test

import (
	"context"
	"errors"
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
		if err := leader.VerifyLeader(ctx, term); !errors.Is(err, cluster.ErrNotLeader) {
			t.Fatalf("leader without a quorum verified: %v", err)
		}
		if got := leader.LeaderTerm(); got != 0 {
			t.Fatalf("leader without a quorum still reports term %d", got)
		}
	})
}

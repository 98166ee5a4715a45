package node

import (
	"context"
	"testing"
)

func TestTermLoopsFollowLeadershipAndItsTerm(t *testing.T) {
	running := func(raftTerm uint64) *term {
		tm := &term{}
		tm.start(context.Background(), func(ctx context.Context) { <-ctx.Done() }, raftTerm)
		t.Cleanup(tm.end)
		return tm
	}
	for _, tc := range []struct {
		name              string
		t                 *term
		leader            bool
		cur               uint64
		wantStop, wantRun bool
	}{
		{"follower stays idle", &term{}, false, 3, false, false},
		{"new leader starts", &term{}, true, 3, false, true},
		{"leader keeps its loops", running(3), true, 3, false, false},
		{"lost leadership stops", running(3), false, 4, true, false},
		// Lost and won back between two looks: only the term tells.
		{"leader again in a newer term restarts", running(3), true, 5, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop, start := tc.t.step(tc.leader, tc.cur)
			if stop != tc.wantStop || start != tc.wantRun {
				t.Fatalf("step(%v, %d) = stop %v, start %v; want %v, %v", tc.leader, tc.cur, stop, start, tc.wantStop, tc.wantRun)
			}
		})
	}
}

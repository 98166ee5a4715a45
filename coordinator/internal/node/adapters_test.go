package node

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// The leader-only loops write through leaderStore: on a node that no longer
// leads, a decision must fail rather than be forwarded to the new leader,
// which would commit a choice made from the old leader's view.
func TestLeaderStoreNeverForwards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := clustertest.Make(t, 3, clustertest.Options{})
		leader := c.Leader(t)
		follower := c.Followers(leader)[0]
		ctx := context.Background()
		if _, err := (store{node: leader}).Apply(ctx, fsm.CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "web-asg", Min: 1, Max: 4, Desired: 2})); err != nil {
			t.Fatal(err)
		}
		dec := fsm.CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 3, Reason: "stale view", Source: fsm.SourceAuto})

		if _, err := (leaderStore{store{node: follower}}).Apply(ctx, dec); !errors.Is(err, cluster.ErrNotLeader) {
			t.Fatalf("leaderStore.Apply on a follower = %v, want ErrNotLeader", err)
		}
		if ds, _ := leader.FSM().Decisions("web", 0); len(ds) != 0 {
			t.Fatalf("a follower's leader-only write reached the log: %v", ds)
		}
		// The plain store, which ingestion uses, still forwards.
		if _, err := (store{node: follower}).Apply(ctx, dec); err != nil {
			t.Fatalf("store.Apply on a follower = %v, want it forwarded", err)
		}
		if ds, _ := leader.FSM().Decisions("web", 0); len(ds) != 1 {
			t.Fatalf("decisions after a forwarded write = %v, want 1", ds)
		}
	})
}

package node

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
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

// The publisher's watermarks are written only from the term its loops
// started in. Loops left over from an earlier term of this node (leadership
// lost and won back between two looks) must not move the watermark back
// below what the leader in between published: that would send those
// periods to CloudWatch twice.
func TestPublishWatermarksFencedByTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := clustertest.Make(t, 3, clustertest.Options{})
		leader := c.Leader(t)
		ctx := context.Background()
		if err := leader.ReadBarrier(ctx); err != nil {
			t.Fatal(err)
		}
		term := leader.LeaderTerm()
		if term == 0 {
			t.Fatal("leader has no ready term after its read barrier")
		}
		ls := leaderStore{store{node: leader}}
		newer, older := time.UnixMilli(1_700_000_020_000), time.UnixMilli(1_700_000_010_000)
		for _, commit := range []struct {
			key string
			fn  func(context.Context, time.Time) error
		}{{publish.WatermarkKey, ls.commitWatermark}, {publish.SettledKey, ls.commitSettled}} {
			if err := commit.fn(cloud.WithTerm(ctx, term), newer); err != nil {
				t.Fatalf("%s in the current term: %v", commit.key, err)
			}
			for name, stale := range map[string]context.Context{
				"an earlier term's loops": cloud.WithTerm(ctx, term-1),
				"no term":                 ctx,
			} {
				if err := commit.fn(stale, older); !errors.Is(err, cluster.ErrNotLeader) {
					t.Errorf("%s from %s = %v, want ErrNotLeader", commit.key, name, err)
				}
			}
			if v, ok := leader.FSM().Watermark(commit.key); !ok || v != newer.UnixMilli() {
				t.Errorf("%s = %d (set %v), want %d: a stale term moved it", commit.key, v, ok, newer.UnixMilli())
			}
		}
	})
}

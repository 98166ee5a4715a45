package cluster_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func createFleet(name string) []byte {
	return fsm.CreateFleet(&shoalv1.Fleet{Name: name, Asg: name + "-asg", Min: 1, Max: 3}).Encode()
}

func hasFleet(n *cluster.Node, name string) func() bool {
	return func() bool { _, err := n.FSM().Fleet(name); return err == nil }
}

func TestThreeNodeCluster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := clustertest.Make(t, 3, clustertest.Options{})
		ctx := context.Background()
		leader := tc.Leader(t)
		follower := tc.Followers(leader)[0]

		clustertest.Step(t, "follower write is forwarded", func() {
			r, idx, err := follower.Apply(ctx, createFleet("web"))
			if err != nil || r.Error() != nil || idx == 0 {
				t.Fatalf("apply on follower: %v %v idx=%d", err, r.Error(), idx)
			}
			if r.Fleet.GetName() != "web" || r.Fleet.GetCreateTime() == nil {
				t.Fatalf("result fleet = %v, want web with the leader's time", r.Fleet)
			}
			for _, n := range tc.Nodes {
				clustertest.Eventually(t, n.NodeID()+" to apply web", hasFleet(n, "web"))
			}
		})

		clustertest.Step(t, "rejections come back from the leader", func() {
			r, _, err := follower.Apply(ctx, createFleet("web"))
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(r.Error(), fsm.ErrExists) {
				t.Fatalf("duplicate through forwarding: %v", r.Error())
			}
		})

		clustertest.Step(t, "reads", func() {
			if err := leader.ReadBarrier(ctx); err != nil {
				t.Fatalf("leader read barrier: %v", err)
			}
			if err := follower.ReadBarrier(ctx); !errors.Is(err, cluster.ErrNotLeader) {
				t.Fatalf("follower read barrier: %v, want ErrNotLeader", err)
			}
			peers, err := follower.Peers()
			if err != nil || len(peers) != 3 {
				t.Fatalf("peers = %v, %v", peers, err)
			}
			for _, p := range peers {
				if p.RPCAddr == "" || !p.Voter {
					t.Fatalf("peer %+v lacks an rpc address or is not a voter", p)
				}
			}
		})

		clustertest.Step(t, "leader loss elects another and notifies it", func() {
			var subs []<-chan bool
			for _, n := range tc.Nodes {
				ch, cancel := n.Subscribe()
				defer cancel()
				subs = append(subs, ch)
			}
			if err := leader.Shutdown(); err != nil {
				t.Fatal(err)
			}
			next := tc.Leader(t, leader)
			for i, n := range tc.Nodes {
				if n == next {
					select {
					case v := <-subs[i]:
						if !v {
							t.Fatal("new leader was told false")
						}
					case <-time.After(clustertest.Timeout):
						t.Fatal("new leader got no notification")
					}
				}
			}
			r, _, err := next.Apply(ctx, createFleet("api"))
			if err != nil || r.Error() != nil {
				t.Fatalf("apply after failover: %v %v", err, r.Error())
			}
			if _, err := next.FSM().Fleet("web"); err != nil {
				t.Fatalf("acknowledged fleet lost in failover: %v", err)
			}
		})

		clustertest.Step(t, "no quorum means no leader", func() {
			rest := tc.Followers(leader)
			last := rest[0]
			for _, n := range rest[1:] {
				if err := n.Shutdown(); err != nil {
					t.Fatal(err)
				}
			}
			// A leader's shutdown may have handed last the leadership, which
			// it keeps until its lease runs out; once it campaigns alone it
			// can never win again.
			clustertest.Await(t, "the last node to campaign alone", func() bool { return last.Raft().State() == raft.Candidate }, last)
			start := time.Now()
			_, _, err := last.Apply(ctx, createFleet("db"))
			if !errors.Is(err, cluster.ErrNoLeader) {
				t.Fatalf("err = %v, want ErrNoLeader", err)
			}
			if wait := clustertest.FastConfig().NoLeaderWait; time.Since(start) < wait {
				t.Fatalf("gave up after %s, want it to hold the write for %s", time.Since(start), wait)
			}
		})
	})
}

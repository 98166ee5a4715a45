package cluster_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/apierr"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
)

// faultyPeer answers forwarded writes with queued errors before applying
// them, and counts the writes it was sent.
type faultyPeer struct {
	*clustertest.PeerService
	mu    sync.Mutex
	fail  []error
	calls int
}

func (p *faultyPeer) ApplyCommand(ctx context.Context, req *clusterv1.ApplyCommandRequest) (*clusterv1.ApplyCommandResponse, error) {
	p.mu.Lock()
	p.calls++
	var err error
	if len(p.fail) > 0 {
		err, p.fail = p.fail[0], p.fail[1:]
	}
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return p.PeerService.ApplyCommand(ctx, req)
}

func (p *faultyPeer) failNext(errs ...error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail, p.calls = errs, 0
}

func (p *faultyPeer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// TestForwardRetriesOnlyWhatWasNotApplied: a follower sends a write to the
// leader again only when the answer proves the write never entered the log.
// A conflict shares its gRPC code with "not leader", so the reason decides.
func TestForwardRetriesOnlyWhatWasNotApplied(t *testing.T) {
	notLeader := apierr.Error(codes.FailedPrecondition, apierr.NotLeader, "not leader")
	for _, tc := range []struct {
		name      string
		fail      []error
		wantCalls int
		wantCode  codes.Code // codes.OK: the write is applied
	}{
		{"not leader is retried", []error{notLeader, notLeader}, 3, codes.OK},
		{"no leader is retried", []error{apierr.Error(codes.Unavailable, apierr.NoLeader, "no leader")}, 2, codes.OK},
		{"conflict is not retried", []error{apierr.Error(codes.FailedPrecondition, apierr.Conflict, "conflict")}, 1, codes.FailedPrecondition},
		{"unknown outcome is not retried", []error{apierr.Error(codes.Aborted, apierr.UnknownOutcome, "leadership lost")}, 1, codes.Aborted},
		// An answer without a reason, from a peer that predates them, might
		// be a conflict: not retried.
		{"a bare failed precondition is not retried", []error{status.Error(codes.FailedPrecondition, "not leader")}, 1, codes.FailedPrecondition},
		{"unavailable from a connected leader is not retried", []error{status.Error(codes.Unavailable, "connection reset")}, 1, codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				peers := map[string]*faultyPeer{}
				c := clustertest.Make(t, 3, clustertest.Options{
					// A long hold, so a retried write would succeed rather
					// than run out of time and hide the retry.
					Config: func(_ int, c *cluster.Config) { c.NoLeaderWait = 5 * time.Second },
					Serve: func(_ testing.TB, n *cluster.Node, lis net.Listener) func() {
						p := &faultyPeer{PeerService: &clustertest.PeerService{Node: n}}
						peers[n.NodeID()] = p
						return clustertest.Serve(p, lis)
					},
				})
				leader := c.Leader(t)
				lp := peers[leader.NodeID()]
				lp.failNext(tc.fail...)
				r, _, err := c.Followers(leader)[0].Apply(context.Background(), createFleet("web"))
				if got := lp.count(); got != tc.wantCalls {
					t.Fatalf("leader was sent the write %d times, want %d", got, tc.wantCalls)
				}
				if tc.wantCode == codes.OK {
					if err != nil || r.Error() != nil {
						t.Fatalf("apply: %v %v", err, r.Error())
					}
					return
				}
				if status.Code(err) != tc.wantCode {
					t.Fatalf("err = %v, want %s", err, tc.wantCode)
				}
				if _, err := leader.FSM().Fleet("web"); err == nil {
					t.Fatal("the fleet was applied although the write failed")
				}
			})
		})
	}
}

// TestForwardToUnreachableLeader: while the leader's API cannot be reached
// the write never leaves the follower, which holds it for NoLeaderWait and
// then fails with ErrNoLeader.
func TestForwardToUnreachableLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stops := map[string]func(){}
		tc := clustertest.Make(t, 3, clustertest.Options{
			Serve: func(t testing.TB, n *cluster.Node, lis net.Listener) func() {
				stop := clustertest.ServePeer(t, n, lis)
				stops[n.NodeID()] = stop
				return stop
			},
		})
		leader := tc.Leader(t)
		follower := tc.Followers(leader)[0]
		stops[leader.NodeID()]()

		start := time.Now()
		_, _, err := follower.Apply(context.Background(), createFleet("web"))
		if !errors.Is(err, cluster.ErrNoLeader) {
			t.Fatalf("err = %v, want ErrNoLeader", err)
		}
		if wait := clustertest.FastConfig().NoLeaderWait; time.Since(start) < wait {
			t.Fatalf("gave up after %s, want it to hold the write for %s", time.Since(start), wait)
		}
		if _, err := leader.FSM().Fleet("web"); err == nil {
			t.Fatal("the write reached the leader")
		}
	})
}

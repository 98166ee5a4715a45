package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

type env struct {
	nodes   []*cluster.Node
	servers []*Server
	clients []shoalv1.ControlServiceClient
	acls    []shoalv1.ACLServiceClient
	peers   []clusterv1.ClusterServiceClient
	// seen records the caller stamp (authz.CallerKey, TokenNameKey) of
	// every call a node served, by node index.
	seen *stampLog
}

// newEnv runs size nodes in a clustertest cluster, each serving the real
// Server; node 0 bootstraps and the others join through node 0's API.
func newEnv(t *testing.T, size int) *env {
	t.Helper()
	return newEnvLive(t, size, nil)
}

// newEnvLive is newEnv with each node's Server given live(node) (none
// when live is nil).
func newEnvLive(t *testing.T, size int, live func(*cluster.Node) Live) *env {
	t.Helper()
	e := &env{seen: &stampLog{}}
	servers := map[*cluster.Node]*Server{}
	tc := clustertest.Make(t, size, clustertest.Options{
		Config: func(_ int, c *cluster.Config) { c.NoLeaderWait = 2 * time.Second },
		Serve: func(t testing.TB, n *cluster.Node, lis net.Listener) func() {
			cfg := Config{Node: n, Logger: clustertest.Quiet(), SnapshotChunk: 100, GRPCOptions: e.seen.options(n.NodeID())}
			if live != nil {
				cfg.Live = live(n)
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			servers[n] = s
			go func() { _ = s.Serve(lis) }()
			return func() { s.Stop(time.Second) }
		},
	})
	e.nodes = tc.Nodes
	for i, n := range tc.Nodes {
		e.servers = append(e.servers, servers[n])
		cc := tc.Conn(t, i)
		e.clients = append(e.clients, shoalv1.NewControlServiceClient(cc))
		e.acls = append(e.acls, shoalv1.NewACLServiceClient(cc))
		e.peers = append(e.peers, clusterv1.NewClusterServiceClient(cc))
	}
	return e
}

func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	s, _ := status.FromError(err)
	if s.Code() != code || !strings.Contains(s.Message(), msg) {
		t.Fatalf("err = %v, want %s containing %q", err, code, msg)
	}
}

func TestControlServiceThroughFollower(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		ctx := context.Background()
		c := e.clients[2] // a follower: every write and read is passed to the leader

		created, err := c.CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: &shoalv1.Fleet{Name: "web", Asg: "web-asg", Min: 1, Max: 4, AppPort: 8080}})
		if err != nil {
			t.Fatal(err)
		}
		if created.Fleet.Desired != 1 || created.Fleet.GetCreateTime() == nil {
			t.Fatalf("created = %v", created.Fleet)
		}
		got, err := c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: "web"})
		if err != nil || got.Fleet.AppPort != 8080 {
			t.Fatalf("get = %v, %v", got, err)
		}

		for _, tc := range []struct {
			name string
			call func() error
			code codes.Code
			msg  string
		}{
			{"min above max", func() error {
				_, err := c.CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: &shoalv1.Fleet{Name: "x", Asg: "x", Min: 5, Max: 3}})
				return err
			}, codes.InvalidArgument, "min (5) must be <= max (3)"},
			{"duplicate", func() error {
				_, err := c.CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: &shoalv1.Fleet{Name: "web", Asg: "y", Max: 3}})
				return err
			}, codes.AlreadyExists, `fleet "web" already exists`},
			{"group used", func() error {
				_, err := c.CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: &shoalv1.Fleet{Name: "web2", Asg: "web-asg", Max: 3}})
				return err
			}, codes.AlreadyExists, `already used by fleet "web"`},
			{"unknown fleet", func() error { _, err := c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: "nope"}); return err }, codes.NotFound, "unknown fleet"},
			{"bad policy", func() error {
				_, err := c.SetPolicy(ctx, &shoalv1.SetPolicyRequest{Fleet: "web", Policy: &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: -1}}}})
				return err
			}, codes.InvalidArgument, "policy.target_tracking[0].target"},
			{"sustain above 2", func() error {
				_, err := c.SetPolicy(ctx, &shoalv1.SetPolicyRequest{Fleet: "web", Policy: &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}, Sustain: 2.5}})
				return err
			}, codes.InvalidArgument, "policy.sustain: must be a share of the launch delay in [0, 2] (got 2.5)"},
			{"create with sustain NaN", func() error {
				_, err := c.CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: &shoalv1.Fleet{Name: "x", Asg: "x", Max: 3,
					Policy: &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}, Sustain: math.NaN()}}})
				return err
			}, codes.InvalidArgument, "policy.sustain: must be a share of the launch delay in [0, 2] (got NaN)"},
			{"scale above max", func() error {
				_, err := c.ScaleFleet(ctx, &shoalv1.ScaleFleetRequest{Fleet: "web", Desired: 9})
				return err
			}, codes.InvalidArgument, "desired (9) must be between min (1) and max (4)"},
			{"negative scale", func() error {
				_, err := c.ScaleFleet(ctx, &shoalv1.ScaleFleetRequest{Fleet: "web", Desired: -1})
				return err
			}, codes.InvalidArgument, "desired (-1) must be >= 0"},
			{"explain not yet", func() error { _, err := c.ExplainFleet(ctx, &shoalv1.ExplainFleetRequest{Fleet: "web"}); return err }, codes.Unimplemented, "scaling engine"},
		} {
			clustertest.Step(t, tc.name, func() { wantCode(t, tc.call(), tc.code, tc.msg) })
		}

		pol := &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}, Sustain: 0.02}
		if _, err := c.SetPolicy(ctx, &shoalv1.SetPolicyRequest{Fleet: "web", Policy: pol}); err != nil {
			t.Fatal(err)
		}
		gp, err := c.GetPolicy(ctx, &shoalv1.GetPolicyRequest{Fleet: "web"})
		if err != nil || !proto.Equal(gp.Policy, pol) {
			t.Fatalf("policy = %v, %v", gp, err)
		}
		if p, err := c.PauseFleet(ctx, &shoalv1.PauseFleetRequest{Fleet: "web"}); err != nil || !p.Fleet.Paused {
			t.Fatalf("pause = %v, %v", p, err)
		}
		sc, err := c.ScaleFleet(ctx, &shoalv1.ScaleFleetRequest{Fleet: "web", Desired: 3})
		if err != nil || sc.Decision.PreviousCapacity != 1 || sc.Decision.Capacity != 3 || sc.Decision.Source != shoalv1.DecisionSource_DECISION_SOURCE_MANUAL || sc.Decision.Status != shoalv1.DecisionStatus_DECISION_STATUS_PENDING {
			t.Fatalf("scale = %v, %v", sc, err)
		}
		ds, err := c.ListDecisions(ctx, &shoalv1.ListDecisionsRequest{Fleet: "web"})
		if err != nil || len(ds.Decisions) != 1 {
			t.Fatalf("decisions = %v, %v", ds, err)
		}

		st, err := c.GetStatus(ctx, &shoalv1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		leaders := 0
		for _, n := range st.Nodes {
			if n.Role == shoalv1.NodeRole_NODE_ROLE_LEADER {
				leaders++
				if n.Id != st.LeaderId {
					t.Fatalf("leader row %s, leader_id %s", n.Id, st.LeaderId)
				}
			}
		}
		if len(st.Nodes) != 3 || leaders != 1 || st.AppliedIndex == 0 {
			t.Fatalf("status = %v", st)
		}
		// A stale read answers from the follower itself.
		if st, err := c.GetStatus(ctx, &shoalv1.GetStatusRequest{Stale: true}); err != nil || st.NodeId != "n2" {
			t.Fatalf("stale status from %v, %v; want n2", st.GetNodeId(), err)
		}

		clustertest.Step(t, "snapshot save and restore", func() {
			saved := saveSnapshot(t, c)
			if _, err := c.DeleteFleet(ctx, &shoalv1.DeleteFleetRequest{Fleet: "web"}); err != nil {
				t.Fatal(err)
			}
			rs, err := c.RestoreSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(saved); off += 1000 {
				if err := rs.Send(&shoalv1.RestoreSnapshotRequest{Chunk: saved[off:min(off+1000, len(saved))]}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := rs.CloseAndRecv(); err != nil {
				t.Fatal(err)
			}
			f, err := c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: "web"})
			if err != nil || !f.Fleet.Paused || f.Fleet.Policy == nil {
				t.Fatalf("after restore = %v, %v", f, err)
			}
			// Every node applied the restore, not only the leader.
			for _, n := range e.nodes {
				clustertest.Eventually(t, n.NodeID()+" to restore", func() bool { _, err := n.FSM().Fleet("web"); return err == nil })
			}
			bad, _ := c.RestoreSnapshot(ctx)
			_ = bad.Send(&shoalv1.RestoreSnapshotRequest{Chunk: []byte("junk")})
			_, err = bad.CloseAndRecv()
			wantCode(t, err, codes.InvalidArgument, "snapshot")
		})

		clustertest.Step(t, "peers and metrics", func() {
			ps, err := c.ListPeers(ctx, &shoalv1.ListPeersRequest{})
			if err != nil || len(ps.Peers) != 3 {
				t.Fatalf("peers = %v, %v", ps, err)
			}
			// A command the FSM refuses is counted on every node. Node 2
			// may still be applying earlier refused commands (the steps
			// above send some), so the test waits for this command's own
			// entry rather than for the count to reach before+1.
			before := e.nodes[2].FSM().Rejected().ByKind[fsm.KindInvalid]
			bogus := fsm.RegisterInstance(&shoalv1.Instance{Id: "not-an-instance", Fleet: "web"}).Encode()
			lc := e.peers[0]
			for i, n := range e.nodes {
				if n.IsLeader() {
					lc = e.peers[i]
				}
			}
			ar, err := lc.ApplyCommand(ctx, &clusterv1.ApplyCommandRequest{Command: bogus})
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			clustertest.Eventually(t, "node 2 to apply the refused command", func() bool {
				for _, r := range e.nodes[2].FSM().Rejected().Recent {
					if r.Index == ar.Index && r.Kind == fsm.KindInvalid {
						return true
					}
				}
				return false
			})
			after := e.nodes[2].FSM().Rejected().ByKind[fsm.KindInvalid]
			if after < before+1 {
				t.Fatalf("node 2 counts %d invalid commands after this one, %d before", after, before)
			}
			rec := httptest.NewRecorder()
			e.servers[2].HTTPHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			body := rec.Body.String()
			for _, want := range []string{`shoal_raft_state{state="Follower"} 1`, `shoal_raft_forwarded_total{kind="apply"}`, "shoal_raft_last_contact_seconds", fmt.Sprintf(`shoal_fsm_rejected_commands_total{kind="invalid"} %d`, after)} {
				if !strings.Contains(body, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			rec = httptest.NewRecorder()
			e.servers[2].HTTPHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
			if rec.Code != 200 {
				t.Fatalf("/healthz = %d %s", rec.Code, rec.Body)
			}
		})
	})
}

func saveSnapshot(t *testing.T, c shoalv1.ControlServiceClient) []byte {
	t.Helper()
	st, err := c.SaveSnapshot(context.Background(), &shoalv1.SaveSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	chunks := 0
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		chunks++
		out = append(out, m.Chunk...)
	}
	if chunks < 2 {
		t.Fatalf("snapshot came in %d chunk(s) of at most 100 bytes; want it chunked", chunks)
	}
	return out
}

func TestRemovePeerAndNoLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		ctx := context.Background()
		_, err := e.peers[1].JoinCluster(ctx, &clusterv1.JoinClusterRequest{NodeId: "n9", RpcAddr: "x:1"})
		wantCode(t, err, codes.InvalidArgument, "raft_addr: required")
		_, err = e.clients[1].RemovePeer(ctx, &shoalv1.RemovePeerRequest{Id: "ghost"})
		wantCode(t, err, codes.NotFound, `id ("ghost")`)
		if _, err := e.clients[1].RemovePeer(ctx, &shoalv1.RemovePeerRequest{Id: "n2"}); err != nil {
			t.Fatal(err)
		}
		ps, err := e.clients[0].ListPeers(ctx, &shoalv1.ListPeersRequest{})
		if err != nil || len(ps.Peers) != 2 {
			t.Fatalf("peers after remove = %v, %v", ps, err)
		}
		// With n0 gone, n1 alone is not a quorum of {n0, n1}: writes must fail
		// with UNAVAILABLE "no leader" after the hold.
		_ = e.nodes[0].Shutdown()
		// n0's shutdown hands n1 the leadership (or tries to), which n1
		// keeps until its lease runs out; once n1 campaigns with n0 gone it
		// can never win again. An election n1 began before n0's raft
		// stopped may still win with n0's vote, and a write n1 takes then
		// ends "leadership lost" when the lease runs out: the honest answer
		// for that write, after which n1 campaigns alone.
		clustertest.Await(t, "n1 to campaign without n0", func() bool { return e.nodes[1].Raft().State() == raft.Candidate }, e.nodes[1])
		for range 3 {
			_, err = e.clients[1].CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: &shoalv1.Fleet{Name: "x", Asg: "x", Max: 1}})
			if err == nil || !strings.Contains(err.Error(), "leadership lost") {
				break
			}
		}
		wantCode(t, err, codes.Unavailable, "no leader")
		// status answers from n1's own view, saying there is no leader,
		// instead of failing on the leader it cannot reach.
		st, err := e.clients[1].GetStatus(ctx, &shoalv1.GetStatusRequest{})
		if err != nil || st.LeaderId != "" || !strings.HasPrefix(st.NoLeader, "election in progress") || st.NodeId != "n1" || len(st.Nodes) != 2 {
			t.Errorf("status without a leader = %v, %v; want n1's own view with no_leader set", st, err)
		}
		// --stale asks for the node's copy as it is: no verdict.
		if st, err := e.clients[1].GetStatus(ctx, &shoalv1.GetStatusRequest{Stale: true}); err != nil || st.NoLeader != "" {
			t.Errorf("stale status without a leader = %v, %v; want the copy without no_leader", st, err)
		}
	})
}

// delaysLive is a Live whose launch delays are always there, as the
// node's scaler reads them from the replicated samples on every node.
type delaysLive struct{}

func (delaysLive) Instances(string) ([]*shoalv1.Instance, error) { return nil, nil }
func (delaysLive) Explain(string) (*shoalv1.ExplainFleetResponse, error) {
	return nil, errors.New("not evaluated")
}
func (delaysLive) Alarms(context.Context, string) ([]*shoalv1.Alarm, error) { return nil, nil }
func (delaysLive) GroupStatus(string) string                                { return "" }
func (delaysLive) LaunchDelays(string) []*shoalv1.LaunchDelay {
	return []*shoalv1.LaunchDelay{{Kind: "cold", Samples: 3, P50: durationpb.New(4 * time.Second), P90: durationpb.New(5 * time.Second)}}
}

// Launch delays are replicated, so a follower answering a stale fleet get
// shows them too; it used to leave them out unless it led.
func TestStaleFleetGetOnFollowerHasLaunchDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnvLive(t, 3, func(*cluster.Node) Live { return delaysLive{} })
		ctx := context.Background()
		if _, err := e.clients[0].CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: &shoalv1.Fleet{Name: "web", Asg: "web-asg", Max: 4}}); err != nil {
			t.Fatal(err)
		}
		for i, n := range e.nodes {
			clustertest.Eventually(t, n.NodeID()+" to have the fleet", func() bool { _, err := n.FSM().Fleet("web"); return err == nil })
			for _, stale := range []bool{false, true} {
				got, err := e.clients[i].GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: "web", Stale: stale})
				if err != nil {
					t.Fatal(err)
				}
				if len(got.LaunchDelays) != 1 || got.LaunchDelays[0].Kind != "cold" {
					t.Errorf("%s (leader %v), stale %v: launch delays %v, want the cold one", n.NodeID(), n.IsLeader(), stale, got.LaunchDelays)
				}
			}
		}
	})
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// peerServer is the slice of ControlService the cluster itself calls on
// peers; the server package serves the real one.
type peerServer struct {
	shoalv1.UnimplementedControlServiceServer
	n *Node
}

func (p *peerServer) ApplyCommand(ctx context.Context, req *shoalv1.ApplyCommandRequest) (*shoalv1.ApplyCommandResponse, error) {
	r, idx, err := p.n.ApplyLocal(req.Command)
	if errors.Is(err, ErrNotLeader) {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &shoalv1.ApplyCommandResponse{Index: idx, Result: fsm.EncodeResult(r)}, nil
}

func (p *peerServer) JoinCluster(ctx context.Context, req *shoalv1.JoinClusterRequest) (*shoalv1.JoinClusterResponse, error) {
	id, err := p.n.Join(ctx, req)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &shoalv1.JoinClusterResponse{LeaderId: id}, nil
}

type testCluster struct {
	nodes []*Node
	lis   map[string]*bufconn.Listener
}

func fastConfig() Config {
	c := DefaultConfig()
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.ApplyTimeout = 2 * time.Second
	c.NoLeaderWait = 500 * time.Millisecond
	c.ShutdownTimeout = 2 * time.Second
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return c
}

// newTestCluster starts n nodes on raft.InmemTransport with gRPC over
// bufconn; node 0 bootstraps and the others join through it.
func newTestCluster(t *testing.T, size int) *testCluster {
	t.Helper()
	tc := &testCluster{lis: map[string]*bufconn.Listener{}}
	dial := func(addr string) (*grpc.ClientConn, error) {
		l, ok := tc.lis[addr]
		if !ok {
			return nil, fmt.Errorf("no listener %s", addr)
		}
		return rpc.Dial(addr, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	}
	var trans []*raft.InmemTransport
	for i := 0; i < size; i++ {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("raft%d:7300", i)))
		trans = append(trans, tr)
		tc.lis[fmt.Sprintf("node%d:7400", i)] = bufconn.Listen(1 << 20)
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(trans[j].LocalAddr(), trans[j])
			}
		}
	}
	for i := 0; i < size; i++ {
		cfg := fastConfig()
		cfg.NodeID = fmt.Sprintf("n%d", i)
		cfg.RPCAdvertise = fmt.Sprintf("node%d:7400", i)
		cfg.Bootstrap = i == 0
		cfg.Transport, cfg.SnapshotStore = trans[i], raft.NewInmemSnapshotStore()
		store := raft.NewInmemStore()
		cfg.LogStoreImpl, cfg.StableStore = store, store
		cfg.Dial = dial
		n, err := New(cfg, fsm.New())
		if err != nil {
			t.Fatal(err)
		}
		srv := rpc.NewServer()
		shoalv1.RegisterControlServiceServer(srv, &peerServer{n: n})
		go func() { _ = srv.Serve(tc.lis[cfg.RPCAdvertise]) }()
		t.Cleanup(func() { srv.Stop(); _ = n.Shutdown() })
		tc.nodes = append(tc.nodes, n)
	}
	waitFor(t, "node 0 to lead", func() bool { return tc.nodes[0].IsLeader() })
	for _, n := range tc.nodes[1:] {
		if _, err := tc.nodes[0].Join(context.Background(), &shoalv1.JoinClusterRequest{
			NodeId: n.NodeID(), RaftAddr: string(n.trans.LocalAddr()), RpcAddr: n.RPCAddr(),
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every node to know the leader's address", func() bool {
		for _, n := range tc.nodes {
			if n.LeaderRPCAddr() == "" {
				return false
			}
		}
		return true
	})
	return tc
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tc *testCluster) leader(t *testing.T, except *Node) *Node {
	t.Helper()
	var l *Node
	waitFor(t, "a leader", func() bool {
		for _, n := range tc.nodes {
			if n != except && n.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

func createFleet(name string) []byte {
	return fsm.CreateFleet(&shoalv1.Fleet{Name: name, Asg: name + "-asg", Min: 1, Max: 3}).Encode()
}

func TestThreeNodeCluster(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx := context.Background()
	leader := tc.leader(t, nil)
	var follower *Node
	for _, n := range tc.nodes {
		if n != leader {
			follower = n
		}
	}

	t.Run("follower write is forwarded", func(t *testing.T) {
		r, idx, err := follower.Apply(ctx, createFleet("web"))
		if err != nil || r.Error() != nil || idx == 0 {
			t.Fatalf("apply on follower: %v %v idx=%d", err, r.Error(), idx)
		}
		if r.Fleet.GetName() != "web" || r.Fleet.CreatedAtUnixMs == 0 {
			t.Fatalf("result fleet = %v, want web with the leader's time", r.Fleet)
		}
		for _, n := range tc.nodes {
			waitFor(t, n.NodeID()+" to apply web", func() bool { _, err := n.FSM().Fleet("web"); return err == nil })
		}
	})

	t.Run("rejections come back from the leader", func(t *testing.T) {
		r, _, err := follower.Apply(ctx, createFleet("web"))
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(r.Error(), fsm.ErrExists) {
			t.Fatalf("duplicate through forwarding: %v", r.Error())
		}
	})

	t.Run("reads", func(t *testing.T) {
		if err := leader.ReadBarrier(ctx); err != nil {
			t.Fatalf("leader read barrier: %v", err)
		}
		if err := follower.ReadBarrier(ctx); !errors.Is(err, ErrNotLeader) {
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

	t.Run("leader loss elects another and notifies it", func(t *testing.T) {
		var subs []<-chan bool
		for _, n := range tc.nodes {
			ch, cancel := n.Subscribe()
			defer cancel()
			subs = append(subs, ch)
		}
		if err := leader.Shutdown(); err != nil {
			t.Fatal(err)
		}
		next := tc.leader(t, leader)
		for i, n := range tc.nodes {
			if n == next {
				select {
				case v := <-subs[i]:
					if !v {
						t.Fatal("new leader was told false")
					}
				case <-time.After(5 * time.Second):
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

	t.Run("no quorum means no leader", func(t *testing.T) {
		var last *Node
		for _, n := range tc.nodes {
			if n != leader && last == nil {
				last = n
			} else if n != leader {
				if err := n.Shutdown(); err != nil {
					t.Fatal(err)
				}
			}
		}
		waitFor(t, "the last node to lose leadership", func() bool { return !last.IsLeader() })
		start := time.Now()
		_, _, err := last.Apply(ctx, createFleet("db"))
		if !errors.Is(err, ErrNoLeader) {
			t.Fatalf("err = %v, want ErrNoLeader", err)
		}
		if waited := time.Since(start); waited < last.cfg.NoLeaderWait {
			t.Fatalf("gave up after %s, want it to hold the write for %s", waited, last.cfg.NoLeaderWait)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.NodeID, c.DataDir, c.RaftBind, c.RPCAdvertise = "n1", "/tmp/x", "127.0.0.1:7300", "127.0.0.1:7400"
		c.RaftAdvertise = c.RaftBind
		return c
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no id", func(c *Config) { c.NodeID = "" }, "node-id: required"},
		{"unspecified raft advertise", func(c *Config) { c.RaftBind, c.RaftAdvertise = "0.0.0.0:7300", "0.0.0.0:7300" }, "advertise-raft"},
		{"unspecified rpc advertise", func(c *Config) { c.RPCAdvertise = "0.0.0.0:7400" }, "advertise-rpc"},
		{"both bootstrap and join", func(c *Config) { c.Bootstrap, c.Join = true, []string{"127.0.0.1:7401"} }, "give one, not both"},
		{"bad join", func(c *Config) { c.Join = []string{"nohost"} }, `join[0] ("nohost")`},
		{"bad store", func(c *Config) { c.LogStore = "sqlite" }, `log-store ("sqlite")`},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * time.Second }, "raft-leader-lease-timeout (2s) must be <= raft-heartbeat-timeout (1s)"},
		{"no raft advertise", func(c *Config) { c.RaftAdvertise = "" }, `advertise-raft ("")`},
		{"no snapshot interval", func(c *Config) { c.SnapshotInterval = 0 }, "raft-snapshot-interval (0s) must be > 0"},
		{"no trailing logs", func(c *Config) { c.TrailingLogs = 0 }, "raft-trailing-logs: must be > 0"},
		{"no logger", func(c *Config) { c.Logger = nil }, "logger: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

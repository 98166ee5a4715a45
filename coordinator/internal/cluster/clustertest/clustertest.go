package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/shoal-dev/shoal/coordinator/internal/apierr"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// Timeout bounds every wait of this package.
const Timeout = 10 * time.Second

// FastConfig is a node configuration with timings short enough for tests
// and a quiet logger; Make fills in the identity, transport and stores.
func FastConfig() cluster.Config {
	c := cluster.DefaultConfig()
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.ApplyTimeout = 2 * time.Second
	c.NoLeaderWait = 500 * time.Millisecond
	c.ShutdownTimeout = 2 * time.Second
	c.Logger = Quiet()
	return c
}

// Quiet is a logger that drops everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Options shape a cluster; the zero value gives PeerService nodes with
// FastConfig.
type Options struct {
	// Config changes node i's configuration after Make filled it; the
	// identity, transport and stores are best left as they are.
	Config func(i int, c *cluster.Config)
	// Serve serves n's ControlService on lis and returns how to stop it.
	// The default serves a PeerService.
	Serve func(t testing.TB, n *cluster.Node, lis net.Listener) (stop func())
	// TCP puts each node's ControlService on a loopback TCP port instead of
	// bufconn, for tests that reach a node the way an operator's client
	// does; its RPC address is then that port.
	TCP bool
}

// Cluster is a running in-memory cluster. Node i has id "n<i>", raft
// address "raft<i>" and RPC address "node<i>:7400" (a loopback port with
// Options.TCP).
type Cluster struct {
	Nodes []*cluster.Node
	trans []*raft.InmemTransport
	lis   map[string]net.Listener
}

// Make starts size nodes and returns once every node has joined and knows
// the leader's RPC address. Everything stops when the test ends.
func Make(t testing.TB, size int, o Options) *Cluster {
	t.Helper()
	if o.Serve == nil {
		o.Serve = ServePeer
	}
	c := &Cluster{lis: map[string]net.Listener{}}
	var addrs []string
	for i := range size {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("raft%d:7300", i)))
		c.trans = append(c.trans, tr)
		addr := fmt.Sprintf("node%d:7400", i)
		if o.TCP {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr = l.Addr().String()
			c.lis[addr] = l
		} else {
			c.lis[addr] = bufconn.Listen(1 << 20)
		}
		addrs = append(addrs, addr)
	}
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
	for i := range size {
		cfg := FastConfig()
		cfg.NodeID, cfg.RPCAdvertise, cfg.Bootstrap = fmt.Sprintf("n%d", i), addrs[i], i == 0
		store := raft.NewInmemStore()
		cfg.Transport, cfg.LogStoreImpl, cfg.StableStore = c.trans[i], store, store
		cfg.SnapshotStore, cfg.Dial = raft.NewInmemSnapshotStore(), c.Dial
		if o.Config != nil {
			o.Config(i, &cfg)
		}
		n, err := cluster.New(cfg, fsm.New())
		if err != nil {
			t.Fatal(err)
		}
		stop := o.Serve(t, n, c.lis[addrs[i]])
		t.Cleanup(func() { stop(); _ = n.Shutdown() })
		c.Nodes = append(c.Nodes, n)
	}
	// Runs before the nodes' own cleanups: with the transports cut, a
	// leader's shutdown transfer to a peer that already stopped fails at
	// once instead of leaving raft waiting out its RPC timeout.
	t.Cleanup(func() {
		for _, tr := range c.trans {
			tr.DisconnectAll()
		}
	})
	Await(t, "n0 to lead", c.Nodes[0].IsLeader, c.Nodes[0])
	if size == 1 {
		return c
	}
	first := c.Client(t, 0)
	for i, n := range c.Nodes[1:] {
		_, err := first.JoinCluster(context.Background(), &clusterv1.JoinClusterRequest{
			NodeId: n.NodeID(), RaftAddr: string(c.trans[i+1].LocalAddr()), RpcAddr: n.RPCAddr(),
		})
		if err != nil {
			t.Fatalf("join %s: %v", n.NodeID(), err)
		}
	}
	// A follower learns the leader's RPC address from the FSM, which raft
	// gives no event for.
	Eventually(t, "every node to know the leader's RPC address", func() bool {
		for _, n := range c.Nodes {
			if n.LeaderRPCAddr() == "" {
				return false
			}
		}
		return true
	})
	return c
}

// Dial connects to a node's RPC address; the nodes use it for each other
// too.
func (c *Cluster) Dial(addr string) (*grpc.ClientConn, error) {
	switch l := c.lis[addr].(type) {
	case *bufconn.Listener:
		return rpc.Dial(addr, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	case nil:
		return nil, fmt.Errorf("no listener %s", addr)
	}
	return rpc.Dial(addr)
}

// Client is a ClusterService client for node i, closed when the test ends.
func (c *Cluster) Client(t testing.TB, i int) clusterv1.ClusterServiceClient {
	t.Helper()
	return clusterv1.NewClusterServiceClient(c.Conn(t, i))
}

// Conn is a connection to node i's RPC address, closed when the test ends.
func (c *Cluster) Conn(t testing.TB, i int) *grpc.ClientConn {
	t.Helper()
	cc, err := c.Dial(c.Nodes[i].RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Leader waits for a node other than those in except to lead, and returns it.
func (c *Cluster) Leader(t testing.TB, except ...*cluster.Node) *cluster.Node {
	t.Helper()
	var l *cluster.Node
	Await(t, "a leader", func() bool {
		for _, n := range c.Nodes {
			if !contains(except, n) && n.IsLeader() {
				l = n
				return true
			}
		}
		return false
	}, c.Nodes...)
	return l
}

// Followers are the nodes other than leader.
func (c *Cluster) Followers(leader *cluster.Node) []*cluster.Node {
	var out []*cluster.Node
	for _, n := range c.Nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

func contains(ns []*cluster.Node, n *cluster.Node) bool {
	for _, m := range ns {
		if m == n {
			return true
		}
	}
	return false
}

// Await waits until cond holds, checking it again each time the raft of one
// of nodes reports a change of state or leader, so it wakes when the change
// happens and not on a poll. cond must depend only on what those reports
// announce (who leads, which state a node is in).
func Await(t testing.TB, what string, cond func() bool, nodes ...*cluster.Node) {
	t.Helper()
	// Registered before the first check: a change after it is never missed,
	// and a full channel already holds the wake-up.
	ch := make(chan raft.Observation, 16)
	for _, n := range nodes {
		o := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
			switch o.Data.(type) {
			case raft.RaftState, raft.LeaderObservation:
				return true
			}
			return false
		})
		n.Raft().RegisterObserver(o)
		defer n.Raft().DeregisterObserver(o)
	}
	timeout := time.NewTimer(Timeout)
	defer timeout.Stop()
	for !cond() {
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("timed out after %s waiting for %s", Timeout, what)
		}
	}
}

// Eventually waits until cond holds, checking it every few milliseconds.
// It is for what raft announces nothing about, chiefly a follower's FSM
// catching up; prefer Await for leadership.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(Timeout)
	defer timeout.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout.C:
			t.Fatalf("timed out after %s waiting for %s", Timeout, what)
		}
	}
}

// Step runs one named part of a test in order. Inside a synctest bubble,
// where t.Run is not allowed, it stands in for a subtest: the name is logged
// first, so a failure says which part failed.
func Step(t testing.TB, name string, f func()) {
	t.Helper()
	t.Logf("step: %s", name)
	f()
}

// PeerService is ClusterService, which nodes call on each other (forwarded
// writes, joins), with the server package's status contract for the errors
// they return.
type PeerService struct {
	clusterv1.UnimplementedClusterServiceServer
	Node *cluster.Node
}

// ServePeer serves a PeerService for n on lis; it is Options.Serve's default.
func ServePeer(_ testing.TB, n *cluster.Node, lis net.Listener) (stop func()) {
	return Serve(&PeerService{Node: n}, lis)
}

// Serve serves svc on lis with the project's gRPC options until stop.
func Serve(svc clusterv1.ClusterServiceServer, lis net.Listener) (stop func()) {
	srv := rpc.NewServer()
	clusterv1.RegisterClusterServiceServer(srv, svc)
	go func() { _ = srv.Serve(lis) }()
	return srv.Stop
}

// ApplyCommand applies a forwarded write if this node leads.
func (p *PeerService) ApplyCommand(_ context.Context, req *clusterv1.ApplyCommandRequest) (*clusterv1.ApplyCommandResponse, error) {
	r, idx, err := p.Node.ApplyLocal(req.Command)
	if err != nil {
		return nil, peerStatus(err)
	}
	return &clusterv1.ApplyCommandResponse{Index: idx, Result: fsm.EncodeResult(r)}, nil
}

// JoinCluster adds a node through this one.
func (p *PeerService) JoinCluster(ctx context.Context, req *clusterv1.JoinClusterRequest) (*clusterv1.JoinClusterResponse, error) {
	id, err := p.Node.Join(ctx, req)
	if err != nil {
		return nil, peerStatus(err)
	}
	return &clusterv1.JoinClusterResponse{LeaderId: id}, nil
}

// DescribeNode says who this node is, for --bootstrap-expect.
func (p *PeerService) DescribeNode(context.Context, *clusterv1.DescribeNodeRequest) (*clusterv1.DescribeNodeResponse, error) {
	return p.Node.Describe(), nil
}

func peerStatus(err error) error {
	switch {
	case errors.Is(err, cluster.ErrNotLeader):
		return apierr.Error(codes.FailedPrecondition, apierr.NotLeader, err.Error())
	case errors.Is(err, cluster.ErrNoLeader):
		return apierr.Error(codes.Unavailable, apierr.NoLeader, err.Error())
	case errors.Is(err, cluster.ErrUnknownOutcome):
		return apierr.Error(codes.Aborted, apierr.UnknownOutcome, err.Error())
	case errors.Is(err, cluster.ErrInvalidRequest):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

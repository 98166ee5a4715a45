package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// expectNet is an in-memory network of nodes started with
// --bootstrap-expect: every node may be reached by every other.
type expectNet struct {
	t     *testing.T
	mu    sync.Mutex // guards lis, which nodes' dialers read
	trans map[string]*raft.InmemTransport
	lis   map[string]*bufconn.Listener
	nodes map[string]*cluster.Node
}

func newExpectNet(t *testing.T) *expectNet {
	return &expectNet{t: t, trans: map[string]*raft.InmemTransport{}, lis: map[string]*bufconn.Listener{}, nodes: map[string]*cluster.Node{}}
}

func (e *expectNet) dial(addr string) (*grpc.ClientConn, error) {
	e.mu.Lock()
	l := e.lis[addr]
	e.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("no listener %s", addr)
	}
	return rpc.Dial(addr, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
}

// start runs node id expecting expect servers, asking join.
func (e *expectNet) start(id string, expect int, join []string) *cluster.Node {
	e.t.Helper()
	_, tr := raft.NewInmemTransport(raft.ServerAddress("raft-" + id + ":7300"))
	for _, other := range e.trans {
		tr.Connect(other.LocalAddr(), other)
		other.Connect(tr.LocalAddr(), tr)
	}
	e.trans[id] = tr
	addr := e.listen(id)
	cfg := clustertest.FastConfig()
	cfg.NodeID, cfg.RPCAdvertise, cfg.BootstrapExpect, cfg.Join = id, addr, expect, join
	store := raft.NewInmemStore()
	cfg.Transport, cfg.LogStoreImpl, cfg.StableStore, cfg.SnapshotStore = tr, store, store, raft.NewInmemSnapshotStore()
	cfg.Dial = e.dial
	if testing.Verbose() {
		cfg.Logger = slog.Default()
	}
	n, err := cluster.New(cfg, fsm.New())
	if err != nil {
		e.t.Fatal(err)
	}
	stop := clustertest.ServePeer(e.t, n, e.lis[addr])
	e.t.Cleanup(func() { tr.DisconnectAll(); stop(); _ = n.Shutdown() })
	e.nodes[id] = n
	return n
}

// listen makes node id's listener, once, and returns its address. A
// listener made before its node starts is reachable at once: a dial waits
// until the node serves.
func (e *expectNet) listen(id string) string {
	addr := "rpc-" + id + ":7400"
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lis[addr] == nil {
		e.lis[addr] = bufconn.Listen(1 << 20)
	}
	return addr
}

func rpcAddrs(ids ...string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, "rpc-"+id+":7400")
	}
	return out
}

func voters(t *testing.T, n *cluster.Node) []string {
	t.Helper()
	peers, err := n.Peers()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range peers {
		if p.Voter {
			ids = append(ids, p.ID)
		}
	}
	return ids
}

func TestBootstrapExpect(t *testing.T) {
	synctest.Test(t, testBootstrapExpect)
}

func testBootstrapExpect(t *testing.T) {
	e := newExpectNet(t)
	ids := []string{"c", "a", "b"}
	// Started one at a time: the first two find too few fresh servers and
	// wait, the third completes the set.
	var ns []*cluster.Node
	for _, id := range ids {
		var join []string
		for _, o := range ids {
			if o != id {
				join = append(join, rpcAddrs(o)...)
			}
		}
		ns = append(ns, e.start(id, 3, join))
		if len(ns) < 3 {
			// Many rounds of asking (virtual time).
			time.Sleep(30 * time.Second)
			synctest.Wait()
			for _, n := range ns {
				if n.InCluster() {
					t.Fatalf("%s bootstrapped with %d of 3 servers up", n.NodeID(), len(ns))
				}
			}
		}
	}
	var leader *cluster.Node
	clustertest.Await(t, "one leader of the three", func() bool {
		for _, n := range ns {
			if n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	}, ns...)
	if got := strings.Join(voters(t, leader), ","); got != "a,b,c" {
		t.Fatalf("voters = %s, want a,b,c (one shared configuration)", got)
	}
	clustertest.Eventually(t, "every member's RPC address recorded", func() bool {
		for _, id := range ids {
			if leader.FSM().Members()[id].RPCAddr != rpcAddrs(id)[0] {
				return false
			}
		}
		return true
	})
	r, _, err := leader.Apply(context.Background(), createFleet("web"))
	if err != nil || r.Error() != nil {
		t.Fatalf("write on the formed cluster: %v %v", err, r.Error())
	}

	// A fresh server with the same flags, as an empty-disk replacement
	// starts: the others are in a cluster, so it joins that cluster and
	// never forms a second one.
	d := e.start("d", 3, rpcAddrs("a", "b", "c"))
	clustertest.Eventually(t, "d to join the cluster", func() bool { return d.InCluster() && d.LeaderID() == leader.LeaderID() })
	clustertest.Eventually(t, "d to replicate web", hasFleet(d, "web"))
	if d.IsLeader() {
		t.Fatal("the fresh node leads: it formed its own cluster")
	}
	if got := strings.Join(voters(t, leader), ","); got != "a,b,c,d" {
		t.Fatalf("voters = %s, want a,b,c,d", got)
	}
}

func TestBootstrapExpectRefusesMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newExpectNet(t)
		a := e.start("a", 2, rpcAddrs("b"))
		b := e.start("b", 3, rpcAddrs("a", "c"))
		// Each finds the other fresh but expecting another count: neither
		// may bootstrap, however many rounds it asks (virtual time).
		time.Sleep(30 * time.Second)
		synctest.Wait()
		for _, n := range []*cluster.Node{a, b} {
			if n.InCluster() {
				t.Fatalf("%s bootstrapped although the other expects a different count", n.NodeID())
			}
		}
	})
	for _, bad := range []cluster.Config{
		func() cluster.Config {
			c := clustertest.FastConfig()
			c.BootstrapExpect = 3
			c.Join = rpcAddrs("x")
			return c
		}(),
		func() cluster.Config {
			c := clustertest.FastConfig()
			c.BootstrapExpect = 3
			c.Bootstrap = true
			return c
		}(),
		func() cluster.Config { c := clustertest.FastConfig(); c.BootstrapExpect = -1; return c }(),
	} {
		bad.NodeID, bad.RPCAdvertise, bad.RaftBind, bad.RaftAdvertise, bad.DataDir = "x", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:2", t.TempDir()
		err := bad.Validate()
		if err == nil || !strings.Contains(err.Error(), "bootstrap-expect") && !strings.Contains(err.Error(), "join") {
			t.Errorf("Validate(%+v) = %v, want an error naming bootstrap-expect or join", bad.BootstrapExpect, err)
		}
	}
}

// More fresh servers than expected: each could pick a different subset,
// so none bootstraps, however many rounds it asks (virtual time). All
// three are reachable from the first round on (started one after another,
// the first two could see only each other and rightly bootstrap, as
// Consul's bootstrap_expect would).
func TestBootstrapExpectRefusesMoreFreshServers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newExpectNet(t)
		for _, id := range []string{"a", "b", "c"} {
			e.listen(id)
		}
		var ns []*cluster.Node
		for _, id := range []string{"a", "b", "c"} {
			var join []string
			for _, o := range []string{"a", "b", "c"} {
				if o != id {
					join = append(join, rpcAddrs(o)...)
				}
			}
			ns = append(ns, e.start(id, 2, join))
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		for _, n := range ns {
			if n.InCluster() {
				t.Fatalf("%s bootstrapped with 3 fresh servers and --bootstrap-expect 2", n.NodeID())
			}
		}
	})
}

// A join that says the node has no state (a wiped disk at its old address)
// replaces the node's entry, so it comes back as a new voter and never with
// a vote it forgot; a join from a node with state leaves the entry alone.
func TestFreshJoinReplacesTheEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc := clustertest.Make(t, 3, clustertest.Options{})
		leader := tc.Leader(t)
		follower := tc.Followers(leader)[0]
		var raftAddr string
		for _, p := range mustPeers(t, leader) {
			if p.ID == follower.NodeID() {
				raftAddr = p.RaftAddr
			}
		}
		index := func() uint64 { return leader.Raft().LastIndex() }
		before := index()
		req := &clusterv1.JoinClusterRequest{NodeId: follower.NodeID(), RaftAddr: raftAddr, RpcAddr: follower.RPCAddr()}
		if _, err := leader.Join(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if got := index(); got != before {
			t.Fatalf("a join from a node with state wrote to the log (last index %d -> %d)", before, got)
		}
		req.Fresh = true
		if _, err := leader.Join(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		// Removed, then added: two configuration entries in the log.
		if got := index(); got < before+2 {
			t.Fatalf("a fresh join left the log at index %d (was %d); the stale entry must be removed and added again", got, before)
		}
		if got := voters(t, leader); len(got) != 3 || !slices.Contains(got, follower.NodeID()) {
			t.Fatalf("voters after the fresh join = %v, want three with %s", got, follower.NodeID())
		}
	})
}

func mustPeers(t *testing.T, n *cluster.Node) []cluster.Peer {
	t.Helper()
	ps, err := n.Peers()
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

const wait = 10 * time.Second

// fakeCluster is leadership a test can flip.
type fakeCluster struct {
	mu         sync.Mutex
	id         string
	leader     bool
	leaderAddr string
}

func (c *fakeCluster) IsLeader() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.leader }
func (c *fakeCluster) LeaderRPCAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderAddr
}
func (c *fakeCluster) NodeID() string { return c.id }
func (c *fakeCluster) set(leader bool, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader, c.leaderAddr = leader, addr
}

// fakeRegistry is an in-memory registry shared by the nodes of a test, as
// the replicated FSM would be. Each commit is counted; commitFunc, when
// set, can fail one.
type fakeRegistry struct {
	mu         sync.Mutex
	fleets     map[string]string // fleet -> asg
	instances  map[string]*shoalv1.Instance
	commits    []string
	commitFunc func(op string) error
}

func newRegistry() *fakeRegistry {
	return &fakeRegistry{fleets: map[string]string{"web": "web-asg", "api": "api-asg"}, instances: map[string]*shoalv1.Instance{}}
}

func (r *fakeRegistry) FleetForASG(asg string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for f, a := range r.fleets {
		if a == asg {
			return f, true
		}
	}
	return "", false
}

func (r *fakeRegistry) FleetExists(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.fleets[name]
	return ok
}

func (r *fakeRegistry) Instance(id string) (*shoalv1.Instance, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.instances[id]
	if !ok {
		return nil, false
	}
	return proto.Clone(in).(*shoalv1.Instance), true
}

func (r *fakeRegistry) ListInstances() []*shoalv1.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*shoalv1.Instance, 0, len(r.instances))
	for _, in := range r.instances {
		out = append(out, proto.Clone(in).(*shoalv1.Instance))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

func (r *fakeRegistry) commit(op string) error {
	r.commits = append(r.commits, op)
	if r.commitFunc != nil {
		return r.commitFunc(op)
	}
	return nil
}

func (r *fakeRegistry) RegisterInstance(_ context.Context, in *shoalv1.Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.commit("register " + in.GetId()); err != nil {
		return err
	}
	r.instances[in.GetId()] = proto.Clone(in).(*shoalv1.Instance)
	return nil
}

func (r *fakeRegistry) SetInstanceState(_ context.Context, id string, st shoalv1.InstanceState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.commit(fmt.Sprintf("state %s %s", id, st)); err != nil {
		return err
	}
	in, ok := r.instances[id]
	if !ok {
		return fmt.Errorf("instance %q: unknown instance", id)
	}
	in.State = st
	return nil
}

func (r *fakeRegistry) LeaveInstance(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.commit("leave " + id); err != nil {
		return err
	}
	if _, ok := r.instances[id]; !ok {
		return fmt.Errorf("instance %q: unknown instance", id)
	}
	delete(r.instances, id) // as the FSM does
	return nil
}

func (r *fakeRegistry) commitCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.commits)
}

func (r *fakeRegistry) state(id string) shoalv1.InstanceState {
	in, _ := r.Instance(id)
	return in.GetState()
}

// network routes dials by node name: to bufconn listeners, or with tcp set
// (the benchmark) to real loopback TCP ports.
type network struct {
	tcp     bool
	mu      sync.Mutex
	lis     map[string]*bufconn.Listener
	tcpAddr map[string]string
}

func (nw *network) dialer() grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		nw.mu.Lock()
		l, ta := nw.lis[addr], nw.tcpAddr[addr]
		nw.mu.Unlock()
		if ta != "" {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ta)
		}
		if l == nil {
			return nil, fmt.Errorf("dial %s: connection refused", addr)
		}
		return l.DialContext(ctx)
	})
}

func (nw *network) listen(t testing.TB, name string) net.Listener {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.tcp {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if nw.tcpAddr == nil {
			nw.tcpAddr = map[string]string{}
		}
		nw.tcpAddr[name] = l.Addr().String()
		return l
	}
	// 64 KB per direction per connection: enough for these messages, and
	// a thousand agents do not cost gigabytes.
	l := bufconn.Listen(64 << 10)
	if nw.lis == nil {
		nw.lis = map[string]*bufconn.Listener{}
	}
	nw.lis[name] = l
	return l
}

type testNode struct {
	svc     *Service
	cluster *fakeCluster
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testConfig is fast: the loops tick every 20 ms and silence counts after 300 ms.
func testConfig() Config {
	return Config{ReconcileEvery: 20 * time.Millisecond, ForwardEvery: 20 * time.Millisecond, StaleAfter: 300 * time.Millisecond,
		HelloTimeout: 2 * time.Second, CommitTimeout: time.Second, Logger: quiet()}
}

// startNode serves a Service named name on the network; run starts its loops.
func startNode(t testing.TB, nw *network, name string, leader bool, leaderAddr string, reg Registry, run bool, edit func(*Config)) *testNode {
	t.Helper()
	cfg := testConfig()
	cfg.DialOptions = []grpc.DialOption{nw.dialer()}
	if edit != nil {
		edit(&cfg)
	}
	cl := &fakeCluster{id: name, leader: leader, leaderAddr: leaderAddr}
	svc, err := New(cfg, cl, reg)
	if err != nil {
		t.Fatal(err)
	}
	lis := nw.listen(t, name)
	srv := rpc.NewServer()
	svc.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if run {
		go func() { _ = svc.Run(ctx); close(done) }()
	} else {
		close(done)
	}
	t.Cleanup(func() {
		cancel()
		srv.Stop()
		<-done
	})
	return &testNode{svc: svc, cluster: cl}
}

// testAgent is a raw AgentService client, as shoal-agent would speak it.
type testAgent struct {
	st      grpc.BidiStreamingClient[shoalv1.ConnectRequest, shoalv1.ConnectResponse]
	cancel  context.CancelFunc
	welcome *shoalv1.Welcome
	acks    chan *shoalv1.BatchAck
	cmds    chan *shoalv1.AgentCommand
	done    chan error
	seq     uint64
}

func hello(id string, started int64) *shoalv1.AgentHello {
	return &shoalv1.AgentHello{InstanceId: id, Fleet: "web", PrivateIp: "127.0.0.9", StartedAtUnixMs: started, IntervalMs: 1000}
}

// connect opens a stream and waits for the welcome; err is the stream's
// status when the node refuses it.
func connect(t testing.TB, nw *network, addr string, h *shoalv1.AgentHello) (*testAgent, error) {
	t.Helper()
	conn, err := rpc.Dial(addr, nw.dialer())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); conn.Close() })
	st, err := shoalv1.NewAgentServiceClient(conn).Connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Hello{Hello: h}}); err != nil {
		return nil, err
	}
	m, err := st.Recv()
	if err != nil {
		return nil, err
	}
	a := &testAgent{st: st, cancel: cancel, welcome: m.GetWelcome(), acks: make(chan *shoalv1.BatchAck, 1024),
		cmds: make(chan *shoalv1.AgentCommand, 8), done: make(chan error, 1)}
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				a.done <- err
				return
			}
			switch msg := m.GetMsg().(type) {
			case *shoalv1.ConnectResponse_Ack:
				select {
				case a.acks <- msg.Ack:
				default: // nobody reads acks in the benchmark
				}
			case *shoalv1.ConnectResponse_Command:
				a.cmds <- msg.Command
			}
		}
	}()
	return a, nil
}

func (a *testAgent) send(t testing.TB, ready bool, samples ...*shoalv1.Sample) {
	t.Helper()
	a.seq++
	if err := a.st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Batch{Batch: &shoalv1.SampleBatch{
		Seq: a.seq, Samples: samples, Ready: ready}}}); err != nil {
		t.Fatalf("send batch: %v", err)
	}
}

func smp(ts time.Time, kv ...any) *shoalv1.Sample {
	v := map[string]float64{}
	for i := 0; i < len(kv); i += 2 {
		v[kv[i].(string)] = kv[i+1].(float64)
	}
	return &shoalv1.Sample{UnixMs: ts.UnixMilli(), Values: v}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

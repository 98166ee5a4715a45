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
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// wait bounds every wait in these tests: real time for the few that run
// outside a synctest bubble, the bubble's fake time for the rest.
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
func (c *fakeCluster) LeaderAgentAddr() string { return c.LeaderRPCAddr() }
func (c *fakeCluster) NodeID() string          { return c.id }
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
// (the benchmark) to real loopback TCP ports. Only bufconn works inside a
// synctest bubble, and only when the network, its nodes and its clients are
// all made in the bubble: a bufconn read or write waits on a sync.Cond,
// which is durably blocking, while a goroutine waiting on a socket (or on a
// channel made outside the bubble) keeps the bubble busy, so its fake clock
// never moves and synctest.Wait never returns.
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
	cfg     Config
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testConfig is the production configuration, quiet. The tests that wait on
// its periods run in a synctest bubble, where they cost no real time.
func testConfig() Config {
	c := DefaultConfig()
	c.Logger = quiet()
	return c
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
	clusterv1.RegisterClusterServiceServer(srv, forwardOnly{svc: svc})
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
	return &testNode{svc: svc, cluster: cl, cfg: cfg}
}

// testAgent is a raw AgentService client, as shoal-agent would speak it.
type testAgent struct {
	st      grpc.BidiStreamingClient[shoalv1.ConnectRequest, shoalv1.ConnectResponse]
	cancel  context.CancelFunc
	welcome *shoalv1.Welcome
	acks    chan *shoalv1.BatchAck
	cmds    chan *shoalv1.AgentCommand
	done    chan error
	// sendMu serialises sends: a gRPC stream takes one sender at a time.
	sendMu sync.Mutex
	seq    uint64
}

func hello(id string, started int64) *shoalv1.AgentHello {
	return &shoalv1.AgentHello{InstanceId: id, Fleet: "web", PrivateIp: "127.0.0.9", StartTime: timestamppb.New(time.UnixMilli(started)), Interval: durationpb.New(time.Second)}
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
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	a.seq++
	if err := a.st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Batch{Batch: &shoalv1.SampleBatch{
		Seq: a.seq, Samples: samples, Ready: ready}}}); err != nil {
		t.Fatalf("send batch: %v", err)
	}
}

// sendRaw sends m without failing the test: for goroutines, and for
// messages sent after the stream may have ended.
func (a *testAgent) sendRaw(m *shoalv1.ConnectRequest) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	return a.st.Send(m)
}

// every sends a ready sample of vals each period until the test ends, as a
// running agent does.
func (a *testAgent) every(t testing.TB, period time.Duration, vals ...any) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(period)
		defer tk.Stop()
		for {
			a.sendMu.Lock()
			a.seq++
			// An error means the stream ended; the test sees that itself.
			_ = a.st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Batch{Batch: &shoalv1.SampleBatch{
				Seq: a.seq, Ready: true, Samples: []*shoalv1.Sample{smp(time.Now(), vals...)}}}})
			a.sendMu.Unlock()
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

func smp(ts time.Time, kv ...any) *shoalv1.Sample {
	v := map[string]float64{}
	for i := 0; i < len(kv); i += 2 {
		v[kv[i].(string)] = kv[i+1].(float64)
	}
	return &shoalv1.Sample{UnixMs: ts.UnixMilli(), Values: v}
}

// advance moves a synctest bubble's fake clock on by d, and returns once
// everything that was due by then has run. synctest.Wait panics outside a
// bubble, so this never sleeps in real time.
func advance(d time.Duration) {
	synctest.Wait()
	time.Sleep(d)
	synctest.Wait()
}

// forwardOnly serves the ClusterService call that ingest owns; in a node the
// server package serves the rest of ClusterService.
type forwardOnly struct {
	clusterv1.UnimplementedClusterServiceServer
	svc *Service
}

func (f forwardOnly) ForwardAgents(st clusterv1.ClusterService_ForwardAgentsServer) error {
	return f.svc.ForwardAgents(st)
}

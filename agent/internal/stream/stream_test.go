package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

const wait = 5 * time.Second

// node is a fake coordinator node on a bufconn listener.
type node struct {
	shoalv1.UnimplementedAgentServiceServer
	name    string
	hellos  chan *shoalv1.AgentHello
	batches chan *shoalv1.SampleBatch
	results chan *shoalv1.CommandResult
	goodbye chan *shoalv1.AgentGoodbye
	events  chan *shoalv1.InstanceEvent
	// handle replaces the default behaviour after the hello when set.
	handle func(st grpc.BidiStreamingServer[shoalv1.ConnectRequest, shoalv1.ConnectResponse]) error
	// refuse, when set, ends the stream at once with this status.
	refuse error
	hint   string
}

func newNode(name string) *node {
	return &node{name: name, hellos: make(chan *shoalv1.AgentHello, 64),
		batches: make(chan *shoalv1.SampleBatch, 256), results: make(chan *shoalv1.CommandResult, 8),
		goodbye: make(chan *shoalv1.AgentGoodbye, 1), events: make(chan *shoalv1.InstanceEvent, 64)}
}

func (n *node) Connect(st grpc.BidiStreamingServer[shoalv1.ConnectRequest, shoalv1.ConnectResponse]) error {
	m, err := st.Recv()
	if err != nil {
		return err
	}
	if n.refuse != nil {
		st.SetTrailer(metadata.Pairs(LeaderHintKey, n.hint))
		return n.refuse
	}
	n.hellos <- m.GetHello()
	if err := st.Send(&shoalv1.ConnectResponse{Msg: &shoalv1.ConnectResponse_Welcome{Welcome: &shoalv1.Welcome{NodeId: n.name}}}); err != nil {
		return err
	}
	if n.handle != nil {
		return n.handle(st)
	}
	return n.loop(st)
}

func (n *node) loop(st grpc.BidiStreamingServer[shoalv1.ConnectRequest, shoalv1.ConnectResponse]) error {
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch msg := m.GetMsg().(type) {
		case *shoalv1.ConnectRequest_Batch:
			n.batches <- msg.Batch
		case *shoalv1.ConnectRequest_CommandResult:
			n.results <- msg.CommandResult
		case *shoalv1.ConnectRequest_Goodbye:
			n.goodbye <- msg.Goodbye
		case *shoalv1.ConnectRequest_Event:
			n.events <- msg.Event
		}
	}
}

// network maps addresses to running nodes; a stopped address refuses dials.
type network struct {
	mu    sync.Mutex
	lis   map[string]*bufconn.Listener
	srv   map[string]*grpc.Server
	dials map[string]int
}

func newNetwork(t *testing.T) *network {
	nw := &network{lis: map[string]*bufconn.Listener{}, srv: map[string]*grpc.Server{}, dials: map[string]int{}}
	t.Cleanup(func() {
		nw.mu.Lock()
		defer nw.mu.Unlock()
		for _, s := range nw.srv {
			s.Stop()
		}
	})
	return nw
}

func (nw *network) start(n *node) {
	lis := bufconn.Listen(1 << 20)
	srv := rpc.NewServer()
	shoalv1.RegisterAgentServiceServer(srv, n)
	go func() { _ = srv.Serve(lis) }()
	nw.mu.Lock()
	nw.lis[n.name], nw.srv[n.name] = lis, srv
	nw.mu.Unlock()
}

func (nw *network) stop(name string) {
	nw.mu.Lock()
	srv := nw.srv[name]
	delete(nw.lis, name)
	delete(nw.srv, name)
	nw.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

func (nw *network) dialer() grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		nw.mu.Lock()
		lis := nw.lis[addr]
		nw.dials[addr]++
		nw.mu.Unlock()
		if lis == nil {
			return nil, fmt.Errorf("dial %s: connection refused", addr)
		}
		return lis.DialContext(ctx)
	})
}

func (nw *network) dialCount(addr string) int {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.dials[addr]
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startClient(t *testing.T, nw *network, addrs []string, edit func(*Config)) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addrs, cfg.Hello = addrs, &shoalv1.AgentHello{InstanceId: "i-1", Fleet: "web"}
	cfg.Backoff, cfg.MaxBackoff, cfg.WelcomeTimeout = 5*time.Millisecond, 50*time.Millisecond, 2*time.Second
	cfg.DialOptions, cfg.Logger = []grpc.DialOption{nw.dialer()}, quiet()
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("Run did not return after cancel")
		}
	})
	return c
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func sample(ms int64) *shoalv1.Sample {
	return &shoalv1.Sample{UnixMs: ms, Values: map[string]float64{"cpu": float64(ms)}}
}

// collectSamples reads batches until it has n samples.
func collectSamples(t *testing.T, n *node, want int) []int64 {
	t.Helper()
	var got []int64
	for len(got) < want {
		b := recv(t, n.batches, fmt.Sprintf("samples (have %d of %d)", len(got), want))
		for _, s := range b.GetSamples() {
			got = append(got, s.GetUnixMs())
		}
	}
	return got
}

func TestHelloThenBatches(t *testing.T) {
	nw := newNetwork(t)
	a := newNode("a")
	nw.start(a)
	c := startClient(t, nw, []string{"a"}, nil)
	h := recv(t, a.hellos, "hello")
	if h.GetInstanceId() != "i-1" || h.GetFleet() != "web" {
		t.Fatalf("hello = %v", h)
	}
	c.Push(sample(1), true, "")
	b1 := recv(t, a.batches, "batch 1")
	c.Push(sample(2), false, "health: 503")
	b2 := recv(t, a.batches, "batch 2")
	if b1.GetSeq() != 1 || b2.GetSeq() != 2 {
		t.Errorf("seqs = %d, %d; want 1, 2", b1.GetSeq(), b2.GetSeq())
	}
	if !b1.GetReady() || b2.GetReady() || b2.GetReadyReason() != "health: 503" {
		t.Errorf("readiness not carried: %v / %v", b1, b2)
	}
	if b2.GetSamples()[0].GetValues()["cpu"] != 2 {
		t.Errorf("batch 2 = %v", b2)
	}
}

func TestReconnectAfterStreamDrop(t *testing.T) {
	nw := newNetwork(t)
	a := newNode("a")
	var mu sync.Mutex
	streams := 0
	a.handle = func(st grpc.BidiStreamingServer[shoalv1.ConnectRequest, shoalv1.ConnectResponse]) error {
		mu.Lock()
		streams++
		first := streams == 1
		mu.Unlock()
		if first {
			m, err := st.Recv()
			if err != nil {
				return err
			}
			a.batches <- m.GetBatch()
			return status.Error(codes.Unavailable, "node restarting")
		}
		return a.loop(st)
	}
	nw.start(a)
	c := startClient(t, nw, []string{"a"}, nil)
	recv(t, a.hellos, "first hello")
	c.Push(sample(1), true, "")
	recv(t, a.batches, "batch on the first stream")
	recv(t, a.hellos, "hello after reconnect")
	c.Push(sample(2), true, "")
	if got := collectSamples(t, a, 1); got[0] != 2 {
		t.Errorf("after reconnect got samples %v, want [2]", got)
	}
	if r := c.Stats().Reconnects; r < 1 {
		t.Errorf("reconnects = %d, want >= 1", r)
	}
}

func TestBufferOverflowCountedAndReported(t *testing.T) {
	nw := newNetwork(t)
	c := startClient(t, nw, []string{"a"}, func(cfg *Config) { cfg.BufferSize = 5 })
	for i := int64(1); i <= 12; i++ {
		c.Push(sample(i), true, "")
	}
	if s := c.Stats(); s.Dropped != 7 || s.Buffered != 5 || s.Connected {
		t.Fatalf("stats while down = %+v, want dropped 7, buffered 5, not connected", s)
	}
	a := newNode("a")
	nw.start(a)
	h := recv(t, a.hellos, "hello")
	if h.GetDroppedSamplesTotal() != 7 {
		t.Errorf("hello dropped = %d, want 7", h.GetDroppedSamplesTotal())
	}
	b := recv(t, a.batches, "backlog")
	var got []int64
	for _, s := range b.GetSamples() {
		got = append(got, s.GetUnixMs())
	}
	if fmt.Sprint(got) != "[8 9 10 11 12]" || b.GetDroppedSamplesTotal() != 7 {
		t.Errorf("backlog = %v dropped %d, want the newest [8 9 10 11 12] and 7", got, b.GetDroppedSamplesTotal())
	}
}

func TestBacklogSentInBoundedBatches(t *testing.T) {
	nw := newNetwork(t)
	c := startClient(t, nw, []string{"a"}, func(cfg *Config) { cfg.MaxBatch = 3 })
	for i := int64(1); i <= 7; i++ {
		c.Push(sample(i), true, "")
	}
	a := newNode("a")
	nw.start(a)
	for i, want := range []int{3, 3, 1} {
		b := recv(t, a.batches, "batch")
		if len(b.GetSamples()) != want {
			t.Errorf("batch %d has %d samples, want %d", i+1, len(b.GetSamples()), want)
		}
	}
}

func TestFailoverAcrossAddresses(t *testing.T) {
	nw := newNetwork(t)
	a, b := newNode("a"), newNode("b")
	nw.start(b)
	c := startClient(t, nw, []string{"a", "b"}, nil)
	recv(t, b.hellos, "hello on b while a is down")
	nw.stop("b")
	nw.start(a)
	recv(t, a.hellos, "hello on a after b went down")
	c.Push(sample(5), true, "")
	if got := collectSamples(t, a, 1); got[0] != 5 {
		t.Errorf("samples on a = %v", got)
	}
}

func TestFollowsLeaderHint(t *testing.T) {
	nw := newNetwork(t)
	a, b, cNode := newNode("a"), newNode("b"), newNode("c")
	a.refuse, a.hint = status.Error(codes.Unavailable, "no leader link; go to b"), "b"
	nw.start(a)
	nw.start(b)
	nw.start(cNode)
	startClient(t, nw, []string{"a", "c", "b"}, nil)
	recv(t, b.hellos, "hello on the hinted node")
	if n := nw.dialCount("c"); n != 0 {
		t.Errorf("c was dialled %d times; the hint should have sent the agent to b", n)
	}
}

func TestCommandRunsAndReports(t *testing.T) {
	nw := newNetwork(t)
	a := newNode("a")
	deadline := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	a.handle = func(st grpc.BidiStreamingServer[shoalv1.ConnectRequest, shoalv1.ConnectResponse]) error {
		cmds := []*shoalv1.AgentCommand{
			{Id: "d1", Kind: shoalv1.CommandKind_COMMAND_KIND_DRAIN, Deadline: timestamppb.New(deadline)},
			{Id: "x1", Kind: shoalv1.CommandKind_COMMAND_KIND_UNSPECIFIED},
			{Id: "bad", Kind: shoalv1.CommandKind_COMMAND_KIND_DRAIN, Deadline: &timestamppb.Timestamp{Nanos: -1}},
		}
		for _, cmd := range cmds {
			if err := st.Send(&shoalv1.ConnectResponse{Msg: &shoalv1.ConnectResponse_Command{Command: cmd}}); err != nil {
				return err
			}
		}
		return a.loop(st)
	}
	nw.start(a)
	var gotDeadline time.Time
	var ran []string
	var mu sync.Mutex
	startClient(t, nw, []string{"a"}, func(cfg *Config) {
		cfg.OnCommand = func(ctx context.Context, cmd *shoalv1.AgentCommand) *shoalv1.CommandResult {
			mu.Lock()
			gotDeadline, _ = ctx.Deadline()
			ran = append(ran, cmd.GetId())
			mu.Unlock()
			return &shoalv1.CommandResult{Ok: true, Output: "drained"}
		}
	})
	results := map[string]*shoalv1.CommandResult{}
	for range 3 {
		r := recv(t, a.results, "command result")
		results[r.GetId()] = r
	}
	if r := results["d1"]; !r.GetOk() || r.GetOutput() != "drained" || r.GetKind() != shoalv1.CommandKind_COMMAND_KIND_DRAIN {
		t.Errorf("drain result = %v", r)
	}
	if r := results["x1"]; r.GetOk() || r.GetError() == "" {
		t.Errorf("unknown command result = %v, want an error", r)
	}
	if r := results["bad"]; r.GetOk() || !strings.Contains(r.GetError(), "deadline") {
		t.Errorf("result for a malformed deadline = %v, want a deadline error", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if !gotDeadline.Equal(deadline) {
		t.Errorf("command context deadline = %v, want the command's deadline %v", gotDeadline, deadline)
	}
	if fmt.Sprint(ran) != "[d1]" {
		t.Errorf("the drain hook ran for %v, want only d1", ran)
	}
}

func TestRing(t *testing.T) {
	cases := []struct {
		name       string
		size, push int
		want       string
		dropped    uint64
	}{
		{"under capacity", 4, 3, "[1 2 3]", 0},
		{"exactly full", 3, 3, "[1 2 3]", 0},
		{"wrapped twice", 3, 8, "[6 7 8]", 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(tc.size)
			for i := 1; i <= tc.push; i++ {
				r.push(sample(int64(i)))
			}
			var got []int64
			for _, s := range r.peek(10) {
				got = append(got, s.GetUnixMs())
			}
			if fmt.Sprint(got) != tc.want || r.dropped != tc.dropped {
				t.Errorf("ring = %v dropped %d; want %s dropped %d", got, r.dropped, tc.want, tc.dropped)
			}
			r.pop(2)
			if r.n != max(0, min(tc.size, tc.push)-2) {
				t.Errorf("after pop(2) n = %d", r.n)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	hello := &shoalv1.AgentHello{InstanceId: "i-1"}
	cases := []struct {
		name string
		edit func(*Config)
		want string // "" is valid
	}{
		{"ok", func(*Config) {}, ""},
		{"no addrs", func(c *Config) { c.Addrs = nil }, "no coordinator address"},
		{"empty addr", func(c *Config) { c.Addrs = []string{"a:1", ""} }, "address 1 is empty"},
		{"no instance", func(c *Config) { c.Hello = &shoalv1.AgentHello{} }, "hello must name the instance"},
		{"negative buffer", func(c *Config) { c.BufferSize = -1 }, "buffer size (-1)"},
		{"no logger", func(c *Config) { c.Logger = nil }, "logger"},
		{"zero config", func(c *Config) { *c = Config{Addrs: c.Addrs, Hello: c.Hello} }, "buffer size (0)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Addrs, cfg.Hello = []string{"a:1"}, hello
			tc.edit(&cfg)
			_, err := New(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New = %v, want ok", err)
			case tc.want != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("New = %v, want ErrConfig naming %q", err, tc.want)
			}
		})
	}
}

func TestGoodbyeOnStop(t *testing.T) {
	nw := newNetwork(t)
	a := newNode("a")
	nw.start(a)
	cfg := DefaultConfig()
	cfg.Addrs, cfg.Hello = []string{"a"}, &shoalv1.AgentHello{InstanceId: "i-1"}
	cfg.Backoff, cfg.MaxBackoff, cfg.DialOptions, cfg.Logger = 5*time.Millisecond, 50*time.Millisecond, []grpc.DialOption{nw.dialer()}, quiet()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	recv(t, a.hellos, "hello")
	// Samples flow only once the stream is welcomed: a batch arriving is
	// the event that says the client is connected.
	c.Push(sample(1), true, "")
	recv(t, a.batches, "a batch on the welcomed stream")
	if !c.Stats().Connected {
		t.Fatal("a batch arrived but Stats().Connected = false")
	}
	cancel()
	if g := recv(t, a.goodbye, "goodbye"); g.GetReason() == "" {
		t.Error("goodbye without a reason")
	}
	if err := recv(t, done, "Run to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

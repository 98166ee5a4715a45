package feed

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/deploy/bench/benchbackend"
	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// fakeCoordinator is a BackendService that sends the sets it is given and
// records what LBs send.
type fakeCoordinator struct {
	shoalv1.UnimplementedBackendServiceServer
	sets    chan *shoalv1.BackendSet
	hellos  chan *shoalv1.LBHello
	reports chan *shoalv1.LBReport
}

func newFake() *fakeCoordinator {
	return &fakeCoordinator{sets: make(chan *shoalv1.BackendSet, 8), hellos: make(chan *shoalv1.LBHello, 8), reports: make(chan *shoalv1.LBReport, 256)}
}

func (f *fakeCoordinator) WatchBackends(st grpc.BidiStreamingServer[shoalv1.WatchBackendsRequest, shoalv1.WatchBackendsResponse]) error {
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				errc <- err
				return
			}
			if h := m.GetHello(); h != nil {
				f.hellos <- h
			}
			if r := m.GetReport(); r != nil {
				select {
				case f.reports <- r:
				default:
				}
			}
		}
	}()
	for {
		select {
		case set := <-f.sets:
			if err := st.Send(&shoalv1.WatchBackendsResponse{Backends: set}); err != nil {
				return err
			}
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-st.Context().Done():
			return st.Context().Err()
		}
	}
}

// coordinatorNet serves fake coordinators on bufconn listeners that can be
// stopped and restarted, like a coordinator going down and coming back.
type coordinatorNet struct {
	mu  sync.Mutex
	lis *bufconn.Listener
	srv *grpc.Server
}

func (n *coordinatorNet) start(f *fakeCoordinator) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lis = bufconn.Listen(1 << 20)
	n.srv = rpc.NewServer()
	shoalv1.RegisterBackendServiceServer(n.srv, f)
	go n.srv.Serve(n.lis)
}

func (n *coordinatorNet) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.srv.Stop()
	n.lis.Close()
}

func (n *coordinatorNet) dialer() grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		if addr == "down:1" {
			return nil, errors.New("connection refused")
		}
		n.mu.Lock()
		lis := n.lis
		n.mu.Unlock()
		return lis.DialContext(ctx)
	})
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func recv[T any](t *testing.T, ch chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// eventually re-checks cond on a ticker until it holds, for at most 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// testConfig is the default config for fleet web on the test network.
func testConfig(cn *coordinatorNet, lbID string, addrs ...string) Config {
	c := DefaultConfig()
	c.Addrs, c.Fleet, c.LBID = addrs, "web", lbID
	c.ReportInterval, c.BackoffMin, c.BackoffMax = 50*time.Millisecond, 10*time.Millisecond, 50*time.Millisecond
	c.DialOptions, c.Logger = []grpc.DialOption{cn.dialer()}, quiet()
	return c
}

func testBalancer(t *testing.T) *balance.Balancer {
	t.Helper()
	bc := balance.DefaultConfig()
	bc.Fleet = "web"
	bal, err := balance.New(bc, balance.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	return bal
}

func TestFeedAppliesSetsAndReports(t *testing.T) {
	f := newFake()
	var cn coordinatorNet
	cn.start(f)
	t.Cleanup(cn.stop)
	bal := testBalancer(t)
	// The first address is down: the client must move on to the next.
	c, err := New(testConfig(&cn, "lb-1", "down:1", "coord:1"), bal)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)

	h := recv(t, f.hellos, "hello")
	if h.GetLbId() != "lb-1" || h.GetFleet() != "web" {
		t.Fatalf("hello %v", h)
	}
	f.sets <- &shoalv1.BackendSet{Fleet: "web", Version: 7, Backends: []*shoalv1.Backend{
		{InstanceId: "i-a", Address: "10.0.0.1:80", State: shoalv1.BackendState_BACKEND_STATE_ACTIVE, Load: 1},
		{InstanceId: "i-b", Address: "10.0.0.2:80", State: shoalv1.BackendState_BACKEND_STATE_DRAINING, Load: 2, DrainDeadline: timestamppb.New(time.UnixMilli(5000))},
	}}
	eventually(t, "set applied", func() bool { return bal.Version() == 7 })
	bs := bal.Backends()
	if len(bs) != 2 || bs[0].ID != "i-a" || bs[1].State() != balance.Draining || bs[1].Load() != 2 || bs[1].DrainDeadline().UnixMilli() != 5000 {
		t.Fatalf("applied set wrong: %+v", bs)
	}
	for range 3 {
		be, err := bal.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		bal.Done(be, balance.Outcome{Status: 200, Latency: 3 * time.Millisecond})
	}
	be, _ := bal.Pick(nil)
	bal.Done(be, balance.Outcome{Status: 502, ConnectFailed: true})
	var got *shoalv1.BackendLoad
	eventually(t, "report with the requests", func() bool {
		r := recv(t, f.reports, "report")
		for _, b := range r.GetBackends() {
			if b.GetAddress() == "10.0.0.1:80" && b.GetRequests() == 4 {
				got = b
				return r.GetVersion() == 7
			}
		}
		return false
	})
	if got.GetErrors() != 1 || got.GetInstanceId() != "i-a" || got.GetLatencyP50Ms() != 5 || !got.GetHealthy() || got.GetState() != shoalv1.BackendState_BACKEND_STATE_ACTIVE {
		t.Fatalf("report %v", got)
	}
	// Counts are per interval: the next report starts from zero.
	r := recv(t, f.reports, "next report")
	for _, b := range r.GetBackends() {
		if b.GetRequests() != 0 {
			t.Fatalf("requests double-counted: %v", b)
		}
		if b.GetAddress() == "10.0.0.2:80" && (b.GetState() != shoalv1.BackendState_BACKEND_STATE_DRAINING || b.GetInFlight() != 0) {
			t.Fatalf("draining backend reported as %v", b)
		}
	}

	// Sets arrive in order on one stream: once the next good set is in,
	// the other fleet's was handled before it.
	applied := c.SetsApplied()
	f.sets <- &shoalv1.BackendSet{Fleet: "api", Version: 8}
	f.sets <- &shoalv1.BackendSet{Fleet: "web", Version: 9, Backends: []*shoalv1.Backend{{InstanceId: "i-a", Address: "10.0.0.1:80"}}}
	eventually(t, "the next set for web", func() bool { return bal.Version() == 9 })
	if got := c.SetsApplied(); got != applied+1 {
		t.Fatalf("%d sets applied for 2 sent, one for another fleet: it was applied", got-applied)
	}
}

func TestLBServesLastKnownSetWhileCoordinatorDown(t *testing.T) {
	var addrs []string
	for i := range 2 {
		b := benchbackend.New("be" + string(rune('0'+i)))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go b.ServeHTTP(ln)
		t.Cleanup(b.Close)
		addrs = append(addrs, ln.Addr().String())
	}
	pc, bc := proxy.DefaultConfig(), balance.DefaultConfig()
	pc.Logger, bc.Fleet = quiet(), "web"
	p, err := proxy.New(pc, bc)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	f := newFake()
	var cn coordinatorNet
	cn.start(f)
	c, err := New(testConfig(&cn, ln.Addr().String(), "coord:1"), p.Balancer())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	recv(t, f.hellos, "hello")
	f.sets <- &shoalv1.BackendSet{Fleet: "web", Version: 1, Backends: []*shoalv1.Backend{{Address: addrs[0]}, {Address: addrs[1]}}}
	eventually(t, "connected with a set", c.Connected)

	hc := &http.Client{Timeout: 5 * time.Second}
	serve := func() map[string]int {
		seen := map[string]int{}
		for range 40 {
			resp, err := hc.Get("http://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			seen[resp.Header.Get(benchbackend.InstanceHeader)]++
		}
		return seen
	}
	serve()
	cn.stop()
	eventually(t, "feed noticing the coordinator is gone", func() bool { return !c.Connected() })
	if seen := serve(); len(seen) != 2 {
		t.Fatalf("with the coordinator down the LB served %v, want both last-known backends", seen)
	}
	// The coordinator comes back with a smaller set: the LB reconnects.
	cn.start(f)
	t.Cleanup(cn.stop)
	recv(t, f.hellos, "hello after reconnect")
	f.sets <- &shoalv1.BackendSet{Fleet: "web", Version: 2, Backends: []*shoalv1.Backend{{Address: addrs[1]}}}
	eventually(t, "new set applied", func() bool { return p.Balancer().Version() == 2 })
	if seen := serve(); len(seen) != 1 || seen["be1"] != 40 {
		t.Fatalf("after reconnect served %v, want only be1", seen)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Addrs, ok.Fleet, ok.LBID = []string{"a:1"}, "web", "x"
	cases := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no addrs", func(c *Config) { c.Addrs = nil }, "coordinator"},
		{"no fleet", func(c *Config) { c.Fleet = "" }, "fleet"},
		{"empty addr", func(c *Config) { c.Addrs = []string{"a:1", ""} }, "address 1"},
		{"bad backoff", func(c *Config) { c.BackoffMin = time.Second; c.BackoffMax = time.Millisecond }, "backoff"},
		{"zero report interval", func(c *Config) { c.ReportInterval = 0 }, "report-interval (0s) must be > 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mut(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if got := SplitAddrs(" a:1, ,b:2 "); len(got) != 2 || got[1] != "b:2" {
		t.Fatalf("SplitAddrs %v", got)
	}
}

func TestApplyDropsBadEntriesAndKeepsTheRest(t *testing.T) {
	bal, err := balance.New(balance.DefaultConfig(), balance.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Addrs, cfg.Fleet, cfg.LBID = []string{"c:1"}, "web", "lb-1"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := New(cfg, bal)
	if err != nil {
		t.Fatal(err)
	}
	active := shoalv1.BackendState_BACKEND_STATE_ACTIVE
	be := func(id, addr string, st shoalv1.BackendState) *shoalv1.Backend {
		return &shoalv1.Backend{InstanceId: id, Address: addr, State: st}
	}
	if err := c.Apply(&shoalv1.BackendSet{Fleet: "web", Version: 1, Backends: []*shoalv1.Backend{be("i-a", "10.0.0.1:80", active)}}); err != nil {
		t.Fatal(err)
	}
	// The update that froze the LB: a duplicate next to a new backend.
	set := &shoalv1.BackendSet{Fleet: "web", Version: 2, Backends: []*shoalv1.Backend{
		be("i-a", "10.0.0.1:80", active),
		be("i-a2", "10.0.0.1:80", shoalv1.BackendState_BACKEND_STATE_DRAINING),
		be("i-b", "10.0.0.2:80", active),
		be("i-c", "10.0.0.3", active),
		be("i-d", "10.0.0.4:0", active),
		be("i-e", "", active),
		be("i-f", ":80", active),
		be("i-g", "10.0.0.7:80", shoalv1.BackendState(42)),
		be("i-h", "10.0.0.8:80", shoalv1.BackendState_BACKEND_STATE_UNSPECIFIED),
		{InstanceId: "i-j", Address: "10.0.0.9:80", State: shoalv1.BackendState_BACKEND_STATE_DRAINING,
			DrainDeadline: &timestamppb.Timestamp{Seconds: 1, Nanos: 1e9}},
	}}
	if err := c.Apply(set); err != nil {
		t.Fatalf("set with bad entries refused: %v", err)
	}
	got := map[string]string{}
	for _, b := range bal.Backends() {
		got[b.Addr] = b.ID + "/" + b.State().String()
	}
	want := map[string]string{"10.0.0.1:80": "i-a/" + balance.Active.String(), "10.0.0.2:80": "i-b/" + balance.Active.String(), "10.0.0.8:80": "i-h/" + balance.Active.String()}
	if len(got) != len(want) {
		t.Fatalf("backends %v, want %v", got, want)
	}
	for a, w := range want {
		if got[a] != w {
			t.Fatalf("backends %v, want %v", got, want)
		}
	}
	if bal.Version() != 2 {
		t.Fatalf("version %d, want 2", bal.Version())
	}
	for r, n := range map[DropReason]uint64{DropDuplicate: 1, DropBadAddress: 4, DropUnknownState: 1, DropBadDeadline: 1} {
		if c.Dropped(r) != n {
			t.Errorf("dropped %s = %d, want %d", r, c.Dropped(r), n)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	n, err := testutil.GatherAndCount(reg, "shoal_lb_feed_entries_dropped_total")
	if err != nil || n != int(nDropReasons) {
		t.Fatalf("exported %d series (%v), want one per reason", n, err)
	}
}

// Over the stream, as it happened: the LB was on {a}, the coordinator sent
// {a, a, b}; b must be served from that same update.
func TestDuplicateInStreamDoesNotFreezeTheSet(t *testing.T) {
	f := newFake()
	var cn coordinatorNet
	cn.start(f)
	t.Cleanup(cn.stop)
	bal := testBalancer(t)
	c, err := New(testConfig(&cn, "lb-1", "coord:1"), bal)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	recv(t, f.hellos, "hello")
	a := &shoalv1.Backend{InstanceId: "i-a", Address: "10.0.0.1:80", State: shoalv1.BackendState_BACKEND_STATE_ACTIVE}
	f.sets <- &shoalv1.BackendSet{Fleet: "web", Version: 1, Backends: []*shoalv1.Backend{a}}
	eventually(t, "first set", func() bool { return bal.Version() == 1 })
	f.sets <- &shoalv1.BackendSet{Fleet: "web", Version: 2, Backends: []*shoalv1.Backend{a, a,
		{InstanceId: "i-b", Address: "10.0.0.2:80", State: shoalv1.BackendState_BACKEND_STATE_ACTIVE}}}
	eventually(t, "the set with the duplicate", func() bool { return bal.Version() == 2 })
	var addrs []string
	for _, b := range bal.Backends() {
		addrs = append(addrs, b.Addr)
	}
	if strings.Join(addrs, ",") != "10.0.0.1:80,10.0.0.2:80" {
		t.Fatalf("backends %v, want a and the new b", addrs)
	}
	if c.Dropped(DropDuplicate) != 1 {
		t.Fatalf("duplicates dropped = %d, want 1", c.Dropped(DropDuplicate))
	}
}

func TestReportCarriesTheClockTime(t *testing.T) {
	bal, err := balance.New(balance.DefaultConfig(), balance.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	cfg := DefaultConfig()
	cfg.Addrs, cfg.Fleet, cfg.LBID = []string{"c:1"}, "web", "lb-1"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Now = func() time.Time { return at }
	c, err := New(cfg, bal)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Report().GetReportTime(); !got.AsTime().Equal(at) {
		t.Fatalf("report_time = %v, want %v", got.AsTime(), at)
	}
}

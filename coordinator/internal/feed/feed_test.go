package feed

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type lead struct {
	leader bool
	addr   string
}

func (l lead) IsLeader() bool        { return l.leader }
func (l lead) LeaderRPCAddr() string { return l.addr }

// world is a fleet's backend set that a test changes under the service.
type world struct {
	mu sync.Mutex
	bs map[string][]*shoalv1.Backend
}

func (w *world) get(fleet string) ([]*shoalv1.Backend, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	bs, ok := w.bs[fleet]
	if !ok {
		return nil, ErrUnknownFleet
	}
	out := make([]*shoalv1.Backend, len(bs))
	for i, b := range bs {
		out[i] = proto.Clone(b).(*shoalv1.Backend)
	}
	return out, nil
}

func (w *world) setState(fleet, id string, st shoalv1.BackendState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.bs[fleet] {
		if b.InstanceId == id {
			b.State = st
		}
	}
}

func serve(t *testing.T, svc *Service) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := rpc.NewServer()
	svc.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

func open(t *testing.T, addr, lb, fleet string) (shoalv1.BackendService_WatchBackendsClient, context.CancelFunc) {
	t.Helper()
	conn, err := rpc.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	st, err := shoalv1.NewBackendServiceClient(conn).WatchBackends(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&shoalv1.WatchBackendsRequest{Msg: &shoalv1.WatchBackendsRequest_Hello{Hello: &shoalv1.LBHello{LbId: lb, Fleet: fleet}}}); err != nil {
		t.Fatal(err)
	}
	return st, cancel
}

// recvUntil reads sets until ok accepts one; the stream's own deadline bounds it.
func recvUntil(t *testing.T, st shoalv1.BackendService_WatchBackendsClient, ok func(*shoalv1.BackendSet) bool) *shoalv1.BackendSet {
	t.Helper()
	for {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if ok(m.Backends) {
			return m.Backends
		}
	}
}

func report(t *testing.T, st shoalv1.BackendService_WatchBackendsClient, unixMS int64, version uint64, loads ...*shoalv1.BackendLoad) {
	t.Helper()
	if err := st.Send(&shoalv1.WatchBackendsRequest{Msg: &shoalv1.WatchBackendsRequest_Report{Report: &shoalv1.LBReport{ReportTime: tsms(unixMS), Version: version, Backends: loads}}}); err != nil {
		t.Fatal(err)
	}
}

// eventually checks cond every 5 ms until it holds, for up to 10 s. It polls
// because the streams run over loopback TCP (a follower dials its leader
// with rpc.Dial), which no synctest bubble can hold, and the service sends
// nothing back when it has taken a report in.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func newWorld() *world {
	return &world{bs: map[string][]*shoalv1.Backend{"web": {
		{InstanceId: "i-a", Address: "127.0.1.1:8080", State: shoalv1.BackendState_BACKEND_STATE_ACTIVE, Load: 1},
		{InstanceId: "i-b", Address: "127.0.1.2:8080", State: shoalv1.BackendState_BACKEND_STATE_ACTIVE, Load: 1},
	}}}
}

func TestHelloValidation(t *testing.T) {
	svc := mustNew(t, DefaultConfig(), newWorld().get, lead{leader: true}, nil)
	addr := serve(t, svc)
	for _, tc := range []struct {
		name, lb, fleet string
		code            codes.Code
		msg             string
	}{
		{"no lb id", "", "web", codes.InvalidArgument, "hello.lb_id"},
		{"no fleet", "lb1", "", codes.InvalidArgument, "hello.fleet"},
		{"unknown fleet", "lb1", "api", codes.NotFound, `unknown fleet "api"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, cancel := open(t, addr, tc.lb, tc.fleet)
			defer cancel()
			_, err := st.Recv()
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestDrainNeedsEveryLiveLB(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	w := newWorld()
	svc := mustNew(t, configWith(func(c *Config) { c.Now = clk.Now; c.PollEvery = 5 * time.Millisecond }), w.get, lead{leader: true}, nil)
	addr := serve(t, svc)

	if ok, _ := svc.Drained("web", "i-b"); ok {
		t.Fatal("a node just become leader drained before any LB could reconnect")
	}
	clk.Add(DefaultConfig().ReconnectGrace)
	if ok, _ := svc.Drained("web", "i-b"); !ok {
		t.Fatal("with no LB after the grace a backend must count as drained")
	}
	lb1, c1 := open(t, addr, "lb1", "web")
	defer c1()
	lb2, c2 := open(t, addr, "lb2", "web")
	defer c2()
	recvUntil(t, lb1, func(s *shoalv1.BackendSet) bool { return len(s.Backends) == 2 })
	recvUntil(t, lb2, func(s *shoalv1.BackendSet) bool { return len(s.Backends) == 2 })
	eventually(t, "two live LBs", func() bool { return len(svc.LiveLBs("web")) == 2 })

	// A report sent before the LB saw the drain proves nothing.
	report(t, lb1, 1000, 1, &shoalv1.BackendLoad{InstanceId: "i-b", State: shoalv1.BackendState_BACKEND_STATE_ACTIVE})
	w.setState("web", "i-b", shoalv1.BackendState_BACKEND_STATE_DRAINING)
	set1 := recvUntil(t, lb1, func(s *shoalv1.BackendSet) bool {
		return s.Backends[1].State == shoalv1.BackendState_BACKEND_STATE_DRAINING
	})
	set2 := recvUntil(t, lb2, func(s *shoalv1.BackendSet) bool {
		return s.Backends[1].State == shoalv1.BackendState_BACKEND_STATE_DRAINING
	})
	if ok, why := svc.Drained("web", "i-b"); ok {
		t.Fatal("drained before any LB reported")
	} else if why == "" {
		t.Fatal("a backend that is not drained must say why")
	}

	draining := shoalv1.BackendState_BACKEND_STATE_DRAINING
	report(t, lb1, 2000, set1.Version, &shoalv1.BackendLoad{InstanceId: "i-b", State: draining, InFlight: 3})
	report(t, lb2, 2000, set2.Version, &shoalv1.BackendLoad{InstanceId: "i-b", State: draining, InFlight: 0})
	eventually(t, "both reports", func() bool { return svc.InFlight("web")["i-b"] == 3 })
	if ok, _ := svc.Drained("web", "i-b"); ok {
		t.Fatal("drained while lb1 still has 3 in flight")
	}
	report(t, lb1, 3000, set1.Version, &shoalv1.BackendLoad{InstanceId: "i-b", State: draining, InFlight: 0})
	eventually(t, "drained on both LBs", func() bool { ok, _ := svc.Drained("web", "i-b"); return ok })
}

func TestSilentLBLosesItsLease(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	w := newWorld()
	w.setState("web", "i-b", shoalv1.BackendState_BACKEND_STATE_DRAINING)
	svc := mustNew(t, configWith(func(c *Config) { c.Now = clk.Now; c.PollEvery = 5 * time.Millisecond; c.LeaseTTL = 10 * time.Second }), w.get, lead{leader: true}, nil)
	addr := serve(t, svc)
	lb1, c1 := open(t, addr, "lb1", "web")
	defer c1()
	recvUntil(t, lb1, func(s *shoalv1.BackendSet) bool { return len(s.Backends) == 2 })
	eventually(t, "live LB", func() bool { return len(svc.LiveLBs("web")) == 1 })
	if ok, _ := svc.Drained("web", "i-b"); ok {
		t.Fatal("a live LB that never reported must hold the drain")
	}
	clk.Add(11 * time.Second)
	if got := svc.LiveLBs("web"); len(got) != 0 {
		t.Fatalf("LB silent for 11 s is still live: %v", got)
	}
	if ok, _ := svc.Drained("web", "i-b"); !ok {
		t.Fatal("with the only LB's lease expired the backend must count as drained")
	}
}

func TestRequestsPerTarget(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	svc := mustNew(t, configWith(func(c *Config) { c.Now = clk.Now; c.PollEvery = 5 * time.Millisecond }), newWorld().get, lead{leader: true}, nil)
	addr := serve(t, svc)
	lb, c := open(t, addr, "lb1", "web")
	defer c()
	recvUntil(t, lb, func(s *shoalv1.BackendSet) bool { return true })
	if _, ok := svc.RequestsPerTarget("web"); ok {
		t.Fatal("no report yet, so no rate")
	}
	report(t, lb, 10_000, 1, &shoalv1.BackendLoad{InstanceId: "i-a", Requests: 7})
	report(t, lb, 12_000, 1, &shoalv1.BackendLoad{InstanceId: "i-a", Requests: 150}, &shoalv1.BackendLoad{InstanceId: "i-b", Requests: 250})
	// 400 requests over 2 s across 2 active backends.
	eventually(t, "rate", func() bool { v, ok := svc.RequestsPerTarget("web"); return ok && v == 100 })
}

func TestFollowerPipesToLeader(t *testing.T) {
	w := newWorld()
	leader := mustNew(t, configWith(func(c *Config) { c.PollEvery = 5 * time.Millisecond }), w.get, lead{leader: true}, nil)
	leaderAddr := serve(t, leader)
	follower := mustNew(t, DefaultConfig(), func(string) ([]*shoalv1.Backend, error) {
		t.Error("a follower must not compute sets itself")
		return nil, nil
	}, lead{leader: false, addr: leaderAddr}, nil)
	defer follower.Close()
	fAddr := serve(t, follower)

	lb, c := open(t, fAddr, "lb1", "web")
	defer c()
	set := recvUntil(t, lb, func(s *shoalv1.BackendSet) bool { return len(s.Backends) == 2 })
	report(t, lb, 1000, set.Version, &shoalv1.BackendLoad{InstanceId: "i-a", InFlight: 5})
	eventually(t, "report at the leader", func() bool { return leader.InFlight("web")["i-a"] == 5 })
	if got := leader.LiveLBs("web"); len(got) != 1 || got[0] != "lb1" {
		t.Fatalf("leader's live LBs = %v", got)
	}
}

func TestFollowerWithoutLeader(t *testing.T) {
	svc := mustNew(t, DefaultConfig(), newWorld().get, lead{leader: false}, nil)
	addr := serve(t, svc)
	st, c := open(t, addr, "lb1", "web")
	defer c()
	if _, err := st.Recv(); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "no leader") {
		t.Fatalf("err = %v, want UNAVAILABLE no leader", err)
	}
}

func configWith(mod func(*Config)) Config {
	c := DefaultConfig()
	mod(&c)
	return c
}

func mustNew(t *testing.T, cfg Config, b BackendsFunc, l Leadership, reg prometheus.Registerer) *Service {
	t.Helper()
	s, err := New(cfg, b, l, reg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"no lease", func(c *Config) { c.LeaseTTL = 0 }, "lease ttl"},
		{"negative poll", func(c *Config) { c.PollEvery = -time.Second }, "poll every"},
		{"no resend", func(c *Config) { c.ResendEvery = 0 }, "resend every"},
		{"no reconnect grace", func(c *Config) { c.ReconnectGrace = 0 }, "reconnect grace"},
		{"no clock", func(c *Config) { c.Now = nil }, "now: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := configWith(tc.mod)
			before := c.LeaseTTL
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			if c.LeaseTTL != before {
				t.Fatal("Validate changed the config")
			}
			if _, err := New(c, newWorld().get, lead{}, nil); (err == nil) != (tc.want == "") {
				t.Fatalf("New() = %v, want it to agree with Validate", err)
			}
		})
	}
}

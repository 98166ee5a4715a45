package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// fakeNode is a coordinator that welcomes every hello and records what
// each stream sends; it drops the first stream of each id in dropFirst
// after one batch, to make the generator reconnect.
type fakeNode struct {
	shoalv1.UnimplementedAgentServiceServer
	name      string
	dropFirst map[string]bool
	// mtls: each stream must come with an agent certificate naming the
	// hello's instance id.
	mtls bool

	mu      sync.Mutex
	hellos  map[string]int
	batches map[string]int
	bad     []string
}

func (f *fakeNode) Connect(st shoalv1.AgentService_ConnectServer) error {
	m, err := st.Recv()
	if err != nil {
		return err
	}
	h := m.GetHello()
	if h == nil {
		return status.Error(codes.InvalidArgument, "first message must be a hello")
	}
	id := h.GetInstanceId()
	if f.mtls {
		pid, ok, err := tlsconf.PeerIdentity(st.Context())
		if err != nil || !ok || pid.Role != tlsconf.RoleAgent || pid.Name != id {
			f.mu.Lock()
			f.bad = append(f.bad, fmt.Sprintf("hello %s over a connection of %v (cert %v, err %v)", id, pid, ok, err))
			f.mu.Unlock()
			return status.Error(codes.PermissionDenied, "wrong certificate")
		}
	}
	f.mu.Lock()
	f.hellos[id]++
	drop := f.dropFirst[id] && f.hellos[id] == 1
	if h.GetFleet() != "web" || !strings.HasPrefix(id, "i-10ad") {
		f.bad = append(f.bad, "hello "+id+" fleet "+h.GetFleet())
	}
	if h.GetInterval().AsDuration() <= 0 || h.GetStartTime() == nil {
		f.bad = append(f.bad, fmt.Sprintf("hello %s interval %v start_time %v", id, h.GetInterval(), h.GetStartTime()))
	}
	f.mu.Unlock()
	if err := st.Send(&shoalv1.ConnectResponse{Msg: &shoalv1.ConnectResponse_Welcome{Welcome: &shoalv1.Welcome{NodeId: f.name}}}); err != nil {
		return err
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return nil
		}
		b := m.GetBatch()
		f.mu.Lock()
		f.batches[id]++
		if len(b.GetSamples()) != 1 || len(b.GetSamples()[0].GetValues()) != 10 || b.GetSamples()[0].GetValues()["cpu"] == 0 {
			f.bad = append(f.bad, "batch from "+id)
		}
		f.mu.Unlock()
		if drop {
			return status.Error(codes.Unavailable, "dropped on purpose")
		}
	}
}

// startFakes starts one fake node per address and returns a dialer that
// reaches each by its address.
func startFakes(t *testing.T, addrs []string, dropFirst map[string]bool) (map[string]*fakeNode, grpc.DialOption) {
	t.Helper()
	nodes, lis := map[string]*fakeNode{}, map[string]*bufconn.Listener{}
	for _, addr := range addrs {
		f := &fakeNode{name: addr, dropFirst: dropFirst, hellos: map[string]int{}, batches: map[string]int{}}
		l := bufconn.Listen(1 << 20)
		srv := rpc.NewServer()
		shoalv1.RegisterAgentServiceServer(srv, f)
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(srv.Stop)
		nodes[addr], lis[addr] = f, l
	}
	return nodes, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		l, ok := lis[addr]
		if !ok {
			return nil, errors.New("no fake node at " + addr)
		}
		return l.DialContext(ctx)
	})
}

func TestRunSpreadsStreamsAndReconnects(t *testing.T) {
	addrs := []string{"a:1", "b:1"}
	nodes, dialer := startFakes(t, addrs, map[string]bool{"i-10ad00000": true})
	const agents = 8
	cfg := DefaultConfig()
	cfg.Coordinators, cfg.Fleet, cfg.Agents, cfg.Interval = addrs, "web", agents, 100*time.Millisecond
	// The run ends as soon as the fakes have seen what the test checks, and
	// at the latest after Duration, so a slow machine only makes it longer.
	cfg.Duration, cfg.Ramp, cfg.Backoff = 30*time.Second, 50*time.Millisecond, 50*time.Millisecond
	cfg.StreamsPerConn, cfg.DialOptions = 2, []grpc.DialOption{dialer}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		seen := func() bool {
			batches := 0
			for _, f := range nodes {
				f.mu.Lock()
				n, b := len(f.hellos), len(f.batches)
				f.mu.Unlock()
				if n < agents/2 {
					return false
				}
				batches += b
			}
			a := nodes["a:1"]
			a.mu.Lock()
			defer a.mu.Unlock()
			return batches == agents && a.hellos["i-lg00000"] >= 2 && a.batches["i-lg00000"] >= 2
		}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for range t.C {
			if ctx.Err() != nil || seen() {
				cancel()
				return
			}
		}
	}()
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	received := 0
	for _, addr := range addrs {
		f := nodes[addr]
		f.mu.Lock()
		for _, bad := range f.bad {
			t.Errorf("%s: malformed %s", addr, bad)
		}
		if len(f.hellos) != agents/2 {
			t.Errorf("%s got %d instances, want %d (streams spread evenly)", addr, len(f.hellos), agents/2)
		}
		for _, n := range f.batches {
			received += n
		}
		f.mu.Unlock()
	}
	a := nodes["a:1"]
	a.mu.Lock()
	if a.hellos["i-10ad00000"] < 2 || a.batches["i-10ad00000"] < 2 {
		t.Errorf("dropped stream: %d hellos, %d batches; want a reconnect and batches after it", a.hellos["i-10ad00000"], a.batches["i-10ad00000"])
	}
	a.mu.Unlock()
	// One batch per stream may still be in flight when the run ends.
	if sum.Connects < agents+1 || uint64(received)+agents < sum.Sent || sum.Sent < agents {
		t.Errorf("summary %s, fakes received %d", sum, received)
	}
	if sum.UpEnd > agents || sum.Agents != agents {
		t.Errorf("summary %s", sum)
	}
}

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Coordinators, ok.Fleet, ok.Agents, ok.Duration = []string{"127.0.0.1:7000"}, "web", 10, time.Second
	cases := []struct {
		name string
		edit func(*Config)
		want string // "" is valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no coordinator", func(c *Config) { c.Coordinators = nil }, "coordinator"},
		{"bad address", func(c *Config) { c.Coordinators = []string{"nohost"} }, `coordinator "nohost"`},
		{"no fleet", func(c *Config) { c.Fleet = "" }, "fleet"},
		{"no agents", func(c *Config) { c.Agents = 0 }, "agents (0)"},
		{"no duration", func(c *Config) { c.Duration = 0 }, "duration"},
		{"warmup too long", func(c *Config) { c.Warmup = 2 * time.Second }, "warmup (2s)"},
		{"measure past the end", func(c *Config) { c.Measure = 2 * time.Second }, "measure (2s)"},
		{"zero config", func(c *Config) {
			*c = Config{Coordinators: c.Coordinators, Fleet: "web", Agents: 1, Duration: time.Second}
		}, "metrics (0)"},
		{"no clock", func(c *Config) { c.Now = nil }, "now"},
		{"prefix not hex", func(c *Config) { c.IDPrefix = "lg" }, `id prefix ("lg")`},
		{"ca-cert without key", func(c *Config) { c.CACert = "ca.pem" }, "ca-cert and ca-key"},
		{"ca-key without cert", func(c *Config) { c.CAKey = "ca-key.pem" }, "ca-cert and ca-key"},
		{"tls", func(c *Config) { c.CACert, c.CAKey = "ca.pem", "ca-key.pem" }, ""},
		{"tls bad cluster", func(c *Config) { c.CACert, c.CAKey, c.Cluster = "ca.pem", "ca-key.pem", "" }, "cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			before := fmt.Sprintf("%+v", c)
			err := c.Validate()
			if after := fmt.Sprintf("%+v", c); after != before {
				t.Fatalf("Validate changed the config:\n%s\n%s", before, after)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want ErrConfig naming %q", err, tc.want)
			}
		})
	}
}

func TestMetricNames(t *testing.T) {
	got := strings.Join(metricNames(10), ",")
	if got != "cpu,custom_1,custom_2,custom_3,custom_4,disk,load1,mem,net_rx,net_tx" {
		t.Errorf("got %s", got)
	}
}

// TestMeasureWindow: the summary covers warmup..warmup+measure only, not
// the rest of the run.
func TestMeasureWindow(t *testing.T) {
	_, dialer := startFakes(t, []string{"a:1"}, nil)
	cfg := DefaultConfig()
	cfg.Coordinators, cfg.Fleet, cfg.Agents, cfg.Interval, cfg.Ramp = []string{"a:1"}, "web", 4, 50*time.Millisecond, time.Millisecond
	cfg.Duration, cfg.Warmup, cfg.Measure = 2*time.Second, 300*time.Millisecond, 500*time.Millisecond
	cfg.ProgressEvery, cfg.DialOptions = 50*time.Millisecond, []grpc.DialOption{dialer}
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Window < 500*time.Millisecond || sum.Window >= 1700*time.Millisecond || sum.Sent == 0 || sum.UpEnd != 4 {
		t.Errorf("summary %s: want a window of about 500ms with all 4 streams up", sum)
	}
}

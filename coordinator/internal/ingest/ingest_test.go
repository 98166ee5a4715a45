package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func TestStreamRefusals(t *testing.T) {
	nw := &network{}
	n := startNode(t, nw, "n1", true, "n1", newRegistry(), true, nil)
	cases := []struct {
		name   string
		hello  *shoalv1.AgentHello
		code   codes.Code
		msgHas string
		reason string
	}{
		{"no instance id", &shoalv1.AgentHello{Fleet: "web"}, codes.InvalidArgument, "instance_id is required", reasonNoIdentity},
		{"unknown fleet", &shoalv1.AgentHello{InstanceId: "i-1", Fleet: "nope"}, codes.NotFound, `unknown fleet "nope"`, reasonUnknownFleet},
		{"unknown group", &shoalv1.AgentHello{InstanceId: "i-1", Asg: "nope-asg"}, codes.NotFound, `group "nope-asg"`, reasonUnknownFleet},
		{"no fleet or group", &shoalv1.AgentHello{InstanceId: "i-1"}, codes.InvalidArgument, "neither fleet nor asg", reasonUnknownFleet},
		{"instance id not an EC2 id", &shoalv1.AgentHello{InstanceId: "web-1", Fleet: "web"}, codes.InvalidArgument,
			`hello: instance_id ("web-1"): must be "i-" followed by lower-case hex digits`, reasonBadIdentity},
		{"instance id of a megabyte", &shoalv1.AgentHello{InstanceId: "i-" + strings.Repeat("a", 1<<20), Fleet: "web"}, codes.InvalidArgument,
			"hello: instance_id: 1048578 characters, longer than 19", reasonBadIdentity},
		{"private ip not an address", &shoalv1.AgentHello{InstanceId: "i-1", Fleet: "web", PrivateIp: "not an ip; <script>"}, codes.InvalidArgument,
			`hello: private_ip ("not an ip; <script>"): not an IP address`, reasonBadIdentity},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(n.svc.m.streamRejected.WithLabelValues(tc.reason))
			_, err := connect(t, nw, "n1", tc.hello)
			if s, _ := status.FromError(err); s.Code() != tc.code || !strings.Contains(s.Message(), tc.msgHas) {
				t.Fatalf("err = %v, want %s containing %q", err, tc.code, tc.msgHas)
			}
			if got := testutil.ToFloat64(n.svc.m.streamRejected.WithLabelValues(tc.reason)) - before; got != 1 {
				t.Errorf("rejections counted under %s: %v, want 1", tc.reason, got)
			}
		})
	}
	t.Run("group maps to its fleet", func(t *testing.T) {
		a, err := connect(t, nw, "n1", &shoalv1.AgentHello{InstanceId: "i-a5a", Asg: "api-asg"})
		if err != nil || a.welcome.GetFleet() != "api" || a.welcome.GetNodeId() != "n1" {
			t.Fatalf("welcome = %v, err %v", a.welcome, err)
		}
	})
}

func TestBadSamplesRejectedAndCounted(t *testing.T) {
	nw := &network{}
	n := startNode(t, nw, "n1", true, "n1", newRegistry(), true, func(c *Config) {
		c.MaxBatchSamples, c.MaxCustomMetrics = 5, 2
	})
	a, err := connect(t, nw, "n1", hello("i-1", 1))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cases := []struct {
		name     string
		samples  []*shoalv1.Sample
		rejected uint32
		reason   string
		msgHas   string
	}{
		{"good", []*shoalv1.Sample{smp(now, "cpu", 10.0)}, 0, "", ""},
		{"nan", []*shoalv1.Sample{smp(now, "cpu", math.NaN()), smp(now, "cpu", 1.0)}, 1, reasonNotFinite, "cpu is NaN"},
		{"inf", []*shoalv1.Sample{smp(now, "mem", math.Inf(1))}, 1, reasonNotFinite, "mem is +Inf"},
		{"negative", []*shoalv1.Sample{smp(now, "net_rx", -3.0)}, 1, reasonNegative, "net_rx is negative"},
		{"future", []*shoalv1.Sample{smp(now.Add(time.Hour), "cpu", 1.0)}, 1, reasonFuture, "ahead of the coordinator's clock"},
		{"too old", []*shoalv1.Sample{smp(now.Add(-time.Hour), "cpu", 1.0)}, 1, reasonTooOld, "older than"},
		{"empty", []*shoalv1.Sample{{UnixMs: now.UnixMilli()}}, 1, reasonEmpty, "no values"},
		{"bad name", []*shoalv1.Sample{smp(now, "bad-name", 1.0)}, 1, reasonBadName, `"bad-name"`},
		{"too many custom", []*shoalv1.Sample{smp(now, "a", 1.0, "b", 1.0, "c", 1.0)}, 1, reasonTooManyCustom, "exceed the limit of 2"},
		{"oversized batch", []*shoalv1.Sample{smp(now, "cpu", 1.0), smp(now, "cpu", 1.0), smp(now, "cpu", 1.0),
			smp(now, "cpu", 1.0), smp(now, "cpu", 1.0), smp(now, "cpu", 1.0)}, 6, reasonOversized, "batch of 6 samples exceeds the limit of 5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before float64
			if tc.reason != "" {
				before = testutil.ToFloat64(n.svc.m.rejected.WithLabelValues(tc.reason))
			}
			a.send(t, true, tc.samples...)
			seq := a.seq
			// A clean batch gets no ack; a bad probe after it proves it.
			a.send(t, true, smp(now, "cpu", -1.0))
			var ack *shoalv1.BatchAck
			select {
			case ack = <-a.acks:
			case <-time.After(wait):
				t.Fatal("no ack")
			}
			if tc.rejected == 0 {
				if ack.GetSeq() != a.seq {
					t.Fatalf("a clean batch was acked: %v", ack)
				}
			} else {
				if ack.GetSeq() != seq || ack.GetRejected() != tc.rejected || !strings.Contains(ack.GetRejectReason(), tc.msgHas) {
					t.Fatalf("ack = %v, want seq %d, %d rejected with %q", ack, seq, tc.rejected, tc.msgHas)
				}
				if probe := <-a.acks; probe.GetSeq() != a.seq {
					t.Fatalf("probe ack = %v", probe)
				}
			}
			if tc.reason != "" {
				want := float64(tc.rejected)
				if tc.reason == reasonNegative {
					want++ // the probe
				}
				if got := testutil.ToFloat64(n.svc.m.rejected.WithLabelValues(tc.reason)) - before; got != want {
					t.Errorf("counted %v under %s, want %v", got, tc.reason, want)
				}
			}
		})
	}
}

func TestDuplicateInstanceOnOneNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &network{}
		startNode(t, nw, "n1", true, "n1", newRegistry(), true, nil)
		first, err := connect(t, nw, "n1", hello("i-1", 100))
		if err != nil {
			t.Fatal(err)
		}
		_, err = connect(t, nw, "n1", hello("i-1", 200))
		s, _ := status.FromError(err)
		if s.Code() != codes.AlreadyExists || !strings.Contains(s.Message(), "i-1 is already streaming") {
			t.Fatalf("second agent: err = %v, want AlreadyExists", err)
		}
		// The refusal must not tell a stranger what the real agent sent:
		// replaying its start time and address would take over its stream.
		if strings.Contains(s.Message(), "100") || strings.Contains(s.Message(), "127.0.0.9") {
			t.Fatalf("refusal %q reveals the streaming agent's start time or address", s.Message())
		}
		// The same agent reconnecting (same start time) replaces its old stream.
		if _, err := connect(t, nw, "n1", hello("i-1", 100)); err != nil {
			t.Fatalf("same agent reconnecting: %v", err)
		}
		select {
		case err := <-first.done:
			if status.Code(err) != codes.Aborted {
				t.Errorf("old stream ended with %v, want Aborted", err)
			}
		case <-time.After(wait):
			t.Fatal("old stream not closed")
		}
	})
}

// cluster2 starts a leader "L" and a follower "F" sharing one registry, and
// waits for F's forward stream. Call it inside a synctest bubble.
func cluster2(t testing.TB, edit func(*Config)) (*network, *testNode, *testNode, *fakeRegistry) {
	nw := &network{}
	reg := newRegistry()
	l := startNode(t, nw, "L", true, "L", reg, true, edit)
	f := startNode(t, nw, "F", false, "L", reg, true, edit)
	// The follower opens its stream at once; nothing in it waits on a timer.
	synctest.Wait()
	if !f.svc.forwarding() {
		t.Fatal("the follower has no forward stream to the leader")
	}
	return nw, l, f, reg
}

func TestDuplicateInstanceAcrossNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, _, _ := cluster2(t, nil)
		a, err := connect(t, nw, "L", hello("i-1", 100))
		if err != nil {
			t.Fatal(err)
		}
		a.send(t, true, smp(time.Now(), "cpu", 1.0))
		synctest.Wait()
		if len(l.svc.Aggregates("web", time.Minute)) == 0 {
			t.Fatal("the leader has not applied the batch of the agent streaming to it")
		}
		b, err := connect(t, nw, "F", hello("i-1", 200))
		if err != nil {
			t.Fatalf("the follower cannot know yet, so it accepts: %v", err)
		}
		b.send(t, true, smp(time.Now(), "cpu", 2.0))
		select {
		case err := <-b.done:
			if s, _ := status.FromError(err); s.Code() != codes.AlreadyExists || !strings.Contains(s.Message(), "streams to node L") {
				t.Fatalf("second agent ended with %v, want AlreadyExists naming node L", err)
			}
		case <-time.After(wait):
			t.Fatal("the leader did not refuse the second agent")
		}
	})
}

func TestFollowerForwardsAndDrainReachesAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, f, reg := cluster2(t, nil)
		a, err := connect(t, nw, "F", hello("i-7", 1))
		if err != nil {
			t.Fatal(err)
		}
		if a.welcome.GetNodeId() != "F" || a.welcome.GetLeaderRpcAddr() != "L" {
			t.Errorf("welcome = %v", a.welcome)
		}
		a.every(t, time.Second, "cpu", 42.0, "queue", 3.0)
		// The follower forwards within ForwardEvery and the leader registers
		// at its next reconcile.
		advance(f.cfg.ForwardEvery + l.cfg.ReconcileEvery)
		if st := reg.state("i-7"); st != shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE {
			t.Fatalf("state through the follower = %s, want in service", st)
		}
		ins, err := l.svc.Instances("web")
		if err != nil || len(ins) != 1 {
			t.Fatalf("Instances = %v, %v", ins, err)
		}
		if in := ins[0]; in.GetMetrics()["cpu"] != 42 || in.GetMetrics()["queue"] != 3 || in.GetLastReportAge() == nil ||
			in.GetLastReportAge().AsDuration() > time.Second+f.cfg.ForwardEvery || !in.GetReady() {
			t.Errorf("instance = %v", in)
		}
		if agg := l.svc.Aggregates("web", 10*time.Second)["cpu"]; agg.Count != 1 || agg.Avg != 42 {
			t.Errorf("cpu aggregate = %+v", agg)
		}

		go func() {
			select {
			case cmd := <-a.cmds:
				_ = a.sendRaw(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_CommandResult{CommandResult: &shoalv1.CommandResult{
					Id: cmd.GetId(), Kind: cmd.GetKind(), Ok: cmd.GetKind() == shoalv1.CommandKind_COMMAND_KIND_DRAIN, Output: "bye"}}})
			case <-time.After(wait):
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		res, err := l.svc.Drain(ctx, "i-7")
		if err != nil || !res.GetOk() || res.GetOutput() != "bye" {
			t.Fatalf("Drain = %v, %v", res, err)
		}
		if st := reg.state("i-7"); st != shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
			t.Errorf("state after drain = %s", st)
		}
		if _, err := l.svc.Drain(ctx, "i-0e0e"); !errors.Is(err, ErrNotConnected) {
			t.Errorf("drain of an unknown instance: %v", err)
		}
	})
}

// TestForwardStreamNewInstanceCap: one Forward stream may introduce only
// MaxNewInstancesPerStream new ids to the leader; ids the leader already
// knows, or the stream already introduced, do not count again.
func TestForwardStreamNewInstanceCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, f, _ := cluster2(t, func(c *Config) { c.MaxNewInstancesPerStream = 2 })
		var agents []*testAgent
		for _, id := range []string{"i-a1", "i-a2"} {
			a, err := connect(t, nw, "F", hello(id, 1))
			if err != nil {
				t.Fatal(err)
			}
			a.send(t, true, smp(time.Now(), "cpu", 1.0))
			agents = append(agents, a)
		}
		advance(f.cfg.ForwardEvery)
		before := testutil.ToFloat64(l.svc.m.streamRejected.WithLabelValues(reasonTooManyNew))
		third, err := connect(t, nw, "F", hello("i-a3", 1))
		if err != nil {
			t.Fatalf("the follower cannot know the leader's count, so it accepts: %v", err)
		}
		third.send(t, true, smp(time.Now(), "cpu", 1.0))
		select {
		case err := <-third.done:
			if s, _ := status.FromError(err); s.Code() != codes.ResourceExhausted || !strings.Contains(s.Message(), "already introduced 2 new instance ids") {
				t.Fatalf("third agent ended with %v, want the cap named", err)
			}
		case <-time.After(wait):
			t.Fatal("the leader did not refuse the third new id")
		}
		if got := testutil.ToFloat64(l.svc.m.streamRejected.WithLabelValues(reasonTooManyNew)) - before; got < 1 {
			t.Errorf("refusals counted under %s: %v, want >= 1", reasonTooManyNew, got)
		}
		// The ids already introduced keep flowing.
		agents[0].send(t, true, smp(time.Now(), "cpu", 5.0))
		advance(f.cfg.ForwardEvery)
		ins, err := l.svc.Instances("web")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, in := range ins {
			ids = append(ids, in.GetId())
		}
		if strings.Join(ids, ",") != "i-a1,i-a2" {
			t.Fatalf("leader knows %v, want i-a1 and i-a2 only", ids)
		}
		// Churn: once an instance the stream introduced is gone from the
		// leader's store, a new one may take its place on the same stream.
		if err := agents[0].sendRaw(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Goodbye{Goodbye: &shoalv1.AgentGoodbye{Reason: "shutdown"}}}); err != nil {
			t.Fatal(err)
		}
		advance(f.cfg.ForwardEvery + 3*l.cfg.ReconcileEvery)
		l.svc.mu.Lock()
		_, stillThere := l.svc.store.byID["i-a1"]
		l.svc.mu.Unlock()
		if stillThere {
			t.Fatal("the leader still holds i-a1 after its goodbye")
		}
		fourth, err := connect(t, nw, "F", hello("i-a4", 1))
		if err != nil {
			t.Fatal(err)
		}
		fourth.send(t, true, smp(time.Now(), "cpu", 1.0))
		advance(f.cfg.ForwardEvery)
		select {
		case err := <-fourth.done:
			t.Fatalf("a new id after churn was refused: %v", err)
		default:
		}
		if _, err := l.svc.Instances("web"); err != nil {
			t.Fatal(err)
		}
		l.svc.mu.Lock()
		_, known := l.svc.store.byID["i-a4"]
		l.svc.mu.Unlock()
		if !known {
			t.Fatal("the leader does not hold i-a4")
		}
	})
}

func TestFollowerOnlyCallsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, f, _ := cluster2(t, nil)
		if _, err := f.svc.Drain(context.Background(), "i-1"); !errors.Is(err, ErrNotLeader) {
			t.Errorf("Drain on a follower: %v", err)
		}
		if _, err := f.svc.Instances(""); !errors.Is(err, ErrNotLeader) {
			t.Errorf("Instances on a follower: %v", err)
		}
	})
}

func TestFollowerWithoutLeaderLinkRedirects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &network{}
		startNode(t, nw, "F", false, "L", newRegistry(), false, nil)
		_, err := connect(t, nw, "F", hello("i-1", 1))
		if s, _ := status.FromError(err); s.Code() != codes.Unavailable || !strings.Contains(s.Message(), "leader at L") {
			t.Fatalf("err = %v, want Unavailable naming the leader", err)
		}
	})
}

func TestAggregates(t *testing.T) {
	now := time.Unix(1700000000, 0)
	cl := &fakeCluster{id: "n1", leader: true}
	cfg := testConfig()
	cfg.Now = func() time.Time { return now }
	s, err := New(cfg, cl, newRegistry())
	if err != nil {
		t.Fatal(err)
	}
	// Five instances; i-4 reports twice as often, which must not weigh more.
	for i, cpu := range []float64{10, 20, 30, 40} {
		h := hello(fmt.Sprintf("i-%d", i), 1)
		for k := 5; k >= 1; k-- {
			if err := s.route(&clusterv1.InstanceReport{Hello: h, Samples: []*shoalv1.Sample{smp(now.Add(-time.Duration(k)*time.Second), "cpu", cpu)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	h := hello("i-4", 1)
	for k := 14; k >= 1; k-- {
		v := 100.0
		if k > 10 {
			v = 0 // older than the 5 s window below
		}
		s.route(&clusterv1.InstanceReport{Hello: h, Samples: []*shoalv1.Sample{smp(now.Add(-time.Duration(k)*500*time.Millisecond), "cpu", v, "mem", 5.0)}})
	}
	s.route(&clusterv1.InstanceReport{Hello: &shoalv1.AgentHello{InstanceId: "other", Fleet: "api"}, Samples: []*shoalv1.Sample{smp(now, "cpu", 99.0)}})

	cases := []struct {
		name   string
		window time.Duration
		metric string
		want   Agg
	}{
		{"cpu over 5s", 5 * time.Second, "cpu", Agg{Avg: 40, P50: 30, P90: 100, Max: 100, Count: 5, Samples: 30}},
		{"mem only from one", 5 * time.Second, "mem", Agg{Avg: 5, P50: 5, P90: 5, Max: 5, Count: 1, Samples: 10}},
		{"narrow window", 1500 * time.Millisecond, "cpu", Agg{Avg: 40, P50: 30, P90: 100, Max: 100, Count: 5, Samples: 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Aggregates("web", tc.window)[tc.metric]
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if got := s.Aggregates("web", 100*time.Millisecond); len(got) != 0 {
		t.Errorf("empty window gave %v", got)
	}
}

func TestRing(t *testing.T) {
	cases := []struct {
		name     string
		size     int
		add      []int64
		since    int64
		wantMean float64
		wantN    int
	}{
		{"partial", 4, []int64{1, 2, 3}, 2, 2.5, 2},
		{"wrapped", 3, []int64{1, 2, 3, 4, 5}, 0, 4, 3},
		{"replay ignored", 4, []int64{1, 2, 2, 1, 3}, 0, 2, 3},
		{"nothing in window", 3, []int64{1, 2}, 5, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(tc.size)
			for _, ts := range tc.add {
				r.add(ts, map[string]float64{"cpu": float64(ts)})
			}
			means, n := r.means(tc.since)
			if n != tc.wantN || means["cpu"] != tc.wantMean {
				t.Errorf("means = %v over %d, want %v over %d", means, n, tc.wantMean, tc.wantN)
			}
		})
	}
	t.Run("columns bounded", func(t *testing.T) {
		r := newRing(2)
		for i := range maxColumns + 10 {
			r.add(int64(i+1), map[string]float64{fmt.Sprintf("m%d", i): 1})
		}
		if len(r.cols) != maxColumns {
			t.Errorf("%d columns, want %d", len(r.cols), maxColumns)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(*Config)
		errHas string
	}{
		{"defaults", func(*Config) {}, ""},
		{"negative ring", func(c *Config) { c.RingSize = -1 }, "ring size (-1) must be >= 1"},
		{"zero batch", func(c *Config) { c.MaxBatchSamples = 0 }, "max batch samples (0) must be >= 1"},
		{"negative stale", func(c *Config) { c.StaleAfter = -time.Second }, "stale after (-1s) must be > 0"},
		{"zero forward period", func(c *Config) { c.ForwardEvery = 0 }, "forward every (0s) must be > 0"},
		{"no clock", func(c *Config) { c.Now = nil }, "now: required"},
		{"no logger", func(c *Config) { c.Logger = nil }, "logger: required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if (tc.errHas == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.errHas) || !errors.Is(err, ErrConfig))) {
				t.Errorf("Validate = %v, want %q", err, tc.errHas)
			}
			if _, nerr := New(cfg, &fakeCluster{}, newRegistry()); (nerr == nil) != (err == nil) {
				t.Errorf("New = %v, Validate = %v: New must refuse exactly what Validate refuses", nerr, err)
			}
		})
	}
	t.Run("zero value", func(t *testing.T) {
		if err := (Config{}).Validate(); err == nil || !errors.Is(err, ErrConfig) {
			t.Errorf("Validate of the zero Config = %v, want a field named", err)
		}
	})
	t.Run("does not fill in", func(t *testing.T) {
		c := Config{}
		_ = c.Validate()
		if c.RingSize != 0 || c.Now != nil {
			t.Errorf("Validate changed its receiver: %+v", c)
		}
	})
}

func TestCountersRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig()
	cfg.Registerer = reg
	if _, err := New(cfg, &fakeCluster{}, newRegistry()); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n == 0 {
		t.Fatalf("gathered %d metrics, %v", n, err)
	}
}

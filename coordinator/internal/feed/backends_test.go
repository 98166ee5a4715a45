package feed

import (
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"maps"

	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func TestBackendSet(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	at := func(ago time.Duration) int64 { return now.Add(-ago).UnixMilli() }
	f := &shoalv1.Fleet{Name: "web", AppPort: 8080, Policy: &shoalv1.ScalingPolicy{Warmup: durationpb.New(30_000 * time.Millisecond)}}
	ins := []*shoalv1.Instance{
		{Id: "i-active", PrivateIp: "127.0.1.1", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, StateChangeTime: tsms(at(time.Minute)), Metrics: map[string]float64{"cpu": 75}},
		{Id: "i-warming", PrivateIp: "127.0.1.2", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, StateChangeTime: tsms(at(10 * time.Second))},
		{Id: "i-draining", PrivateIp: "127.0.1.3", State: shoalv1.InstanceState_INSTANCE_STATE_DRAINING, StateChangeTime: tsms(at(5 * time.Second)), Metrics: map[string]float64{"cpu": 1}},
		{Id: "i-pending", PrivateIp: "127.0.1.4", State: shoalv1.InstanceState_INSTANCE_STATE_PENDING},
		{Id: "i-unhealthy", PrivateIp: "127.0.1.5", State: shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY},
		{Id: "i-noaddr", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE},
		// In a warm pool: never fed to an LB, even in service.
		{Id: "i-warm", PrivateIp: "127.0.1.6", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, StateChangeTime: tsms(at(time.Minute)), Warm: true},
		// Interrupted: its own deadline, earlier than the drain timeout, wins.
		{Id: "i-spot", PrivateIp: "127.0.1.7", State: shoalv1.InstanceState_INSTANCE_STATE_DRAINING, StateChangeTime: tsms(at(time.Second)), DrainDeadline: tsms(at(-10 * time.Second))},
	}
	got := map[string]*shoalv1.Backend{}
	for _, b := range BackendSet(f, ins, now, 30*time.Second) {
		got[b.InstanceId] = b
	}
	for _, tc := range []struct {
		id       string
		state    shoalv1.BackendState
		addr     string
		load     float64
		deadline int64
	}{
		{"i-active", shoalv1.BackendState_BACKEND_STATE_ACTIVE, "127.0.1.1:8080", 1.5, 0},
		{"i-warming", shoalv1.BackendState_BACKEND_STATE_WARMING, "127.0.1.2:8080", 1, 0},
		{"i-draining", shoalv1.BackendState_BACKEND_STATE_DRAINING, "127.0.1.3:8080", 0.1, at(5*time.Second) + 30_000},
		{"i-spot", shoalv1.BackendState_BACKEND_STATE_DRAINING, "127.0.1.7:8080", 1, at(-10 * time.Second)},
	} {
		t.Run(tc.id, func(t *testing.T) {
			b, ok := got[tc.id]
			if !ok {
				t.Fatalf("%s missing from the set", tc.id)
			}
			if b.State != tc.state || b.Address != tc.addr || b.Load != tc.load || msOf(b.DrainDeadline) != tc.deadline {
				t.Fatalf("got %v, want state %v addr %s load %v deadline %d", b, tc.state, tc.addr, tc.load, tc.deadline)
			}
		})
	}
	if len(got) != 4 {
		t.Fatalf("set = %v: pending, unhealthy, warm and address-less instances must get no traffic", got)
	}
	if bs := BackendSet(&shoalv1.Fleet{Name: "web"}, ins, now, time.Second); len(bs) != 0 {
		t.Fatalf("a fleet without --app-port has no backends, got %v", bs)
	}
}

// TestBackendSetFailsOpen: with no instance able to take requests, the
// unhealthy ones are sent as active (the LB's health checks decide), never
// pending or address-less ones; one active instance closes it again.
func TestBackendSetFailsOpen(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	f := &shoalv1.Fleet{Name: "web", AppPort: 8080}
	ins := []*shoalv1.Instance{
		{Id: "i-a", PrivateIp: "127.0.1.1", State: shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY},
		{Id: "i-b", PrivateIp: "127.0.1.2", State: shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY},
		{Id: "i-d", PrivateIp: "127.0.1.3", State: shoalv1.InstanceState_INSTANCE_STATE_DRAINING, StateChangeTime: timestamppb.New(now)},
		{Id: "i-p", PrivateIp: "127.0.1.4", State: shoalv1.InstanceState_INSTANCE_STATE_PENDING},
		{Id: "i-x", State: shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY},
		// A stopped warm-pool instance is unhealthy too, and stays dark.
		{Id: "i-w", PrivateIp: "127.0.1.6", State: shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY, Warm: true},
	}
	got := map[string]shoalv1.BackendState{}
	for _, b := range BackendSet(f, ins, now, time.Minute) {
		got[b.InstanceId] = b.State
	}
	want := map[string]shoalv1.BackendState{"i-a": shoalv1.BackendState_BACKEND_STATE_ACTIVE, "i-b": shoalv1.BackendState_BACKEND_STATE_ACTIVE, "i-d": shoalv1.BackendState_BACKEND_STATE_DRAINING}
	if !maps.Equal(got, want) {
		t.Fatalf("no instance in service: set = %v, want %v", got, want)
	}
	ins = append(ins, &shoalv1.Instance{Id: "i-ok", PrivateIp: "127.0.1.5", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE})
	got = map[string]shoalv1.BackendState{}
	for _, b := range BackendSet(f, ins, now, time.Minute) {
		got[b.InstanceId] = b.State
	}
	if _, ok := got["i-a"]; ok || got["i-ok"] != shoalv1.BackendState_BACKEND_STATE_ACTIVE {
		t.Fatalf("one instance in service: set = %v, want it and no unhealthy one", got)
	}
}

// EC2 reuses private IPs: one address must yield one backend, the
// newest-registered instance's.
func TestBackendSetOneInstancePerAddress(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	old := now.Add(-time.Hour).UnixMilli()
	f := &shoalv1.Fleet{Name: "web", AppPort: 8080}
	inst := func(id string, reg int64, st shoalv1.InstanceState) *shoalv1.Instance {
		return &shoalv1.Instance{Id: id, PrivateIp: "10.0.0.1", RegisterTime: tsms(reg), State: st, StateChangeTime: tsms(old)}
	}
	in, dr, pend, term := shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, shoalv1.InstanceState_INSTANCE_STATE_DRAINING,
		shoalv1.InstanceState_INSTANCE_STATE_PENDING, shoalv1.InstanceState_INSTANCE_STATE_TERMINATED
	for _, tc := range []struct {
		name string
		ins  []*shoalv1.Instance
		want string // instance id in the set, "" for none
	}{
		{"newer in service replaces stale draining", []*shoalv1.Instance{inst("i-old", 1, dr), inst("i-new", 2, in)}, "i-new"},
		{"order does not matter", []*shoalv1.Instance{inst("i-new", 2, in), inst("i-old", 1, dr)}, "i-new"},
		{"newer draining beats stale in service", []*shoalv1.Instance{inst("i-old", 1, in), inst("i-new", 2, dr)}, "i-new"},
		{"newer pending keeps the address dark", []*shoalv1.Instance{inst("i-old", 1, in), inst("i-new", 2, pend)}, ""},
		{"newer terminated keeps it dark", []*shoalv1.Instance{inst("i-old", 1, in), inst("i-new", 2, term)}, ""},
		{"tie: in service over draining", []*shoalv1.Instance{inst("i-b", 5, dr), inst("i-a", 5, in)}, "i-a"},
		{"tie: in service over pending", []*shoalv1.Instance{inst("i-a", 5, in), inst("i-b", 5, pend)}, "i-a"},
		{"full tie: greater id", []*shoalv1.Instance{inst("i-a", 5, in), inst("i-b", 5, in)}, "i-b"},
		{"three at one address", []*shoalv1.Instance{inst("i-1", 1, in), inst("i-3", 3, in), inst("i-2", 2, in)}, "i-3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := BackendSet(f, tc.ins, now, time.Minute)
			if tc.want == "" {
				if len(bs) != 0 {
					t.Fatalf("got %v, want no backend", bs)
				}
				return
			}
			if len(bs) != 1 || bs[0].InstanceId != tc.want {
				t.Fatalf("got %v, want only %s", bs, tc.want)
			}
		})
	}
	other := &shoalv1.Instance{Id: "i-other", PrivateIp: "10.0.0.2", State: in, StateChangeTime: tsms(old)}
	if bs := BackendSet(f, []*shoalv1.Instance{inst("i-a", 1, in), other}, now, time.Minute); len(bs) != 2 {
		t.Fatalf("distinct addresses must both be kept, got %v", bs)
	}
}

// tsms is unix milliseconds as a proto Timestamp.
func tsms(ms int64) *timestamppb.Timestamp { return timestamppb.New(time.UnixMilli(ms)) }

// msOf is t in unix milliseconds, 0 when unset.
func msOf(t *timestamppb.Timestamp) int64 {
	if t == nil {
		return 0
	}
	return t.AsTime().UnixMilli()
}

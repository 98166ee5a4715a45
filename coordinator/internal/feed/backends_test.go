package feed

import (
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func TestBackendSet(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	at := func(ago time.Duration) int64 { return now.Add(-ago).UnixMilli() }
	f := &shoalv1.Fleet{Name: "web", AppPort: 8080, Policy: &shoalv1.ScalingPolicy{WarmupMs: 30_000}}
	ins := []*shoalv1.Instance{
		{Id: "i-active", PrivateIp: "127.0.1.1", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, StateChangedAtUnixMs: at(time.Minute), Metrics: map[string]float64{"cpu": 75}},
		{Id: "i-warming", PrivateIp: "127.0.1.2", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, StateChangedAtUnixMs: at(10 * time.Second)},
		{Id: "i-draining", PrivateIp: "127.0.1.3", State: shoalv1.InstanceState_INSTANCE_STATE_DRAINING, StateChangedAtUnixMs: at(5 * time.Second), Metrics: map[string]float64{"cpu": 1}},
		{Id: "i-pending", PrivateIp: "127.0.1.4", State: shoalv1.InstanceState_INSTANCE_STATE_PENDING},
		{Id: "i-unhealthy", PrivateIp: "127.0.1.5", State: shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY},
		{Id: "i-noaddr", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE},
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
	} {
		t.Run(tc.id, func(t *testing.T) {
			b, ok := got[tc.id]
			if !ok {
				t.Fatalf("%s missing from the set", tc.id)
			}
			if b.State != tc.state || b.Address != tc.addr || b.Load != tc.load || b.DrainDeadlineUnixMs != tc.deadline {
				t.Fatalf("got %v, want state %v addr %s load %v deadline %d", b, tc.state, tc.addr, tc.load, tc.deadline)
			}
		})
	}
	if len(got) != 3 {
		t.Fatalf("set = %v: pending, unhealthy and address-less instances must get no traffic", got)
	}
	if bs := BackendSet(&shoalv1.Fleet{Name: "web"}, ins, now, time.Second); len(bs) != 0 {
		t.Fatalf("a fleet without --app-port has no backends, got %v", bs)
	}
}

package console

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// fleetAPI is a leader's answers for one fleet in one state.
type fleetAPI struct {
	shoalv1.UnimplementedControlServiceServer
	alarm shoalv1.AlarmState
}

func (fleetAPI) GetFleet(context.Context, *shoalv1.GetFleetRequest) (*shoalv1.GetFleetResponse, error) {
	return &shoalv1.GetFleetResponse{Fleet: &shoalv1.Fleet{Name: "web", Min: 1, Max: 4, Desired: 3,
		Policy: &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "util", Target: 50}}}}}, nil
}

func (fleetAPI) ListInstances(context.Context, *shoalv1.ListInstancesRequest) (*shoalv1.ListInstancesResponse, error) {
	return &shoalv1.ListInstancesResponse{Instances: []*shoalv1.Instance{
		{Id: "i-1", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE},
		{Id: "i-2", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE},
		{Id: "i-3", State: shoalv1.InstanceState_INSTANCE_STATE_DRAINING},
	}}, nil
}

func (fleetAPI) ListDecisions(context.Context, *shoalv1.ListDecisionsRequest) (*shoalv1.ListDecisionsResponse, error) {
	return &shoalv1.ListDecisionsResponse{Decisions: []*shoalv1.Decision{{Id: 1, Fleet: "web", Reason: "<script>x</script>"}}}, nil
}

func (fleetAPI) ExplainFleet(context.Context, *shoalv1.ExplainFleetRequest) (*shoalv1.ExplainFleetResponse, error) {
	return &shoalv1.ExplainFleetResponse{Fleet: "web", Current: 3, Recommended: 3, Inputs: map[string]float64{"util": 72}}, nil
}

func (f fleetAPI) ListAlarms(context.Context, *shoalv1.ListAlarmsRequest) (*shoalv1.ListAlarmsResponse, error) {
	return &shoalv1.ListAlarmsResponse{Alarms: []*shoalv1.Alarm{{Name: "high", Fleet: "web", State: f.alarm}}}, nil
}

func (fleetAPI) ListLoadBalancers(context.Context, *shoalv1.ListLoadBalancersRequest) (*shoalv1.ListLoadBalancersResponse, error) {
	return &shoalv1.ListLoadBalancersResponse{LoadBalancers: []*shoalv1.LoadBalancer{
		{Id: "lb-a", Fleet: "web", Backends: []*shoalv1.LoadBalancerBackend{{InstanceId: "i-3", InFlight: 7}}},
	}}, nil
}

// TestFleetPoint: one tick makes one chart point with the policy metric,
// capacity by state and the alarm flag, and the draining instance's
// in-flight requests per LB; the snapshot carries the history.
func TestFleetPoint(t *testing.T) {
	for _, tc := range []struct {
		state shoalv1.AlarmState
		alarm bool
	}{{shoalv1.AlarmState_ALARM_STATE_ALARM, true}, {shoalv1.AlarmState_ALARM_STATE_OK, false}} {
		cfg := DefaultConfig()
		cfg.API, cfg.Local = fleetAPI{alarm: tc.state}, fakeLocal{}
		cfg.Authorize = func(ctx context.Context, _, _ string) (context.Context, error) { return ctx, nil }
		cfg.Now = func() time.Time { return time.UnixMilli(1_000_000) }
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := newFleetProducer(c, "web")
		ev := p.tick(context.Background())
		var got struct {
			History []struct {
				Metrics   map[string]float64 `json:"metrics"`
				Desired   int                `json:"desired"`
				InService int                `json:"in_service"`
				Draining  int                `json:"draining"`
				Alarm     bool               `json:"alarm"`
			} `json:"history"`
			Instances []struct {
				ID       string            `json:"id"`
				InFlight map[string]uint32 `json:"in_flight"`
			} `json:"instances"`
		}
		if err := json.Unmarshal(ev.data, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.History) != 1 {
			t.Fatalf("update has %d points, want 1", len(got.History))
		}
		pt := got.History[0]
		if pt.Metrics["util"] != 72 || pt.Desired != 3 || pt.InService != 2 || pt.Draining != 1 || pt.Alarm != tc.alarm {
			t.Errorf("%v: point %+v; want util 72, desired 3, 2 in service, 1 draining, alarm %v", tc.state, pt, tc.alarm)
		}
		if got.Instances[2].ID != "i-3" || got.Instances[2].InFlight["lb-a"] != 7 {
			t.Errorf("draining instance: %+v, want 7 in flight on lb-a", got.Instances[2])
		}
		p.tick(context.Background())
		snap := p.first(context.Background())
		if snap.name != "snapshot" || strings.Count(string(snap.data), `"t":1000000`) != 2 {
			t.Errorf("snapshot %s: want the 2 points so far", snap.data)
		}
		c.Close()
	}
}

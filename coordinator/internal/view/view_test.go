package view

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func ptr(f float64) *float64 { return &f }

func TestFleetRoundTrip(t *testing.T) {
	in := &shoalv1.Fleet{
		Name: "web", Asg: "web-asg", Min: 2, Max: 8, Desired: 3, Paused: true, AppPort: 8080,
		AlarmActions: []string{"arn:aws:sns:us-east-1:1:ops"},
		Policy: &shoalv1.ScalingPolicy{
			TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50, Tolerance: 0.1}},
			StepScaling: []*shoalv1.StepScaling{{Metric: "queue", Steps: []*shoalv1.Step{
				{Lower: ptr(10), Upper: ptr(20), AdjustmentType: shoalv1.AdjustmentType_ADJUSTMENT_TYPE_CHANGE_IN_CAPACITY, Adjustment: 1},
				{Lower: ptr(20), AdjustmentType: shoalv1.AdjustmentType_ADJUSTMENT_TYPE_PERCENT_CHANGE, Adjustment: 50},
			}}},
			Warmup:        durationpb.New(30_000 * time.Millisecond),
			ScaleInWindow: durationpb.New(60_000 * time.Millisecond),
			ScaleOutLimit: &shoalv1.RateLimit{MaxInstances: 4, Period: durationpb.New(15_000 * time.Millisecond)},
			Sustain:       0.02,
		},
	}
	b, err := json.Marshal(FleetOf(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"asg":"web-asg"`, `"warmup":"30s"`, `"scale_in_window":"1m0s"`, `"adjustment_type":"percent_change"`, `"paused":true`, `"sustain":0.02`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	out, err := ParseFleet(b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("round trip changed the fleet:\n in  %v\n out %v", in, out)
	}
}

func TestParseFleetErrors(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"unknown key", `{"name":"web","mni":2}`, `unknown field "mni"`},
		{"bad adjustment", `{"name":"web","policy":{"step_scaling":[{"metric":"cpu","steps":[{"adjustment_type":"double","adjustment":1}]}]}}`, `policy.step_scaling[0].steps[0].adjustment_type: unknown value "double"`},
		{"bad duration", `{"name":"web","policy":{"warmup":"soon"}}`, `want a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFleet([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestWords(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{InstanceStateWord(shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE), "in_service"},
		{InstanceStateWord(shoalv1.InstanceState_INSTANCE_STATE_UNSPECIFIED), ""},
		{DecisionStatusWord(shoalv1.DecisionStatus_DECISION_STATUS_SUPERSEDED), "superseded"},
		{ErrorClassWord(shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE), "retryable"},
		{BackendStateWord(shoalv1.BackendState_BACKEND_STATE_DRAINING), "draining"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	s, err := ParseInstanceState("draining")
	if err != nil || s != shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
		t.Fatalf("ParseInstanceState(draining) = %v, %v", s, err)
	}
	if _, err := ParseDecisionStatus("unspecified"); err == nil {
		t.Fatal("the zero value must not parse")
	}
}

func TestDurationAcceptsSeconds(t *testing.T) {
	var d Duration
	if err := json.Unmarshal([]byte(`90`), &d); err != nil || time.Duration(d) != 90*time.Second {
		t.Fatalf("got %v, %v", time.Duration(d), err)
	}
}

func TestInstanceMetricsNeverNull(t *testing.T) {
	b, _ := json.Marshal(InstanceOf(&shoalv1.Instance{Id: "i-1", State: shoalv1.InstanceState_INSTANCE_STATE_PENDING}))
	if !strings.Contains(string(b), `"metrics":{}`) || !strings.Contains(string(b), `"state":"pending"`) {
		t.Fatalf("got %s", b)
	}
}

func TestStatusJSON(t *testing.T) {
	b, _ := json.Marshal(StatusOf(&shoalv1.GetStatusResponse{LeaderId: "n1", AppliedIndex: 7, Nodes: []*shoalv1.Node{{Id: "n1", RaftAddr: "a:1", RpcAddr: "a:2", Role: shoalv1.NodeRole_NODE_ROLE_LEADER, Voter: true}}}))
	for _, want := range []string{`"leader_id":"n1"`, `"applied_index":7`, `"nodes":[{"id":"n1","raft_addr":"a:1","rpc_addr":"a:2","role":"leader","voter":true}]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	if b, _ := json.Marshal(StatusOf(&shoalv1.GetStatusResponse{})); !strings.Contains(string(b), `"nodes":[]`) {
		t.Errorf("empty nodes must be [], got %s", b)
	}
}

func TestAlarmsAndExplainNeverNull(t *testing.T) {
	b, _ := json.Marshal(AlarmsOf(nil))
	if string(b) != "[]" {
		t.Fatalf("no alarms: got %s, want []", b)
	}
	b, _ = json.Marshal(AlarmsOf([]*shoalv1.Alarm{{Name: "shoal-web-cpu-high", Metric: "cpu", State: shoalv1.AlarmState_ALARM_STATE_OK, Comparison: shoalv1.Comparison_COMPARISON_GREATER_THAN_OR_EQUAL_TO_THRESHOLD}}))
	if !strings.Contains(string(b), `"state":"OK"`) || !strings.Contains(string(b), `"comparison":"GreaterThanOrEqualToThreshold"`) {
		t.Fatalf("got %s: want CloudWatch's spellings of state and comparison", b)
	}
	if !strings.Contains(string(b), `"name":"shoal-web-cpu-high"`) || strings.Contains(string(b), `"fleet"`) {
		t.Fatalf("got %s: want the name and no empty fleet", b)
	}
	b, _ = json.Marshal(ExplainOf(&shoalv1.ExplainFleetResponse{Fleet: "web", Current: 2, Recommended: 3}))
	if !strings.Contains(string(b), `"details":[]`) || !strings.Contains(string(b), `"inputs":{}`) || strings.Contains(string(b), `"blocked"`) {
		t.Fatalf("got %s", b)
	}
}

// TestPolicySustain: a policy file written before sustain existed reads as
// sustain 0, and the words the console shows name the knob only when set.
func TestPolicySustain(t *testing.T) {
	f, err := ParseFleet([]byte(`{"name":"web","policy":{"target_tracking":[{"metric":"cpu","target":60}],"warmup":"30s"}}`))
	if err != nil || f.Policy.GetSustain() != 0 {
		t.Fatalf("policy without sustain = %v, %v; want sustain 0", f.GetPolicy(), err)
	}
	f, err = ParseFleet([]byte(`{"name":"web","policy":{"target_tracking":[{"metric":"cpu","target":60}],"sustain":0.25}}`))
	if err != nil || f.Policy.GetSustain() != 0.25 {
		t.Fatalf("policy with sustain 0.25 = %v, %v", f.GetPolicy(), err)
	}
	b, _ := json.Marshal(PolicyOf(&shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 60}}}))
	if !strings.Contains(string(b), `"sustain":0`) {
		t.Errorf("JSON %s lacks sustain 0: the knob should show even when off", b)
	}
	if w := PolicyWords(f.Policy); !strings.Contains(w, "buy a rise once it has lasted 0.25 × the launch delay") {
		t.Errorf("words %q do not name sustain 0.25", w)
	}
	f.Policy.Sustain = 0
	if w := PolicyWords(f.Policy); strings.Contains(w, "launch delay") {
		t.Errorf("words %q mention sustain though it is 0", w)
	}
}

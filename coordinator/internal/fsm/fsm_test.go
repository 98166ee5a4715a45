package fsm

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// upd is an UpdateFleetRequest that changes paths of f.
func upd(f *shoalv1.Fleet, paths ...string) *shoalv1.UpdateFleetRequest {
	return &shoalv1.UpdateFleetRequest{Fleet: f, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}
}

// apply stamps a fixed time, as the leader would, and applies c.
func apply(t *testing.T, f *FSM, c Command) *Result {
	t.Helper()
	b, err := Stamp(c.Encode(), time.UnixMilli(1_700_000_000_000))
	if err != nil {
		t.Fatal(err)
	}
	return f.ApplyBytes(f.LastApplied()+1, b)
}

func mustApply(t *testing.T, f *FSM, c Command) *Result {
	t.Helper()
	r := apply(t, f, c)
	if err := r.Error(); err != nil {
		t.Fatalf("%s: %v", c.Op, err)
	}
	return r
}

func seed(t *testing.T) *FSM {
	f := New()
	mustApply(t, f, CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "web-asg", Min: 1, Max: 5, Desired: 2}))
	mustApply(t, f, CreateFleet(&shoalv1.Fleet{Name: "api", Asg: "api-asg", Min: 0, Max: 3}))
	return f
}

func TestApplyErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  Command
		want string
		is   error
	}{
		{"min above max", CreateFleet(&shoalv1.Fleet{Name: "x", Asg: "x", Min: 5, Max: 3}), "min (5) must be <= max (3)", ErrInvalid},
		{"negative min", CreateFleet(&shoalv1.Fleet{Name: "x", Asg: "x", Min: -1, Max: 3}), "min (-1) must be >= 0", ErrInvalid},
		{"negative max", CreateFleet(&shoalv1.Fleet{Name: "x", Asg: "x", Min: 0, Max: -2}), "max (-2) must be >= 0", ErrInvalid},
		{"desired out of range", CreateFleet(&shoalv1.Fleet{Name: "x", Asg: "x", Min: 1, Max: 3, Desired: 9}), "desired (9) must be between min (1) and max (3)", ErrInvalid},
		{"no name", CreateFleet(&shoalv1.Fleet{Asg: "x", Max: 3}), "name: required", ErrInvalid},
		{"bad name", CreateFleet(&shoalv1.Fleet{Name: "a b", Asg: "x", Max: 3}), `name ("a b")`, ErrInvalid},
		{"no asg", CreateFleet(&shoalv1.Fleet{Name: "x", Max: 3}), "asg: required", ErrInvalid},
		{"bad port", CreateFleet(&shoalv1.Fleet{Name: "x", Asg: "x", Max: 3, AppPort: 70000}), "app_port (70000)", ErrInvalid},
		{"bad alarm action", CreateFleet(&shoalv1.Fleet{Name: "x", Asg: "x", Max: 3, AlarmActions: []string{"sns"}}), `alarm_actions[0] ("sns"): must be an ARN`, ErrInvalid},
		{"duplicate name", CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "other", Max: 3}), `name: fleet "web" already exists`, ErrExists},
		{"group used", CreateFleet(&shoalv1.Fleet{Name: "web2", Asg: "web-asg", Max: 3}), `asg: group "web-asg" already used by fleet "web"`, ErrExists},
		{"update unknown", UpdateFleet(upd(&shoalv1.Fleet{Name: "nope", Max: 3}, "max")), `fleet "nope": unknown fleet`, ErrNotFound},
		{"update min above max", UpdateFleet(upd(&shoalv1.Fleet{Name: "web", Min: 4, Max: 3}, "min", "max")), "min (4) must be <= max (3)", ErrInvalid},
		{"update steals group", UpdateFleet(upd(&shoalv1.Fleet{Name: "api", Asg: "web-asg"}, "asg")), `already used by fleet "web"`, ErrExists},
		{"delete unknown", DeleteFleet("nope"), "unknown fleet", ErrNotFound},
		{"pause unknown", PauseFleet("nope", true), "unknown fleet", ErrNotFound},
		{"policy unknown fleet", SetPolicy("nope", &shoalv1.ScalingPolicy{}), "unknown fleet", ErrNotFound},
		{"policy sustain above 2", SetPolicy("web", &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}, Sustain: 3}),
			"policy.sustain: must be a share of the launch delay in [0, 2] (got 3)", ErrInvalid},
		{"policy sustain NaN", SetPolicy("web", &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}, Sustain: math.NaN()}),
			"policy.sustain: must be a share of the launch delay in [0, 2] (got NaN)", ErrInvalid},
		{"create with sustain negative", CreateFleet(&shoalv1.Fleet{Name: "x", Asg: "x", Max: 3, Policy: &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}, Sustain: -1}}),
			"policy.sustain: must be a share of the launch delay in [0, 2] (got -1)", ErrInvalid},
		{"decision above max", CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 9, Source: SourceManual}), "desired (9) must be between min (1) and max (5)", ErrInvalid},
		{"decision bad source", CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 3, Source: shoalv1.DecisionSource(99)}), `source (99)`, ErrInvalid},
		{"decision unknown fleet", CreateDecision(&shoalv1.Decision{Fleet: "nope", Capacity: 3, Source: SourceManual}), "unknown fleet", ErrNotFound},
		{"update unknown decision", UpdateDecision(99, shoalv1.DecisionStatus_DECISION_STATUS_APPLIED, "", 0), "decision 99: unknown decision", ErrNotFound},
		{"instance unknown fleet", RegisterInstance(&shoalv1.Instance{Id: "i-1", Fleet: "nope"}), "unknown fleet", ErrNotFound},
		{"instance no id", RegisterInstance(&shoalv1.Instance{Fleet: "web"}), "id: required", ErrInvalid},
		{"state of unknown instance", SetInstanceState("i-9", shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE), `instance "i-9": unknown instance`, ErrNotFound},
		{"watermark no key", SetWatermark("", 1), "key: required", ErrInvalid},
		{"unknown op", Command{Version: 1, Op: "explode"}, `op: unknown command "explode"`, ErrInvalid},
		{"newer version", Command{Version: CommandVersion + 1, Op: OpDeleteFleet}, "unsupported version", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := seed(t)
			before := f.Save()
			r := f.ApplyBytes(10, tc.cmd.Encode())
			err := r.Error()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.is)
			}
			if after := f.Save(); !bytes.Equal(before, after) {
				t.Fatalf("a rejected command changed the state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestFleetLifecycle(t *testing.T) {
	f := seed(t)
	api, _ := f.Fleet("api")
	if api.Desired != 0 || api.GetCreateTime().AsTime().UnixMilli() != 1_700_000_000_000 {
		t.Fatalf("api = %v, want desired 0 and the stamped time", api)
	}
	web, _ := f.Fleet("web")
	if web.Desired != 2 {
		t.Fatalf("web desired = %d, want 2", web.Desired)
	}

	r := mustApply(t, f, UpdateFleet(upd(&shoalv1.Fleet{Name: "web", Max: 10, AlarmActions: []string{"arn:aws:sns:x"}}, "max", "alarm_actions")))
	if r.Fleet.Max != 10 || r.Fleet.Min != 1 || len(r.Fleet.AlarmActions) != 1 {
		t.Fatalf("update result = %v", r.Fleet)
	}
	mustApply(t, f, PauseFleet("web", true))
	if fl, _ := f.Fleet("web"); !fl.Paused {
		t.Fatal("pause did not pause")
	}
	mustApply(t, f, PauseFleet("web", false))
	if fl, _ := f.Fleet("web"); fl.Paused {
		t.Fatal("resume did not resume")
	}
	pol := &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}}
	mustApply(t, f, SetPolicy("web", pol))
	if fl, _ := f.Fleet("web"); !proto.Equal(fl.Policy, pol) {
		t.Fatalf("policy = %v", fl.Policy)
	}
	// A group freed by one fleet may be taken by another.
	mustApply(t, f, UpdateFleet(upd(&shoalv1.Fleet{Name: "web", Asg: "web-asg-2"}, "asg")))
	mustApply(t, f, CreateFleet(&shoalv1.Fleet{Name: "web-old", Asg: "web-asg", Max: 1}))

	mustApply(t, f, RegisterInstance(&shoalv1.Instance{Id: "i-1", Fleet: "web", PrivateIp: "10.0.0.1"}))
	mustApply(t, f, CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 3, Source: SourceManual}))
	mustApply(t, f, DeleteFleet("web"))
	if _, err := f.Fleet("web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted fleet: err = %v", err)
	}
	if n := len(f.Instances("")); n != 0 {
		t.Fatalf("deleting a fleet left %d instances", n)
	}
	if names := len(f.Fleets()); names != 2 {
		t.Fatalf("fleets = %d, want 2", names)
	}
}

func TestInstanceStates(t *testing.T) {
	f := seed(t)
	mustApply(t, f, RegisterInstance(&shoalv1.Instance{Id: "i-1", Fleet: "web", PrivateIp: "10.0.0.1", Metrics: map[string]float64{"cpu": 5}}))
	in, _ := f.Instance("i-1")
	if in.State != shoalv1.InstanceState_INSTANCE_STATE_PENDING || in.Metrics != nil {
		t.Fatalf("registered = %v, want pending and no live metrics in the log", in)
	}
	for _, tc := range []struct {
		name string
		to   shoalv1.InstanceState
		want string
	}{
		{"in service", shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, ""},
		{"unhealthy", shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY, ""},
		{"draining", shoalv1.InstanceState_INSTANCE_STATE_DRAINING, ""},
		{"terminated", shoalv1.InstanceState_INSTANCE_STATE_TERMINATED, ""},
		{"terminated is final", shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, "terminated instances cannot change state"},
		{"unspecified", shoalv1.InstanceState_INSTANCE_STATE_UNSPECIFIED, "unknown instance state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := apply(t, f, SetInstanceState("i-1", tc.to)).Error()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if in, _ := f.Instance("i-1"); in.State != tc.to {
					t.Fatalf("state = %v, want %v", in.State, tc.to)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	mustApply(t, f, InstanceLeave("i-1"))
	if _, err := f.Instance("i-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after leave: %v", err)
	}
}

func TestDecisions(t *testing.T) {
	f := seed(t)
	d1 := mustApply(t, f, CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 4, Source: SourceAuto, Reason: "cpu 80 > 50", Inputs: map[string]float64{"cpu": 80}})).Decision
	if d1.Id != 1 || d1.Status != shoalv1.DecisionStatus_DECISION_STATUS_PENDING {
		t.Fatalf("d1 = %v", d1)
	}
	d2 := mustApply(t, f, CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 5, Source: SourceManual})).Decision
	mustApply(t, f, UpdateDecision(d1.Id, shoalv1.DecisionStatus_DECISION_STATUS_SUPERSEDED, "", 0))
	if err := apply(t, f, UpdateDecision(d1.Id, shoalv1.DecisionStatus_DECISION_STATUS_APPLIED, "", 0)).Error(); !errors.Is(err, ErrConflict) {
		t.Fatalf("second outcome: err = %v, want conflict", err)
	}
	if err := apply(t, f, UpdateDecision(d2.Id, shoalv1.DecisionStatus_DECISION_STATUS_FAILED, "throttled", 0)).Error(); err == nil || !strings.Contains(err.Error(), "error_class") {
		t.Fatalf("failed without class: err = %v", err)
	}
	mustApply(t, f, UpdateDecision(d2.Id, shoalv1.DecisionStatus_DECISION_STATUS_APPLIED, "", 0))
	if fl, _ := f.Fleet("web"); fl.Desired != 5 {
		t.Fatalf("desired after applied = %d, want 5", fl.Desired)
	}
	d3 := mustApply(t, f, CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 5, Capacity: 4, Source: SourceAuto})).Decision
	mustApply(t, f, UpdateDecision(d3.Id, shoalv1.DecisionStatus_DECISION_STATUS_FAILED, "AccessDenied", shoalv1.ErrorClass_ERROR_CLASS_FATAL))
	ds, _ := f.Decisions("web", 0)
	if len(ds) != 3 || ds[2].ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_FATAL || ds[2].Error != "AccessDenied" {
		t.Fatalf("history = %v", ds)
	}
	if last, _ := f.Decisions("web", 1); len(last) != 1 || last[0].Id != d3.Id {
		t.Fatalf("limit 1 = %v, want the newest", last)
	}

	for i := 0; i < DefaultDecisionsPerFleet+10; i++ {
		mustApply(t, f, CreateDecision(&shoalv1.Decision{Fleet: "api", PreviousCapacity: 0, Capacity: 1, Source: SourceAuto}))
	}
	ds, _ = f.Decisions("api", 0)
	if len(ds) != DefaultDecisionsPerFleet || ds[len(ds)-1].Id != uint64(3+DefaultDecisionsPerFleet+10) {
		t.Fatalf("bounded history: len %d, newest %d", len(ds), ds[len(ds)-1].Id)
	}
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

func richState(t *testing.T) *FSM {
	f := seed(t)
	mustApply(t, f, SetPolicy("web", &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}, Warmup: durationpb.New(30_000 * time.Millisecond)}))
	mustApply(t, f, PauseFleet("api", true))
	mustApply(t, f, RegisterInstance(&shoalv1.Instance{Id: "i-1", Fleet: "web", PrivateIp: "10.0.0.1", AvailabilityZone: "us-east-1a"}))
	mustApply(t, f, SetInstanceState("i-1", shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE))
	d := mustApply(t, f, CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 3, Source: SourceManual, Inputs: map[string]float64{"cpu": 70}})).Decision
	mustApply(t, f, UpdateDecision(d.Id, shoalv1.DecisionStatus_DECISION_STATUS_FAILED, "throttled", shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE))
	mustApply(t, f, SetWatermark("cloudwatch/web", 1_700_000_000_000))
	mustApply(t, f, SetMember(Member{ID: "n1", RaftAddr: "127.0.0.1:7300", RPCAddr: "127.0.0.1:7400"}))
	return f
}

func TestSnapshotRoundTrip(t *testing.T) {
	f := richState(t)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Changes after the snapshot was taken must not leak into it.
	mustApply(t, f, DeleteFleet("api"))
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	g := New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Fleet("api"); err != nil {
		t.Fatalf("snapshot lost api (or saw the later delete): %v", err)
	}
	// Put the delete back so both hold the same state, then compare encodings.
	mustApply(t, g, DeleteFleet("api"))
	if a, b := f.Save(), g.Save(); !bytes.Equal(a, b) {
		t.Fatalf("round trip differs:\n%s\n%s", a, b)
	}
	web, _ := g.Fleet("web")
	if web.Policy.GetWarmup().AsDuration() != 30*time.Second {
		t.Fatalf("policy lost: %v", web.Policy)
	}
	if w, ok := g.Watermark("cloudwatch/web"); !ok || w != 1_700_000_000_000 {
		t.Fatalf("watermark = %d, %v", w, ok)
	}
	if ds, _ := g.Decisions("web", 0); len(ds) != 1 || ds[0].ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE || ds[0].Inputs["cpu"] != 70 {
		t.Fatalf("decisions = %v", ds)
	}
	if in, _ := g.Instance("i-1"); in.State != shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE {
		t.Fatalf("instance = %v", in)
	}
	if m := g.Members()["n1"]; m.RPCAddr != "127.0.0.1:7400" {
		t.Fatalf("members = %v", g.Members())
	}
	// Decision ids continue after a restore instead of reusing old ones.
	d := mustApply(t, g, CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 3, Capacity: 4, Source: SourceAuto})).Decision
	if d.Id != 2 {
		t.Fatalf("next decision id = %d, want 2", d.Id)
	}
}

func TestRestoreCommandKeepsMembers(t *testing.T) {
	saved := richState(t).Save()
	f := New()
	mustApply(t, f, SetMember(Member{ID: "other", RaftAddr: "10.0.0.9:7300", RPCAddr: "10.0.0.9:7400"}))
	mustApply(t, f, CreateFleet(&shoalv1.Fleet{Name: "gone", Asg: "gone", Max: 1}))
	mustApply(t, f, Restore(saved))
	if _, err := f.Fleet("gone"); !errors.Is(err, ErrNotFound) {
		t.Fatal("restore kept a fleet the snapshot does not have")
	}
	if _, err := f.Fleet("web"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Members()["other"]; !ok || len(f.Members()) != 1 {
		t.Fatalf("members = %v, want the cluster's own", f.Members())
	}
	if err := apply(t, f, Restore([]byte("not json"))).Error(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad snapshot: %v", err)
	}
}

func TestSnapshotVersion(t *testing.T) {
	f := New()
	err := f.Restore(io.NopCloser(strings.NewReader(`{"v":99}`)))
	if !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("err = %v", err)
	}
	// A version-1 snapshot with fields this release does not know still loads.
	err = f.Restore(io.NopCloser(strings.NewReader(`{"v":1,"fleets":[{"name":"a","asg":"b","max":2,"futureField":1}],"later":true}`)))
	if err != nil {
		t.Fatal(err)
	}
	if fl, err := f.Fleet("a"); err != nil || fl.Max != 2 {
		t.Fatalf("fleet = %v, %v", fl, err)
	}
}

// TestStampOverwrites: the time a sender wrote is never the one applied, so
// no caller of ApplyCommand can back- or future-date a change.
func TestStampOverwrites(t *testing.T) {
	forged := DeleteFleet("x")
	forged.AtMS = 4_102_444_800_000 // 2100-01-01
	b, err := Stamp(forged.Encode(), time.UnixMilli(5))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Decode(b); got.AtMS != 5 {
		t.Fatalf("at_ms = %d, want the leader's 5", got.AtMS)
	}
	b2, _ := Stamp(b, time.UnixMilli(9))
	if got, _ := Decode(b2); got.AtMS != 9 {
		t.Fatalf("restamped at_ms = %d, want 9", got.AtMS)
	}
	// What the FSM records is the leader's time.
	f := New()
	c := CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "web-asg", Max: 2})
	c.AtMS = 1
	b, _ = Stamp(c.Encode(), time.UnixMilli(1_700_000_000_000))
	if r := f.ApplyBytes(1, b); r.Error() != nil || r.Fleet.GetCreateTime().AsTime().UnixMilli() != 1_700_000_000_000 {
		t.Fatalf("created_at = %v, %v; want the leader's time", r.Fleet.GetCreateTime().AsTime(), r.Error())
	}
}

func TestResultEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *Result
	}{
		{"error", &Result{Err: &Error{Kind: KindExists, Msg: "name: dup"}}},
		{"fleet", &Result{Fleet: &shoalv1.Fleet{Name: "w", Max: 3}}},
		{"decision", &Result{Decision: &shoalv1.Decision{Id: 4, Status: shoalv1.DecisionStatus_DECISION_STATUS_PENDING}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeResult(EncodeResult(tc.r))
			if err != nil {
				t.Fatal(err)
			}
			if (tc.r.Err == nil) != (got.Err == nil) || (got.Err != nil && *got.Err != *tc.r.Err) {
				t.Fatalf("err = %v, want %v", got.Err, tc.r.Err)
			}
			if tc.r.Err != nil && !errors.Is(got.Error(), ErrExists) {
				t.Fatalf("kind lost: %v", got.Error())
			}
			if !proto.Equal(got.Fleet, tc.r.Fleet) || !proto.Equal(got.Decision, tc.r.Decision) {
				t.Fatalf("got %v, want %v", got, tc.r)
			}
		})
	}
}

func TestApplyIgnoresNonCommandLogs(t *testing.T) {
	f := seed(t)
	before := f.Save()
	if r := f.Apply(&raft.Log{Type: raft.LogNoop, Index: 50}).(*Result); r.Error() != nil {
		t.Fatal(r.Error())
	}
	if !bytes.Equal(before, f.Save()) {
		t.Fatal("a noop changed the state")
	}
}

// TestAppliedDecisionKeepsDesiredInBounds: a decision applied after its
// fleet's bounds shrank leaves desired inside the new bounds.
func TestAppliedDecisionKeepsDesiredInBounds(t *testing.T) {
	f := seed(t)
	d := mustApply(t, f, CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 5, Source: SourceAuto})).Decision
	mustApply(t, f, UpdateFleet(upd(&shoalv1.Fleet{Name: "web", Max: 3, Desired: 3}, "max", "desired")))
	mustApply(t, f, UpdateDecision(d.Id, shoalv1.DecisionStatus_DECISION_STATUS_APPLIED, "", 0))
	if fl, _ := f.Fleet("web"); fl.Desired != 3 {
		t.Fatalf("desired = %d, want 3 (the new max)", fl.Desired)
	}
}

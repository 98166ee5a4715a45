package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

const realID = "i-0123456789abcdef0"

// TestApplyDefends is one case per rule the FSM enforces on what reaches the
// log, whoever wrote it: the error names the field and the reason, the
// state is byte-identical afterwards, and the refusal is counted.
func TestApplyDefends(t *testing.T) {
	tt := func(metric string, target float64) *shoalv1.ScalingPolicy {
		return &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: metric, Target: target}}}
	}
	elevenMetrics := &shoalv1.ScalingPolicy{}
	for i := range 11 {
		elevenMetrics.TargetTracking = append(elevenMetrics.TargetTracking, &shoalv1.TargetTracking{Metric: fmt.Sprintf("m%d", i), Target: 1})
	}
	inst := func(id, ip string) Command {
		return RegisterInstance(&shoalv1.Instance{Id: id, Fleet: "web", PrivateIp: ip})
	}
	member := func(raft, rpc string) Command { return SetMember(Member{ID: "n9", RaftAddr: raft, RPCAddr: rpc}) }
	for _, tc := range []struct {
		name string
		cmd  Command
		want string
	}{
		{"policy negative target", SetPolicy("web", tt("cpu", -50)), "policy.target_tracking[0].target: must be > 0 (got -50)"},
		{"policy unknown metric", SetPolicy("web", tt("CPU%", 50)), `policy.target_tracking[0].metric: unknown metric "CPU%"`},
		{"policy empty", SetPolicy("web", &shoalv1.ScalingPolicy{}), "policy: needs at least one target_tracking or step_scaling entry"},
		{"policy eleven metrics", SetPolicy("web", elevenMetrics), "policy: has 11 target_tracking and step_scaling entries; at most 10 are allowed"},
		{"create fleet with bad policy", CreateFleet(&shoalv1.Fleet{Name: "x", Asg: "x", Max: 3, Policy: tt("cpu", 0)}), "policy.target_tracking[0].target: must be > 0"},
		{"fleet name of a megabyte", CreateFleet(&shoalv1.Fleet{Name: strings.Repeat("w", 1<<20), Asg: "x", Max: 3}), "name: 1048576 characters, longer than 63"},
		{"alarm action too long", UpdateFleet(upd(&shoalv1.Fleet{Name: "web",
			AlarmActions: []string{strings.Repeat("x", 2049)}}, "alarm_actions")), "alarm_actions[0]: longer than 2048 characters"},
		{"six alarm actions", UpdateFleet(upd(&shoalv1.Fleet{Name: "web",
			AlarmActions: []string{"arn:1", "arn:2", "arn:3", "arn:4", "arn:5", "arn:6"}}, "alarm_actions")), "alarm_actions: 6 actions, CloudWatch allows at most 5"},
		{"update mask empty", UpdateFleet(upd(&shoalv1.Fleet{Name: "web", Max: 4})), "update_mask: names no field"},
		{"update mask unknown path", UpdateFleet(upd(&shoalv1.Fleet{Name: "web", Max: 4}, "name")), `update_mask: "name" is not an updatable field`},
		{"update mask repeated", UpdateFleet(upd(&shoalv1.Fleet{Name: "web", Max: 4}, "max", "max")), `update_mask: "max" named twice`},
		{"instance id not i-", inst("web-1", "10.0.0.1"), `id ("web-1"): must be "i-" followed by lower-case hex digits`},
		{"instance id not hex", inst("i-web1", "10.0.0.1"), `id ("i-web1"): must be "i-" followed by lower-case hex digits`},
		{"instance id upper case", inst("i-0123ABCD", "10.0.0.1"), `id ("i-0123ABCD"): must be "i-"`},
		{"instance id just the prefix", inst("i-", "10.0.0.1"), `id ("i-"): must be "i-"`},
		{"instance id too long", inst(realID+"0", "10.0.0.1"), "id: 20 characters, longer than 19"},
		{"instance id of a megabyte", inst("i-"+strings.Repeat("a", 1<<20), "10.0.0.1"), "id: 1048578 characters, longer than 19"},
		{"instance id empty", inst("", "10.0.0.1"), "id: required"},
		{"private ip script", inst(realID, "not an ip; <script>"), `private_ip ("not an ip; <script>"): not an IP address`},
		{"private ip with port", inst(realID, "10.0.0.1:80"), `private_ip ("10.0.0.1:80"): not an IP address`},
		{"private ip too long", inst(realID, strings.Repeat("1", 100)), "private_ip: 100 characters, longer than an IP address"},
		{"availability zone too long", RegisterInstance(&shoalv1.Instance{Id: realID, Fleet: "web", AvailabilityZone: strings.Repeat("z", 129)}), "availability_zone: longer than 128"},
		{"instance state unknown", RegisterInstance(&shoalv1.Instance{Id: realID, Fleet: "web", State: 99}), "state (99): unknown instance state"},
		{"member raft addr elsewhere no port", member("evil.example", "10.0.0.9:7400"), `raft_addr ("evil.example"): not host:port`},
		{"member rpc addr port zero", member("10.0.0.9:7300", "10.0.0.9:0"), `rpc_addr ("10.0.0.9:0"): port must be a number in 1..65535`},
		{"member rpc addr port too big", member("10.0.0.9:7300", "10.0.0.9:70000"), "port must be a number in 1..65535"},
		{"member rpc addr port not a number", member("10.0.0.9:7300", "10.0.0.9:http"), "port must be a number in 1..65535"},
		{"member rpc addr no host", member("10.0.0.9:7300", ":7400"), `rpc_addr (":7400"): host is empty`},
		{"member addr too long", member(strings.Repeat("h", 300)+":7300", "10.0.0.9:7400"), "raft_addr: 305 characters, longer than 261"},
		{"member addr missing", member("", "10.0.0.9:7400"), "raft_addr: required"},
		{"member id too long", SetMember(Member{ID: strings.Repeat("n", 129), RaftAddr: "a:1", RPCAddr: "a:2"}), "id: 129 characters, longer than 128"},
		{"decision reason too long", CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 3, Source: SourceAuto, Reason: strings.Repeat("r", MaxTextLen+1)}), "reason: longer than 4096"},
		{"decision too many inputs", CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 3, Source: SourceAuto, Inputs: manyInputs(65)}), "inputs: 65 values, more than 64"},
		{"decision error too long", UpdateDecision(1, shoalv1.DecisionStatus_DECISION_STATUS_FAILED, strings.Repeat("e", MaxTextLen+1), shoalv1.ErrorClass_ERROR_CLASS_FATAL), "error: longer than 4096"},
		{"watermark key too long", SetWatermark(strings.Repeat("k", 129), 1), "key: longer than 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := seed(t)
			mustApply(t, f, CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 3, Source: SourceManual}))
			before, rejectedBefore := f.Save(), f.Rejected().Total
			r := apply(t, f, tc.cmd)
			err := r.Error()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want errors.Is ErrInvalid", err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("error of %d bytes echoes the input; want it short", len(err.Error()))
			}
			if after := f.Save(); !bytes.Equal(before, after) {
				t.Fatalf("a rejected command changed the state:\nbefore %s\nafter  %s", before, after)
			}
			rj := f.Rejected()
			if rj.Total != rejectedBefore+1 || rj.ByKind[KindInvalid] != 1 {
				t.Fatalf("rejections = %+v, want one more, of kind invalid", rj)
			}
			last := rj.Recent[len(rj.Recent)-1]
			if last.Op != tc.cmd.Op || last.Index != f.LastApplied() || len(last.Msg) > maxRejectionMsg {
				t.Fatalf("last rejection = %+v, want op %s at index %d", last, tc.cmd.Op, f.LastApplied())
			}
		})
	}
}

func manyInputs(n int) map[string]float64 {
	m := map[string]float64{}
	for i := range n {
		m[fmt.Sprintf("m%d", i)] = 1
	}
	return m
}

// TestApplyAccepts: the rules let through what real clusters send.
func TestApplyAccepts(t *testing.T) {
	f := seed(t)
	for _, c := range []Command{
		RegisterInstance(&shoalv1.Instance{Id: realID, Fleet: "web", PrivateIp: "10.0.3.17", AvailabilityZone: "us-east-1a", ImageId: "ami-0abcdef1234567890"}),
		RegisterInstance(&shoalv1.Instance{Id: "i-0a1b2c3d", Fleet: "web"}), // the old 8-digit form, no address yet
		RegisterInstance(&shoalv1.Instance{Id: "i-0a1b2c3e", Fleet: "web", PrivateIp: "fd00::17"}),
		SetMember(Member{ID: "coord-1", RaftAddr: "coord-1.internal:7300", RPCAddr: "[fd00::1]:7400"}),
		SetPolicy("web", &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}}),
		SetPolicy("web", nil), // back to manual scaling
	} {
		mustApply(t, f, c)
	}
	if rj := f.Rejected(); rj.Total != 0 {
		t.Fatalf("rejections = %+v, want none", rj)
	}
}

// TestRejectionsBounded: the record of refusals keeps the newest few.
func TestRejectionsBounded(t *testing.T) {
	f := New()
	for i := range maxRecentRejections + 5 {
		apply(t, f, RegisterInstance(&shoalv1.Instance{Id: fmt.Sprintf("bad-%d", i), Fleet: "web"}))
	}
	f.ApplyBytes(f.LastApplied()+1, []byte("not json"))
	rj := f.Rejected()
	if rj.Total != maxRecentRejections+6 || len(rj.Recent) != maxRecentRejections {
		t.Fatalf("total %d, recent %d; want %d and %d", rj.Total, len(rj.Recent), maxRecentRejections+6, maxRecentRejections)
	}
	if last := rj.Recent[maxRecentRejections-1]; last.Op != "" || !strings.Contains(last.Msg, "decode command") {
		t.Fatalf("last = %+v, want the undecodable command", last)
	}
	if first := rj.Recent[0]; !strings.Contains(first.Msg, `"bad-6"`) {
		t.Fatalf("oldest kept = %+v, want bad-6", first)
	}
}

// goodSnapshot is a valid snapshot with every kind of entry, as JSON to edit.
func goodSnapshot(t *testing.T) map[string]any {
	t.Helper()
	f := richState(t)
	mustApply(t, f, RegisterInstance(&shoalv1.Instance{Id: realID, Fleet: "web", PrivateIp: "10.0.0.2"}))
	var m map[string]any
	if err := json.Unmarshal(f.Save(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRestoreRefuses(t *testing.T) {
	entry := func(m map[string]any, list string, i int) map[string]any {
		return m[list].([]any)[i].(map[string]any)
	}
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"fleet min above max", func(m map[string]any) { entry(m, "fleets", 0)["min"] = 9 }, `fleets["api"]: min (9) must be <= max (3)`},
		{"fleet desired above max", func(m map[string]any) { entry(m, "fleets", 0)["desired"] = 99 }, `fleets["api"]: desired (99) must be between min (0) and max (3)`},
		{"fleet bad name", func(m map[string]any) {
			entry(m, "fleets", 0)["name"] = "a b"
		}, `fleets["a b"]: name ("a b")`},
		{"fleet bad policy", func(m map[string]any) {
			entry(m, "fleets", 0)["policy"] = map[string]any{"targetTracking": []any{map[string]any{"metric": "cpu", "target": -50}}}
		}, `fleets["api"]: policy.target_tracking[0].target: must be > 0 (got -50)`},
		{"fleet listed twice", func(m map[string]any) { m["fleets"] = append(m["fleets"].([]any), entry(m, "fleets", 0)) }, `fleets[2] ("api"): listed twice`},
		{"instance bad id", func(m map[string]any) { entry(m, "instances", 0)["id"] = "i-web1" }, `instances["i-web1"]: id ("i-web1"): must be "i-"`},
		{"instance bad ip", func(m map[string]any) { entry(m, "instances", 0)["privateIp"] = "not an ip; <script>" }, `instances["i-0123456789abcdef0"]: private_ip ("not an ip; <script>"): not an IP address`},
		{"instance unknown fleet", func(m map[string]any) { entry(m, "instances", 0)["fleet"] = "ghost" }, `instances["i-0123456789abcdef0"]: fleet "ghost" is not in the snapshot`},
		{"instance listed twice", func(m map[string]any) {
			m["instances"] = append(m["instances"].([]any), entry(m, "instances", 0))
		}, `instances[2] ("i-0123456789abcdef0"): listed twice`},
		{"decision unknown fleet", func(m map[string]any) { entry(m, "decisions", 0)["fleet"] = "ghost" }, `decisions[1]: fleet "ghost" is not in the snapshot`},
		{"decision id above next", func(m map[string]any) { m["next_decision_id"] = 0 }, "decisions[1]: id: above next_decision_id (0)"},
		{"decision id zero", func(m map[string]any) { delete(entry(m, "decisions", 0), "id") }, "decisions[0]: id: required"},
		{"decision listed twice", func(m map[string]any) {
			m["decisions"] = append(m["decisions"].([]any), entry(m, "decisions", 0))
		}, "decisions[1]: id: listed twice"},
		{"decision forged source", func(m map[string]any) { entry(m, "decisions", 0)["source"] = "cron" }, `decisions[1]: source (DECISION_SOURCE_UNSPECIFIED)`},
		{"decision unknown status", func(m map[string]any) { entry(m, "decisions", 0)["status"] = 42 }, "decisions[1]: status (42): unknown decision status"},
		{"member bad addr", func(m map[string]any) { entry(m, "members", 0)["rpc_addr"] = "nowhere" }, `members["n1"]: rpc_addr ("nowhere"): not host:port`},
		{"member listed twice", func(m map[string]any) { m["members"] = append(m["members"].([]any), entry(m, "members", 0)) }, `members["n1"]: listed twice`},
		{"watermark empty key", func(m map[string]any) { m["watermarks"] = map[string]any{"": 1} }, `watermarks[""]: key must be 1..128 characters`},
		{"not json", func(m map[string]any) { m["fleets"] = "nope" }, "decode snapshot"},
		{"newer version", func(m map[string]any) { m["v"] = SnapshotVersion + 1 }, "unsupported version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := goodSnapshot(t)
			tc.edit(m)
			snap, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckSnapshot(snap); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckSnapshot = %v, want it to contain %q", err, tc.want)
			}
			f := seed(t)
			before := f.Save()
			err = apply(t, f, Restore(snap)).Error()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("restore = %v, want an invalid error containing %q", err, tc.want)
			}
			if after := f.Save(); !bytes.Equal(before, after) {
				t.Fatalf("a refused restore changed the state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestRestoreAcceptsOwnSnapshot(t *testing.T) {
	m := goodSnapshot(t)
	snap, _ := json.Marshal(m)
	if err := CheckSnapshot(snap); err != nil {
		t.Fatalf("a snapshot the FSM saved: %v", err)
	}
	f := New()
	mustApply(t, f, Restore(snap))
	if _, err := f.Instance(realID); err != nil {
		t.Fatal(err)
	}
}

// TestRaftRestoreIsLenient: raft's own snapshots (this node's, or the
// leader's when catching up) hold what the cluster already applied, perhaps
// under an older release's rules; refusing one would strand the node, so
// only the operator's restore command checks.
func TestRaftRestoreIsLenient(t *testing.T) {
	m := goodSnapshot(t)
	m["instances"].([]any)[0].(map[string]any)["id"] = "i-web1"
	snap, _ := json.Marshal(m)
	f := New()
	if err := f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Instance("i-web1"); err != nil {
		t.Fatalf("old instance id after raft restore: %v", err)
	}
}

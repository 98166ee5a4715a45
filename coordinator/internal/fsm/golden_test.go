package fsm

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// goldenCommands is one command of every op, as release 1 writes them.
func goldenCommands() []Command {
	d := &shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 3, Source: SourceAuto, Reason: "cpu 71 > 50", Inputs: map[string]float64{"cpu": 71}}
	return []Command{
		SetMember(Member{ID: "n1", RaftAddr: "10.0.0.1:7300", RPCAddr: "10.0.0.1:7400"}),
		CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "web-asg", Min: 1, Max: 6, Desired: 2, AppPort: 8080}),
		CreateFleet(&shoalv1.Fleet{Name: "old", Asg: "old-asg", Max: 1}),
		UpdateFleet(upd(&shoalv1.Fleet{Name: "web", Max: 8, AlarmActions: []string{"arn:aws:sns:us-east-1:1:ops"}}, "max", "alarm_actions")),
		SetPolicy("web", &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}, Warmup: durationpb.New(30_000 * time.Millisecond)}),
		PauseFleet("web", true),
		PauseFleet("web", false),
		RegisterInstance(&shoalv1.Instance{Id: "i-1", Fleet: "web", PrivateIp: "10.1.0.5", AvailabilityZone: "us-east-1a"}),
		SetInstanceState("i-1", shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE),
		RegisterInstance(&shoalv1.Instance{Id: "i-2", Fleet: "web", PrivateIp: "10.1.0.6"}),
		InstanceLeave("i-2"),
		CreateDecision(d),
		UpdateDecision(1, shoalv1.DecisionStatus_DECISION_STATUS_APPLIED, "", 0),
		SetWatermark("cloudwatch/web", 1_700_000_060_000),
		DeleteFleet("old"),
		SetMember(Member{ID: "n2", RaftAddr: "10.0.0.2:7300", RPCAddr: "10.0.0.2:7400"}),
		RemoveMember("n2"),
	}
}

// TestGolden pins the version-1 encodings. A later release must still apply
// testdata/v1-commands.jsonl and restore testdata/v1-snapshot.json to the
// same state: that is what a rolling upgrade reads from the previous
// release. Run with -update only when adding a new version's files.
func TestGolden(t *testing.T) {
	_, got, want := replayGolden(t, "v1", goldenCommands())
	// Restore the golden snapshot and re-save: it must read back to the same
	// state the commands built.
	r := New()
	if err := r.Restore(nopCloser{bytes.NewReader(want)}); err != nil {
		t.Fatal(err)
	}
	if again := r.Save(); !bytes.Equal(again, got) {
		t.Fatalf("state from v1 commands differs from v1 snapshot:\ncommands: %s\nsnapshot: %s", got, again)
	}
	fl, err := r.Fleet("web")
	if err != nil || fl.Desired != 3 || fl.Max != 8 || fl.Policy.GetWarmup().AsDuration() != 30*time.Second {
		t.Fatalf("web after golden = %v, %v", fl, err)
	}
	// Written before policies had a sustain: it reads as 0, the rule off.
	if bytes.Contains(want, []byte("sustain")) || fl.Policy.GetSustain() != 0 {
		t.Fatalf("v1 snapshot policy = %v, want sustain 0 (the field absent)", fl.Policy)
	}
}

// goldenSustainCommands set a policy with sustain both ways a policy
// reaches the log: with the fleet and on its own.
func goldenSustainCommands() []Command {
	tt := []*shoalv1.TargetTracking{{Metric: "cpu", Target: 60, Tolerance: 0.05}}
	return []Command{
		CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "web-asg", Min: 2, Max: 60, Desired: 7,
			Policy: &shoalv1.ScalingPolicy{TargetTracking: tt, Warmup: durationpb.New(30 * time.Second), Sustain: 0.02}}),
		CreateFleet(&shoalv1.Fleet{Name: "api", Asg: "api-asg", Max: 4}),
		SetPolicy("api", &shoalv1.ScalingPolicy{TargetTracking: tt, Sustain: 0.5}),
	}
}

// TestGoldenSustain pins ScalingPolicy.sustain in the version-1 commands
// (a new field, not a new op: a node that predates it ignores it) and in
// the snapshot, and that both read back.
func TestGoldenSustain(t *testing.T) {
	m, got, want := replayGolden(t, "v1-sustain", goldenSustainCommands())
	if !bytes.Equal(got, want) {
		t.Fatalf("state from sustain commands differs from the golden snapshot:\ncommands: %s\nsnapshot: %s", got, want)
	}
	for _, c := range goldenSustainCommands() {
		if c.Version != 1 {
			t.Errorf("%s written as version %d, want 1", c.Op, c.Version)
		}
	}
	r := New()
	if err := r.Restore(nopCloser{bytes.NewReader(want)}); err != nil {
		t.Fatal(err)
	}
	for _, fm := range []*FSM{m, r} {
		web, _ := fm.Fleet("web")
		api, _ := fm.Fleet("api")
		if web.GetPolicy().GetSustain() != 0.02 || api.GetPolicy().GetSustain() != 0.5 {
			t.Fatalf("sustain: web %v, api %v; want 0.02 and 0.5", web.GetPolicy(), api.GetPolicy())
		}
	}
	if again := r.Save(); !bytes.Equal(again, got) {
		t.Fatal("snapshot does not read back to the same state")
	}
}

// replayGolden pins the encodings of cmds under testdata/<name>-commands.jsonl
// and the state they build under testdata/<name>-snapshot.json (both
// rewritten with -update). It applies the stored commands to a new FSM and
// returns it with its saved state and the stored snapshot.
func replayGolden(t *testing.T, name string, cmds []Command) (m *FSM, got, want []byte) {
	t.Helper()
	cmdPath, snapPath := filepath.Join("testdata", name+"-commands.jsonl"), filepath.Join("testdata", name+"-snapshot.json")
	if *update {
		var buf bytes.Buffer
		for i, c := range cmds {
			b, err := Stamp(c.Encode(), time.UnixMilli(1_700_000_000_000+int64(i)*1000))
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(b)
			buf.WriteByte('\n')
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cmdPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(cmdPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m = New()
	sc := bufio.NewScanner(f)
	idx := uint64(0)
	for sc.Scan() {
		idx++
		if r := m.ApplyBytes(idx, sc.Bytes()); r.Error() != nil {
			t.Fatalf("line %d: %v", idx, r.Error())
		}
	}
	if idx != uint64(len(cmds)) {
		t.Fatalf("applied %d golden commands, want %d", idx, len(cmds))
	}
	got = m.Save()
	if *update {
		if err := os.WriteFile(snapPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err = os.ReadFile(snapPath)
	if err != nil {
		t.Fatal(err)
	}
	return m, got, want
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

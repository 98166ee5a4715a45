package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func yes() *bool { b := true; return &b }

func goldenSpotCommands() []Command {
	return []Command{
		CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "web-asg", Min: 1, Max: 6, Desired: 2, AppPort: 8080}),
		RegisterInstance(&shoalv1.Instance{Id: "i-1", Fleet: "web", PrivateIp: "10.1.0.5"}),
		SetInstanceState("i-1", shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE),
		RegisterInstance(&shoalv1.Instance{Id: "i-2", Fleet: "web", PrivateIp: "10.1.0.6"}),
		RegisterInstance(&shoalv1.Instance{Id: "i-3", Fleet: "web"}),
		MarkInstance(Mark{ID: "i-2", AtRisk: yes()}),
		MarkInstance(Mark{ID: "i-3", Warm: yes()}),
		MarkInstance(Mark{ID: "i-1", InterruptionAction: "terminate", InterruptionMS: 1_700_000_120_000,
			Drain: true, Reason: "spot interruption at 2023-11-14T22:15:20Z", DrainDeadlineMS: 1_700_000_105_000}),
		CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 1, Capacity: 2, Source: SourceSpot,
			Reason: "replace i-1: spot interruption at 2023-11-14T22:15:20Z", Actor: "n1"}),
		// A late registration (the agent's reconcile) keeps the marks.
		RegisterInstance(&shoalv1.Instance{Id: "i-1", Fleet: "web", PrivateIp: "10.1.0.5", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE}),
	}
}

// TestGoldenSpot pins the version-2 encoding of OpInstanceMark next to the
// version-1 commands it works with, and the state they build.
func TestGoldenSpot(t *testing.T) {
	m, got, want := replayGolden(t, "v2-spot", goldenSpotCommands())
	if !bytes.Equal(got, want) {
		t.Fatalf("state from spot commands differs from the golden snapshot:\ncommands: %s\nsnapshot: %s", got, want)
	}
	i1, err := m.Instance("i-1")
	if err != nil {
		t.Fatal(err)
	}
	if i1.State != shoalv1.InstanceState_INSTANCE_STATE_DRAINING || i1.InterruptionAction != "terminate" ||
		i1.GetInterruptionTime().AsTime().UnixMilli() != 1_700_000_120_000 || i1.GetDrainDeadline().AsTime().UnixMilli() != 1_700_000_105_000 ||
		i1.StateReason != "spot interruption at 2023-11-14T22:15:20Z" {
		t.Fatalf("i-1 after golden = %v", i1)
	}
	if i2, _ := m.Instance("i-2"); !i2.AtRisk {
		t.Fatalf("i-2 not at risk: %v", i2)
	}
	if i3, _ := m.Instance("i-3"); !i3.Warm {
		t.Fatalf("i-3 not warm: %v", i3)
	}
	r := New()
	if err := r.Restore(nopCloser{bytes.NewReader(want)}); err != nil {
		t.Fatal(err)
	}
	if again := r.Save(); !bytes.Equal(again, got) {
		t.Fatal("snapshot does not read back to the same state")
	}
}

// Only the new op carries version 2: a version-1 reader keeps applying the
// rest while a newer leader writes them.
func TestMarkIsVersion2AndTheRestVersion1(t *testing.T) {
	if v := MarkInstance(Mark{ID: "i-1"}).Version; v != 2 {
		t.Errorf("mark version %d, want 2", v)
	}
	for _, c := range goldenCommands() {
		if c.Version != 1 {
			t.Errorf("%s written as version %d, want 1", c.Op, c.Version)
		}
	}
	b, _ := json.Marshal(Command{Version: CommandVersion + 1, Op: OpInstanceMark})
	if _, err := Decode(b); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("version %d decoded: %v", CommandVersion+1, err)
	}
}

func TestMarkRefusals(t *testing.T) {
	f := seed(t)
	mustApply(t, f, RegisterInstance(&shoalv1.Instance{Id: "i-1", Fleet: "web"}))
	mustApply(t, f, RegisterInstance(&shoalv1.Instance{Id: "i-2", Fleet: "web"}))
	mustApply(t, f, SetInstanceState("i-2", shoalv1.InstanceState_INSTANCE_STATE_TERMINATED))
	cases := []struct {
		name string
		m    Mark
		want error
	}{
		{"unknown instance", Mark{ID: "i-9", AtRisk: yes()}, ErrNotFound},
		{"bad id", Mark{ID: "web-1"}, ErrInvalid},
		{"action without time", Mark{ID: "i-1", InterruptionAction: "terminate"}, ErrInvalid},
		{"unknown action", Mark{ID: "i-1", InterruptionAction: "explode", InterruptionMS: 1}, ErrInvalid},
		{"reason without drain", Mark{ID: "i-1", Reason: "x"}, ErrInvalid},
		{"terminated cannot drain", Mark{ID: "i-2", Drain: true, Reason: "x"}, ErrConflict},
		{"reason too long", Mark{ID: "i-1", Drain: true, Reason: string(bytes.Repeat([]byte("x"), MaxTextLen+1))}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := apply(t, f, MarkInstance(tc.m)).Error()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	in, _ := f.Instance("i-1")
	if in.State != shoalv1.InstanceState_INSTANCE_STATE_PENDING || in.StateReason != "" || in.AtRisk {
		t.Fatalf("refused marks changed i-1: %v", in)
	}
}

func TestMarkDrainKeepsStateChangeTimeAndRegistrationCannotClearMarks(t *testing.T) {
	f := seed(t)
	mustApply(t, f, RegisterInstance(&shoalv1.Instance{Id: "i-1", Fleet: "web"}))
	b, _ := Stamp(MarkInstance(Mark{ID: "i-1", Drain: true, Reason: "rebalance recommendation", AtRisk: yes()}).Encode(), time.UnixMilli(1_700_000_050_000))
	if r := f.ApplyBytes(f.LastApplied()+1, b); r.Error() != nil {
		t.Fatal(r.Error())
	}
	// A registration body cannot set marks, nor undo them or the drain.
	mustApply(t, f, RegisterInstance(&shoalv1.Instance{Id: "i-1", Fleet: "web", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, AtRisk: false, StateReason: "forged"}))
	in, _ := f.Instance("i-1")
	if in.State != shoalv1.InstanceState_INSTANCE_STATE_DRAINING || !in.AtRisk || in.StateReason != "rebalance recommendation" ||
		in.GetStateChangeTime().AsTime().UnixMilli() != 1_700_000_050_000 {
		t.Fatalf("i-1 = %v", in)
	}
	mustApply(t, f, RegisterInstance(&shoalv1.Instance{Id: "i-5", Fleet: "web", Warm: true, StateReason: "forged"}))
	if in, _ := f.Instance("i-5"); in.Warm || in.StateReason != "" {
		t.Fatalf("a registration set marks: %v", in)
	}
}

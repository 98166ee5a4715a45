package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func goldenLaunchCommands() []Command {
	return []Command{
		CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "web-asg", Min: 1, Max: 6, Desired: 2}),
		CreateFleet(&shoalv1.Fleet{Name: "old", Asg: "old-asg", Max: 1}),
		RecordLaunch(LaunchSample{Fleet: "web", Kind: LaunchCold, DurationMS: 40_000}),
		RecordLaunch(LaunchSample{Fleet: "web", Kind: LaunchCold, DurationMS: 50_000}),
		RecordLaunch(LaunchSample{Fleet: "web", Kind: LaunchWarm, DurationMS: 8_000}),
		RecordLaunch(LaunchSample{Fleet: "old", Kind: LaunchCold, DurationMS: 1_000}),
		// A deleted fleet's samples go with it.
		DeleteFleet("old"),
	}
}

// TestGoldenLaunch pins the version-3 encoding of OpLaunchSample and the
// snapshot it builds, and that the snapshot reads back.
func TestGoldenLaunch(t *testing.T) {
	m, got, want := replayGolden(t, "v3-launch", goldenLaunchCommands())
	if !bytes.Equal(got, want) {
		t.Fatalf("state from launch commands differs from the golden snapshot:\ncommands: %s\nsnapshot: %s", got, want)
	}
	r := New()
	if err := r.Restore(nopCloser{bytes.NewReader(want)}); err != nil {
		t.Fatal(err)
	}
	for _, fm := range []*FSM{m, r} {
		web := fm.LaunchSamples("web")
		if !slices.Equal(web[LaunchCold], []time.Duration{40 * time.Second, 50 * time.Second}) ||
			!slices.Equal(web[LaunchWarm], []time.Duration{8 * time.Second}) || len(web) != 2 {
			t.Fatalf("web samples = %v", web)
		}
		if old := fm.LaunchSamples("old"); old != nil {
			t.Fatalf("deleted fleet's samples = %v", old)
		}
	}
	if again := r.Save(); !bytes.Equal(again, got) {
		t.Fatal("snapshot does not read back to the same state")
	}
	if err := CheckSnapshot(want); err != nil {
		t.Fatalf("golden snapshot refused by the restore check: %v", err)
	}
}

// Only the new op carries version 3; the ops before it keep theirs.
func TestLaunchIsVersion3(t *testing.T) {
	if v := RecordLaunch(LaunchSample{}).Version; v != 3 {
		t.Errorf("launch sample version %d, want 3", v)
	}
	if v := MarkInstance(Mark{}).Version; v != 2 {
		t.Errorf("mark version %d, want 2", v)
	}
	for _, c := range goldenLaunchCommands() {
		if want := map[bool]int{true: 3, false: 1}[c.Op == OpLaunchSample]; c.Version != want {
			t.Errorf("%s written as version %d, want %d", c.Op, c.Version, want)
		}
	}
}

// Snapshots written before launch samples were replicated restore with
// none, by both restore paths, and re-save byte-identical.
func TestOldSnapshotsRestoreWithoutLaunchSamples(t *testing.T) {
	for _, name := range []string{"v1-snapshot.json", "v1-sustain-snapshot.json", "v2-spot-snapshot.json"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("launch_samples")) {
				t.Fatalf("%s already has launch samples", name)
			}
			r := New()
			if err := r.Restore(nopCloser{bytes.NewReader(b)}); err != nil {
				t.Fatal(err)
			}
			if got := r.LaunchSamples("web"); got != nil {
				t.Fatalf("samples = %v, want none", got)
			}
			if !bytes.Equal(r.Save(), b) {
				t.Fatal("old snapshot re-saves differently")
			}
			m := New()
			mustApply(t, m, Restore(b))
			if got := m.LaunchSamples("web"); got != nil {
				t.Fatalf("samples after the restore command = %v, want none", got)
			}
			// And the fleet learns from there.
			mustApply(t, m, RecordLaunch(LaunchSample{Fleet: "web", Kind: LaunchCold, DurationMS: 3_000}))
			if got := m.LaunchSamples("web")[LaunchCold]; !slices.Equal(got, []time.Duration{3 * time.Second}) {
				t.Fatalf("samples after one = %v", got)
			}
		})
	}
}

func TestLaunchSamplesKeepTheNewest50PerKind(t *testing.T) {
	f := seed(t)
	for i := 1; i <= MaxLaunchSamples+7; i++ {
		mustApply(t, f, RecordLaunch(LaunchSample{Fleet: "web", Kind: LaunchCold, DurationMS: int64(i) * 1000}))
	}
	mustApply(t, f, RecordLaunch(LaunchSample{Fleet: "web", Kind: LaunchWarm, DurationMS: 900}))
	mustApply(t, f, RecordLaunch(LaunchSample{Fleet: "api", Kind: LaunchCold, DurationMS: 1}))
	got := f.LaunchSamples("web")
	cold := got[LaunchCold]
	if len(cold) != MaxLaunchSamples || cold[0] != 8*time.Second || cold[len(cold)-1] != (MaxLaunchSamples+7)*time.Second {
		t.Fatalf("cold = %d samples, %v .. %v; want the newest %d, 8s .. 57s", len(cold), cold[0], cold[len(cold)-1], MaxLaunchSamples)
	}
	if !slices.Equal(got[LaunchWarm], []time.Duration{900 * time.Millisecond}) {
		t.Fatalf("warm = %v", got[LaunchWarm])
	}
	if api := f.LaunchSamples("api"); !slices.Equal(api[LaunchCold], []time.Duration{time.Millisecond}) || len(api) != 1 {
		t.Fatalf("api = %v", api)
	}
	// A caller's copy is its own.
	cold[0] = 0
	if f.LaunchSamples("web")[LaunchCold][0] != 8*time.Second {
		t.Fatal("LaunchSamples returned the state's own slice")
	}
	// Round trip through both snapshot paths.
	snap := f.Save()
	if err := CheckSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.Restore(nopCloser{bytes.NewReader(snap)}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Save(), snap) || len(r.LaunchSamples("web")[LaunchCold]) != MaxLaunchSamples {
		t.Fatal("launch samples do not survive a snapshot")
	}
	// Deleting a fleet takes its samples; a new fleet of that name starts
	// with none.
	mustApply(t, f, DeleteFleet("web"))
	mustApply(t, f, CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "web-asg", Max: 2}))
	if got := f.LaunchSamples("web"); got != nil {
		t.Fatalf("recreated fleet inherits %v", got)
	}
	if bytes.Contains(f.Save(), []byte(`"fleet":"web"`)) {
		t.Fatal("snapshot still holds the deleted fleet's samples")
	}
}

func TestLaunchSampleRefusals(t *testing.T) {
	f := seed(t)
	cases := []struct {
		name  string
		s     LaunchSample
		want  error
		field string
	}{
		{"no fleet", LaunchSample{Kind: LaunchCold, DurationMS: 1000}, ErrInvalid, "fleet: required"},
		{"unknown fleet", LaunchSample{Fleet: "nope", Kind: LaunchCold, DurationMS: 1000}, ErrNotFound, `fleet "nope"`},
		{"no kind", LaunchSample{Fleet: "web", DurationMS: 1000}, ErrInvalid, "kind"},
		{"unknown kind", LaunchSample{Fleet: "web", Kind: "lukewarm", DurationMS: 1000}, ErrInvalid, `kind ("lukewarm")`},
		{"zero duration", LaunchSample{Fleet: "web", Kind: LaunchWarm}, ErrInvalid, "duration_ms (0)"},
		{"negative duration", LaunchSample{Fleet: "web", Kind: LaunchWarm, DurationMS: -5}, ErrInvalid, "duration_ms (-5)"},
		{"over an hour", LaunchSample{Fleet: "web", Kind: LaunchCold, DurationMS: time.Hour.Milliseconds() + 1}, ErrInvalid, "duration_ms (3600001)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := apply(t, f, RecordLaunch(tc.s)).Error()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want %v naming %q", err, tc.want, tc.field)
			}
		})
	}
	body, _ := json.Marshal(Command{Version: launchVersion, Op: OpLaunchSample, Body: []byte(`{"fleet":"web","kind":"cold","duration_ms":"soon"}`)})
	if r := f.ApplyBytes(f.LastApplied()+1, body); !errors.Is(r.Error(), ErrInvalid) {
		t.Fatalf("bad body: %v", r.Error())
	}
	// The boundary itself is accepted.
	mustApply(t, f, RecordLaunch(LaunchSample{Fleet: "web", Kind: LaunchCold, DurationMS: time.Hour.Milliseconds()}))
	if got := f.LaunchSamples("web"); len(got) != 1 || len(got[LaunchCold]) != 1 {
		t.Fatalf("after refusals and one good sample: %v", got)
	}
}

// The restore command refuses a snapshot whose samples a command could
// not have recorded.
func TestCheckSnapshotLaunchSamples(t *testing.T) {
	f := seed(t)
	mustApply(t, f, RecordLaunch(LaunchSample{Fleet: "web", Kind: LaunchCold, DurationMS: 1000}))
	good := f.Save()
	tooMany := make([]int64, MaxLaunchSamples+1)
	for i := range tooMany {
		tooMany[i] = 1000
	}
	cases := []struct {
		name string
		ws   []wireLaunches
		want string
	}{
		{"unknown fleet", []wireLaunches{{Fleet: "gone", Kind: LaunchCold, MS: []int64{1}}}, `fleet "gone" is not in the snapshot`},
		{"bad kind", []wireLaunches{{Fleet: "web", Kind: "tepid", MS: []int64{1}}}, `kind ("tepid")`},
		{"bad duration", []wireLaunches{{Fleet: "web", Kind: LaunchCold, MS: []int64{0}}}, "duration_ms (0)"},
		{"too many", []wireLaunches{{Fleet: "web", Kind: LaunchCold, MS: tooMany}}, "51 samples"},
		{"empty", []wireLaunches{{Fleet: "web", Kind: LaunchCold}}, "0 samples"},
		{"twice", []wireLaunches{{Fleet: "web", Kind: LaunchCold, MS: []int64{1}}, {Fleet: "web", Kind: LaunchCold, MS: []int64{2}}}, "listed twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w map[string]any
			if err := json.Unmarshal(good, &w); err != nil {
				t.Fatal(err)
			}
			w["launch_samples"] = tc.ws
			b, _ := json.Marshal(w)
			err := CheckSnapshot(b)
			if err == nil || !strings.Contains(err.Error(), "launch_samples[") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want launch_samples[…] %s", err, tc.want)
			}
			before := f.Save()
			if r := apply(t, f, Restore(b)); r.Error() == nil {
				t.Fatal("the restore command accepted it")
			}
			if !bytes.Equal(f.Save(), before) {
				t.Fatal("a refused restore changed the state")
			}
		})
	}
}

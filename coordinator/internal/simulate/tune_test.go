package simulate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
)

// schedule changes capacity only on multiples of 10 s, so deciding every
// 10 s must give exactly the per-second run.
type schedule struct{}

func (schedule) Name() string { return "schedule" }
func (schedule) Step(o *Observation) (int32, error) {
	if o.Now%10 != 0 {
		return o.Desired, nil
	}
	return []int32{2, 6, 6, 1, 4, 9, 3}[o.Now/10%7], nil
}

func TestTickFillsTheSecondsBetween(t *testing.T) {
	tr := flat(400, 300)
	base := Setup{Fleet: fleetWith(1, 20, 3, cpu60()), Config: DefaultConfig()}
	base.Config.LaunchDelay, base.Config.Drain = 7e9, 13e9 // 7 s and 13 s: not multiples of the tick
	target, err := targetOf(base.Fleet.Policy, base.Config)
	if err != nil {
		t.Fatal(err)
	}
	want, err := runOne(0, tr.Seconds(), base, target, schedule{})
	if err != nil {
		t.Fatal(err)
	}
	base.Tick = 10
	got, err := runOne(0, tr.Seconds(), base, target, schedule{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tick 10 differs from tick 1:\nsupply %v\nwant   %v\nbilled %v\nwant   %v", got.Supply[:80], want.Supply[:80], got.Billed[:80], want.Billed[:80])
	}
}

func TestTraceTick(t *testing.T) {
	for _, c := range []struct {
		tr   Trace
		want int64
	}{
		{Trace{{0, 1}, {1, 2}}, 1},
		{Trace{{0, 1}, {60, 2}, {120, 3}}, 60},
		{Trace{{0, 1}, {600, 2}}, 60},
		{Trace{{0, 1}, {20, 2}, {50, 3}}, 10},
		{Trace{{0, 1}}, 1},
	} {
		if got := traceTick(c.tr); got != c.want {
			t.Errorf("traceTick(%v) = %d, want %d", c.tr, got, c.want)
		}
	}
}

func TestParetoAndCheapest(t *testing.T) {
	cs := []Candidate{
		{TimeshareU: 0.3, InstanceHours: 5, CostRatio: 0.5},
		{TimeshareU: 0.1, InstanceHours: 9, CostRatio: 0.9},
		{TimeshareU: 0.2, InstanceHours: 9.5, CostRatio: 0.95}, // dominated by the 9-hour one
		{TimeshareU: 0.05, InstanceHours: 12, CostRatio: 1.2},
		{TimeshareU: 0.4, InstanceHours: 6, CostRatio: 0.6}, // dominated by the 5-hour one
	}
	front := Pareto(cs)
	var hours []float64
	for _, c := range front {
		hours = append(hours, c.InstanceHours)
	}
	if !reflect.DeepEqual(hours, []float64{5, 9, 12}) {
		t.Fatalf("front hours = %v, want [5 9 12]", hours)
	}
	if c, err := Cheapest(front, 0.15); err != nil || c.InstanceHours != 9 {
		t.Fatalf("Cheapest(0.15) = %+v, %v; want the 9-hour one", c, err)
	}
	if _, err := Cheapest(front, 0.01); err == nil || !strings.Contains(err.Error(), "the lowest found is 0.050") {
		t.Fatalf("Cheapest(0.01) err = %v", err)
	}
}

// TestTuneCommand tunes on a short step trace and writes a policy that
// `policy set --file` reads (view.Policy, strict).
func TestTuneCommand(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "t.csv")
	writeFile(t, trace, "time,demand\n0,300\n300,900\n600,300\n900,300\n")
	out := filepath.Join(dir, "p.json")
	got, err := runCommand(t, "--tune", "--trace", trace, "--policy", examplePolicy, "--max-timeshare-u", "0.5", "--write-policy", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "Pareto front of 252 candidates on 1 trace(s)") || !strings.Contains(got, "wrote "+out) {
		t.Fatalf("output:\n%s", got)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var p view.Policy
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("written policy is not view.Policy: %v\n%s", err, b)
	}
	if _, err := p.Proto(); err != nil || len(p.TargetTracking) != 1 {
		t.Fatalf("written policy: %v\n%s", err, b)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tune", "--trace", trace, "--policy", examplePolicy, "--write-policy", out}, "--write-policy: needs --max-timeshare-u"},
		{[]string{"--tune", "--trace", trace, "--policy", examplePolicy, "--max-timeshare-u", "2"}, "--max-timeshare-u: must be in (0, 1]"},
		{[]string{"--trace", trace, "--trace", trace, "--policy", examplePolicy}, "several only with --tune"},
		{[]string{"--trace", trace, "--policy", examplePolicy, "--max-timeshare-u", "0.1"}, "only with --tune"},
	} {
		if _, err := runCommand(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
	}
}

// TestTuneWritesSustain: on short bursts the tuner's pick has a sustain,
// --write-policy writes it into the policy, and simulating that policy
// alone (no --sustain) reproduces the pick's score.
func TestTuneWritesSustain(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "bursts.csv")
	// 5 s bursts to three times the demand, once a minute: over before
	// anything launched for them could serve.
	var b strings.Builder
	b.WriteString("time,demand\n")
	for m := 0; m < 20; m++ {
		fmt.Fprintf(&b, "%d,300\n%d,900\n%d,300\n", m*60, m*60+30, m*60+35)
	}
	b.WriteString("1200,300\n")
	writeFile(t, trace, b.String())
	out := filepath.Join(dir, "p.json")
	got, err := runCommand(t, "--tune", "--trace", trace, "--policy", examplePolicy, "--max-timeshare-u", "0.5", "--write-policy", out)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`cheapest with timeshare_u below 0.5: timeshare_u ([0-9.]+), ([0-9.]+) instance-hours, sustain ([0-9.e-]+)`).FindStringSubmatch(got)
	if m == nil || strings.Contains(got, "not a policy field") {
		t.Fatalf("output:\n%s", got)
	}
	pb, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var p view.Policy
	if err := json.Unmarshal(pb, &p); err != nil {
		t.Fatal(err)
	}
	if p.Sustain == 0 || fmt.Sprintf("%.2g", p.Sustain) != m[3] {
		t.Fatalf("written sustain %v, printed %s; want the same, and not 0 on bursts shorter than the launch delay\n%s", p.Sustain, m[3], pb)
	}

	// The written policy in the example fleet, simulated as it is.
	fb, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	var f view.Fleet
	if err := json.Unmarshal(fb, &f); err != nil {
		t.Fatal(err)
	}
	f.Policy = &p
	fb, _ = json.Marshal(f)
	fleetPath := filepath.Join(dir, "fleet.json")
	writeFile(t, fleetPath, string(fb))
	sim, err := runCommand(t, "--trace", trace, "--policy", fleetPath, "--compare", "", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []Score
	if err := json.Unmarshal([]byte(sim), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("%v:\n%s", err, sim)
	}
	if u, h := fmt.Sprintf("%.3f", rows[0].TimeshareU), fmt.Sprintf("%.2f", rows[0].InstanceHours); u != m[1] || h != m[2] {
		t.Fatalf("simulating the written policy: timeshare_u %s, %s instance-hours; the tuner said %s, %s", u, h, m[1], m[2])
	}
}

// TestCandidatesKeepThePolicysSustain: the grid's sustains plus the
// policy's own, when it is not on the grid.
func TestCandidatesKeepThePolicysSustain(t *testing.T) {
	count := func(sustain float64) (all, own int) {
		p := cpu60()
		p.Sustain = sustain
		cs, err := candidates(p, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Policy.Sustain == sustain {
				own++
			}
		}
		return len(cs), own
	}
	onGrid, _ := count(0.02)
	all, own := count(0.07)
	if onGrid != 252 || all != 252/7*8 || own != 252/7 {
		t.Fatalf("candidates: %d with sustain 0.02 (want 252), %d with 0.07 (want %d), %d of them at 0.07 (want %d)", onGrid, all, 252/7*8, own, 252/7)
	}
	// --sustain stands in for the policy's own.
	cfg := DefaultConfig()
	x := 0.09
	cfg.Sustain = &x
	cs, err := candidates(cpu60(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.Policy.Sustain == x {
			n++
		}
	}
	if len(cs) != 252/7*8 || n != 252/7 {
		t.Fatalf("with --sustain 0.09: %d candidates, %d at 0.09; want %d and %d", len(cs), n, 252/7*8, 252/7)
	}
}

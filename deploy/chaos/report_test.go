package chaos

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReportJSONHasExactlyTheNamedFields(t *testing.T) {
	r := goodRecords()
	r.Seed = 42
	invs := Check(r)
	dir := t.TempDir()
	if err := WriteReport(dir, r, NewReport(r, invs)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if got := keys(top); !slices.Equal(got, []string{"faults", "invariants", "requests", "seed"}) {
		t.Fatalf("report.json fields %v", got)
	}
	var rep struct {
		Seed       uint64                       `json:"seed"`
		Faults     []map[string]json.RawMessage `json:"faults"`
		Invariants []map[string]json.RawMessage `json:"invariants"`
		Requests   map[string]int               `json:"requests"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Seed != 42 || len(rep.Faults) != 1 || len(rep.Invariants) != 7 {
		t.Fatalf("report %s", b)
	}
	if got := keys(rep.Faults[0]); !slices.Equal(got, []string{"end_s", "kind", "start_s", "target"}) {
		t.Fatalf("fault fields %v", got)
	}
	if got := keys(rep.Invariants[0]); !slices.Equal(got, []string{"counterexamples", "name", "ok"}) {
		t.Fatalf("invariant fields %v", got)
	}
	if rep.Requests["total"] != 3 || rep.Requests["failed"] != 1 || len(rep.Requests) != 2 {
		t.Fatalf("requests %v", rep.Requests)
	}
	// records.json reads back into the checker's input.
	rb, err := os.ReadFile(filepath.Join(dir, "records.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Records
	if err := json.Unmarshal(rb, &back); err != nil {
		t.Fatal(err)
	}
	if got := Check(&back); len(Failed(got)) != 0 {
		t.Fatalf("records.json re-checked: %v", Failed(got))
	}
	svg, err := os.ReadFile(filepath.Join(dir, "timeline.svg"))
	if err != nil {
		t.Fatal(err)
	}
	// The kill window (21–25 s) is shaded in the kill colour on each panel.
	if n := strings.Count(string(svg), `fill="`+faultColors[KindKill]+`"`); n != 3+1 { // 3 panels + legend
		t.Fatalf("kill shading appears %d times", n)
	}
	if !strings.Contains(string(svg), "kill leader n1") {
		t.Fatal("the kill window is not labelled")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestFixedScriptRunsEachKindOnceInOrder(t *testing.T) {
	s := FixedScript()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, st := range s.Steps {
		kinds = append(kinds, st.Kind)
	}
	if !slices.Equal(kinds, Kinds) {
		t.Fatalf("kinds %v, want %v", kinds, Kinds)
	}
	if end := s.End() + s.Settle; end > 90*time.Second {
		t.Fatalf("the fixed script needs %s of load; the e2e budget is 150 s with start-up", end)
	}
	for _, st := range s.Steps {
		if st.Kind == KindPause && st.For <= 400*time.Millisecond {
			t.Fatalf("pause of %s does not outlast the 400ms election timeout", st.For)
		}
	}
}

func TestSeededScriptIsReproducibleAndValid(t *testing.T) {
	a, b := SeededScript(7, 10*time.Minute), SeededScript(7, 10*time.Minute)
	if !slices.Equal(a.Steps, b.Steps) || !slices.Equal(a.Spikes, b.Spikes) {
		t.Fatal("one seed drew two scripts")
	}
	if c := SeededScript(8, 10*time.Minute); slices.Equal(a.Steps, c.Steps) {
		t.Fatal("two seeds drew one script")
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if a.End() > 10*time.Minute || len(a.Steps) < 10 {
		t.Fatalf("%d steps ending at %s", len(a.Steps), a.End())
	}
	seen := map[string]bool{}
	for _, st := range SeededScript(1, 30*time.Minute).Steps {
		seen[st.Kind+"/"+st.Variant] = true
	}
	for k, vs := range Variants {
		for _, v := range vs {
			if !seen[k+"/"+v] {
				t.Errorf("30 minutes of seed 1 never drew %s/%s", k, v)
			}
		}
	}
}

func TestScriptValidateNamesTheBadStep(t *testing.T) {
	for _, s := range []Script{
		{Steps: []Step{{At: time.Second, For: time.Second, Kind: "flood", Variant: "x"}}},
		{Steps: []Step{{At: time.Second, For: time.Second, Kind: KindKill, Variant: "everyone"}}},
		{Steps: []Step{{At: time.Second, For: 0, Kind: KindKill, Variant: "leader"}}},
		{Steps: []Step{{At: time.Second, For: 5 * time.Second, Kind: KindKill, Variant: "leader"}, {At: 2 * time.Second, For: time.Second, Kind: KindPause, Variant: "leader"}}},
	} {
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "step") {
			t.Errorf("%+v: %v", s.Steps, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.BinDir = "/bin"
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, spoil := range map[string]func(*Config){
		"bin dir":  func(c *Config) { c.BinDir = "" },
		"nodes":    func(c *Config) { c.Nodes = 4 },
		"duration": func(c *Config) { c.Duration = time.Second },
		"load":     func(c *Config) { c.SpikeRPS = 1 },
	} {
		c := ok
		spoil(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	var c Config = ok
	if err := fromEnv(&c, func(k string) string {
		return map[string]string{"SEED": "9", "CHAOS_DURATION": "30m", "CHAOS_NODES": "5"}[k]
	}, func(string) bool { return false }); err != nil || c.Seed != 9 || c.Duration != 30*time.Minute || c.Nodes != 5 {
		t.Fatalf("fromEnv: %+v %v", c, err)
	}
	if err := fromEnv(&c, func(k string) string { return map[string]string{"CHAOS_NODES": "4"}[k] }, func(string) bool { return false }); err == nil {
		t.Fatal("CHAOS_NODES=4 accepted")
	}
}

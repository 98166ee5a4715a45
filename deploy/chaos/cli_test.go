package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMainRechecksRecords: --check re-runs the checker on a saved
// records.json; it exits 0 when every invariant holds, 1 when one breaks,
// 2 on a file that is not a run's records.
func TestMainRechecksRecords(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r any) string {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", goodRecords())
	bad := goodRecords()
	bad.FSM[1].Hash = "ff"
	badPath := write("bad.json", bad)
	junk := write("junk.json", map[string]int{"x": 1})
	for _, tc := range []struct {
		path string
		code int
		out  string
	}{
		{good, 0, "true fsm_hashes_equal"},
		{badPath, 1, "false fsm_hashes_equal n2"},
		{junk, 2, "t0_ms and max: required"},
	} {
		var out, errOut bytes.Buffer
		report := filepath.Join(dir, "report-"+filepath.Base(tc.path))
		code := Main(context.Background(), []string{"--check", tc.path, "--report-dir", report}, &out, &errOut, func(string) string { return "" })
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.out) {
			t.Errorf("%s: exit %d (want %d), output %q %q", filepath.Base(tc.path), code, tc.code, out.String(), errOut.String())
		}
		if tc.code != 2 {
			if _, err := os.Stat(filepath.Join(report, "report.json")); err != nil {
				t.Errorf("%s: %v", filepath.Base(tc.path), err)
			}
		}
	}
}

// TestAFlagWinsOverItsVariable: `SEED=7 shoal-chaos --seed 3` runs seed 3
// (the report names the seed it ran); a variable whose flag was not given
// still applies, and a bad one stops the run before anything starts.
func TestAFlagWinsOverItsVariable(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cfg := DefaultConfig()
	cfg.BinDir, cfg.Seed = "bin", 3
	if err := fromEnv(&cfg, env(map[string]string{"SEED": "7", "CHAOS_NODES": "5"}), func(f string) bool { return f == "seed" }); err != nil {
		t.Fatal(err)
	}
	if cfg.Seed != 3 || cfg.Nodes != 5 {
		t.Fatalf("seed %d, nodes %d: want --seed's 3 and CHAOS_NODES's 5", cfg.Seed, cfg.Nodes)
	}
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"--bin", t.TempDir()}, &out, &errOut, env(map[string]string{"CHAOS_NODES": "4"})); code != 2 || !strings.Contains(errOut.String(), "nodes (4)") {
		t.Errorf("CHAOS_NODES=4: exit %d, stderr %q", code, errOut.String())
	}
}

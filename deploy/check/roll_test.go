package check

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// rollFuncs is roll-coordinators.sh's helper functions, from status() to
// the end of whole(): the part that decides whether a node may go.
var rollFuncs = regexp.MustCompile(`(?s)status\(\) \{.*?\nwhole\(\) \{.*?\n\}\n`)

// TestRollWaitsForAWholeCluster runs the script's whole() against the
// `status -o json` a leader gives: a node that is down stays a voter, so
// counting voters alone would let the script replace a second node while
// the first is away and lose the quorum.
func TestRollWaitsForAWholeCluster(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("sh: %v (the script's checks need a POSIX shell)", err)
	}
	src := mustRead(t, filepath.Join(deployDir, "terraform", "roll-coordinators.sh"))
	funcs := rollFuncs.Find(src)
	if funcs == nil {
		t.Fatal("roll-coordinators.sh: no status() … whole() functions")
	}
	// The JSON of `status -o json` (coordinator/internal/view.Status).
	nodes := func(down string) []map[string]any {
		var out []map[string]any
		for _, id := range []string{"c-0", "c-1", "c-2"} {
			n := map[string]any{"id": id, "raft_addr": id + ":7300", "rpc_addr": id + ":7400", "role": "follower", "voter": true}
			if id == "c-0" {
				n["role"] = "leader"
			}
			if id == down {
				n["role"], n["unreachable_since"] = "unknown", "2026-12-07T12:00:00Z"
			}
			out = append(out, n)
		}
		return out
	}
	status := func(leader string, nodes []map[string]any) map[string]any {
		st := map[string]any{"leader_id": leader, "node_id": "c-1", "nodes": nodes, "applied_index": 7, "commit_index": 7, "term": 2, "insecure": false}
		if leader == "" {
			st["no_leader"], st["last_leader_id"] = "election in progress", "c-0"
		}
		return st
	}
	for name, c := range map[string]struct {
		st    map[string]any
		whole bool
	}{
		"three reachable voters": {status("c-0", nodes("")), true},
		"one voter down":         {status("c-0", nodes("c-2")), false},
		"no leader":              {status("", nodes("")), false},
		"two voters":             {status("c-0", nodes("")[:2]), false},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			js := filepath.Join(dir, "status.json")
			if err := os.WriteFile(js, printed(t, c.st), 0o600); err != nil {
				t.Fatal(err)
			}
			// A fake CLI that prints the status.
			fake := "#!/bin/sh\ncat " + js + "\n"
			if err := os.WriteFile(filepath.Join(dir, "shoal-coordinator"), []byte(fake), 0o755); err != nil {
				t.Fatal(err)
			}
			script := "count=3\n" + string(funcs) + "whole\n"
			cmd := exec.Command(sh, "-eu", "-c", script)
			cmd.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
			out, err := cmd.CombinedOutput()
			if got := err == nil; got != c.whole {
				t.Errorf("whole() = %v (%v: %s), want %v", got, err, out, c.whole)
			}
		})
	}
}

// printed is st as `status -o json` prints it (indented, one field a line).
func printed(t *testing.T, st map[string]any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

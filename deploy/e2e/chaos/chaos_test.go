//go:build multiprocess

package chaos

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/chaos"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// logWriter lets the run's progress lines reach t.Log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// TestFixedScript: each fault kind once, in chaos.Kinds order, fixed
// timing; every invariant holds, report.json names every fault and the
// whole run stays within 150 s.
func TestFixedScript(t *testing.T) {
	cfg := chaos.DefaultConfig()
	cfg.BinDir = testkit.BinDir(t)
	cfg.Fixed = true
	cfg.ReportDir = t.TempDir()
	cfg.Out = logWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	res, err := chaos.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("wall time %s, %d requests", res.Wall.Round(time.Second), res.Report.Requests.Total)
	for _, inv := range res.Invariants {
		if !inv.OK {
			t.Errorf("invariant %s broken: %v", inv.Name, inv.Counterexamples)
		}
	}
	if len(res.Invariants) != 7 {
		t.Errorf("%d invariants checked, want 7", len(res.Invariants))
	}
	var kinds []string
	for _, f := range res.Report.Faults {
		kinds = append(kinds, f.Kind)
		if f.EndS <= f.StartS {
			t.Errorf("fault %+v ends before it starts", f)
		}
	}
	if !slices.Equal(kinds, chaos.Kinds) {
		t.Errorf("faults ran %v, want each kind once: %v", kinds, chaos.Kinds)
	}
	// The checks had something to check: scaling happened through the
	// faults, the operator got answers, CloudWatch held periods, every
	// node's FSM was read.
	cov := res.Records.Coverage()
	if cov.Requests < 1000 || cov.AppliedSetDesired < 2 || cov.Decisions < 2 || cov.OpsOK < 10 || cov.Periods < 3 || cov.Nodes != 3 {
		t.Errorf("too little to check: %s", cov)
	}
	// Every link carried its traffic through its proxy: node to node
	// (raft through SHOAL_DIAL_MAP), agents, LB and operator to each node,
	// each node to the local cloud.
	if len(res.Links) != 3*2+3*3+3 {
		t.Errorf("%d links: %v", len(res.Links), res.Links)
	}
	// Every node-to-node, node-to-cloud and operator link was used; agents
	// and the LB follow one node at a time, so each only somewhere.
	clients := map[string]int{}
	for l, n := range res.Links {
		from, _, _ := strings.Cut(l, "→")
		if from == chaos.EndpointAgents || from == chaos.EndpointLB {
			clients[from] += n
			continue
		}
		if n == 0 {
			t.Errorf("link %s: no connection went through its proxy", l)
		}
	}
	for _, c := range []string{chaos.EndpointAgents, chaos.EndpointLB} {
		if clients[c] == 0 {
			t.Errorf("%s: no connection went through a proxy", c)
		}
	}
	// report.json carries exactly the fields scripts rely on.
	b, err := os.ReadFile(filepath.Join(cfg.ReportDir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"seed", "faults", "invariants", "requests"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("report.json lacks %q", k)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.ReportDir, "timeline.svg")); err != nil {
		t.Error(err)
	}
}

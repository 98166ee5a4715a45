//go:build multiprocess

package soak

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/soak"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// TestSoakShort runs `make soak`'s code for 45 s with one spike and a sample
// every 2 s, and checks the report: every kind of process (the local cloud,
// three coordinators, shoal-lb, each instance's demoapp and agent) was
// sampled with RSS and fds, goroutines were read wherever a process serves
// /metrics, slopes were computed for the processes that lived through the
// run, and no request failed.
func TestSoakShort(t *testing.T) {
	bin := testkit.BinDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	var out testkit.Buffer
	cfg := soak.DefaultConfig()
	cfg.BinDir, cfg.ReportDir, cfg.Out = bin, t.TempDir(), &out
	cfg.Duration, cfg.WarmUp, cfg.SampleEvery = 45*time.Second, 10*time.Second, 2*time.Second
	// One spike of 15 s after 25 s of baseline; 120 req/s is more than the
	// two instances hold at the target, so the fleet scales out meanwhile.
	cfg.SpikeEvery, cfg.SpikeFor, cfg.SpikeRPS = 40*time.Second, 15*time.Second, 120
	start := time.Now()
	rep, err := soak.Run(ctx, cfg)
	t.Logf("soak ran in %s\n%s", time.Since(start).Round(time.Second), out.String())
	if err != nil {
		t.Fatalf("soak: %v", err)
	}
	if rep.Requests.Failed != 0 || rep.Requests.Total < 40*25 {
		t.Fatalf("requests %+v: want 0 failed of at least %d", rep.Requests, 40*25)
	}
	if len(rep.LeaderChanges) == 0 || rep.LeaderChanges[0].Leader == "" {
		t.Errorf("leader changes %+v: the leader the load began with was not recorded", rep.LeaderChanges)
	}
	if rep.Spikes != 1 {
		t.Errorf("%d spikes, want 1", rep.Spikes)
	}
	kinds := map[string]int{}
	slopes := 0
	for _, p := range rep.Processes {
		kind, _, _ := strings.Cut(p.Name, " ")
		kinds[kind]++
		for _, pt := range p.Points {
			if pt.RSS <= 0 || pt.FDs <= 0 {
				t.Errorf("%s: point %+v without RSS or fds", p.Name, pt)
			}
		}
		// Every process that serves /metrics had its goroutines read (an
		// instance sampled only as it booted may not listen yet).
		read := false
		for _, pt := range p.Points {
			read = read || pt.Goroutines > 0
		}
		if p.Exe != "shoal-localcloud" && p.Samples >= 3 && !read {
			t.Errorf("%s (%s): no goroutines read in %d samples", p.Name, p.Exe, p.Samples)
		}
		if p.FirstS < cfg.WarmUp.Seconds() && p.LastS > cfg.Duration.Seconds()-5 {
			// Lived through the whole run: every slope is there.
			if p.RSSSlope == nil || p.FDSlope == nil || (p.Exe != "shoal-localcloud" && p.GoSlope == nil) {
				t.Errorf("%s: slopes missing: rss %v fds %v goroutines %v", p.Name, p.RSSSlope, p.FDSlope, p.GoSlope)
			}
			slopes++
		}
	}
	want := map[string]int{"localcloud": 1, "coordinator": 3, "lb": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s processes sampled, want %d (%v)", kinds[k], k, n, kinds)
		}
	}
	// The golden instance's demoapp (its agent exits: it is in no group)
	// and at least the fleet's two instances.
	if kinds["demoapp"] < 3 || kinds["agent"] < 2 {
		t.Errorf("instances sampled: %d demoapp, %d agent; want at least 3 and 2 (%v)", kinds["demoapp"], kinds["agent"], kinds)
	}
	if slopes < 5+3+2 {
		t.Errorf("%d processes with slopes over the whole run, want at least 10", slopes)
	}
	var fromDisk soak.Report
	b, err := os.ReadFile(filepath.Join(cfg.ReportDir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fromDisk); err != nil || len(fromDisk.Processes) != len(rep.Processes) {
		t.Fatalf("report.json: %v, %d processes", err, len(fromDisk.Processes))
	}
	txt, err := os.ReadFile(filepath.Join(cfg.ReportDir, "report.txt"))
	if err != nil || !strings.Contains(string(txt), "coordinator n1") || !strings.Contains(string(txt), "MiB/h") {
		t.Fatalf("report.txt: %v\n%s", err, txt)
	}
}

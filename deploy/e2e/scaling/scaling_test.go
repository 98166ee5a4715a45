//go:build multiprocess

package scaling

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// decision is one element of `decisions FLEET -o json`.
type decision struct {
	ID     uint64 `json:"id"`
	From   int    `json:"from"`
	To     int    `json:"to"`
	Status string `json:"status"`
	Source string `json:"source"`
	Reason string `json:"reason"`
}

var summaryErrors = regexp.MustCompile(`summary requests=(\d+) ok=\d+ errors=(\d+)`)

// loadErrors parses a loadtest's summary line: requests and errors.
func loadErrors(t *testing.T, out string) (int, int) {
	t.Helper()
	m := summaryErrors.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in loadtest output:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	e, _ := strconv.Atoi(m[2])
	return n, e
}

// TestScaleOutCrashScaleIn runs the whole system on the local cloud: a
// 3-node cluster built with failpoints, agents in every instance, demoapp as
// the workload and shoal-lb in front. A load spike scales the group out;
// each leader that commits a decision dies at `scaler.after-commit`, before
// calling Auto Scaling, and the next leader must finish that decision
// exactly once. Then load falls and the group scales back in through drains
// with no failed request.
func TestScaleOutCrashScaleIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := sandbox.DefaultOptions()
	opts.BinDir, opts.CoordinatorBin, opts.Failpoint = testkit.BinDir(t), "shoal-coordinator-failpoints", "scaler.after-commit=exit"
	opts.BootDelay, opts.DrainTimeout, opts.EvalInterval = 500*time.Millisecond, 5*time.Second, 500*time.Millisecond
	opts.TerminateGrace = time.Second
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if _, err := sb.RunGolden(ctx, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Min: 2, Max: 6, ScaleInWindow: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.WaitInService(ctx, "web", 2, 45*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := sb.StartLB(ctx, "web"); err != nil {
		t.Fatal(err)
	}

	// Spike: 150 req/s against 2 × 50 req/s of capacity.
	var spikeOut bytes.Buffer
	spike, err := sb.Spawn("load-spike", "shoal-lb", []string{"loadtest", "--target", sb.LBURL + "/", "--rate", "150",
		"--duration", "20s", "--connections", "16", "--streams", "1", "--timeout", "5s", "--quiet"}, &spikeOut)
	if err != nil {
		t.Fatal(err)
	}
	spikeStart := time.Now()
	crashed := map[string]bool{}
	// Every node is armed until its first crash: each leader that commits
	// a decision dies before acting on it, at any phase of the test. Bring
	// crashed nodes back (unarmed) whenever the test waits.
	revive := func(ctx context.Context) error {
		for _, n := range sb.Nodes() {
			if !n.Alive() {
				crashed[n.ID] = true
				if err := sb.RestartNode(ctx, n); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err = sandbox.Poll(ctx, 90*time.Second, "scale-out through leader crashes", func(ctx context.Context) error {
		if err := revive(ctx); err != nil {
			return err
		}
		var ds []decision
		if err := sb.CLIJSON(ctx, &ds, "decisions", "web"); err != nil {
			return err
		}
		if len(ds) == 0 || ds[len(ds)-1].To < 4 {
			return errNotYet("no scale-out decision to 4 or more yet")
		}
		for _, d := range ds {
			if d.Status == "pending" {
				return errNotYet("decision still pending")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scaled out %v after the spike started; leaders crashed at the failpoint: %v", time.Since(spikeStart).Round(100*time.Millisecond), crashed)
	if len(crashed) == 0 {
		t.Fatal("no leader crashed at scaler.after-commit: the failpoint build was not exercised")
	}
	if err := spike.Wait(ctx); err != nil {
		t.Logf("spike load: %v", err)
	}

	// Load falls to 30 req/s: the fleet drains back to min while serving it.
	var lowOut bytes.Buffer
	low, err := sb.Spawn("load-low", "shoal-lb", []string{"loadtest", "--target", sb.LBURL + "/", "--rate", "30",
		"--duration", "35s", "--connections", "4", "--streams", "1", "--timeout", "5s", "--quiet"}, &lowOut)
	if err != nil {
		t.Fatal(err)
	}
	err = sandbox.Poll(ctx, 60*time.Second, "scale-in to 2 in service", func(ctx context.Context) error {
		if err := revive(ctx); err != nil {
			return err
		}
		var ins []sandbox.FleetInstance
		if err := sb.CLIJSON(ctx, &ins, "instances", "web"); err != nil {
			return err
		}
		states := map[string]int{}
		for _, in := range ins {
			states[in.State]++
		}
		if len(ins) != 2 || states["in_service"] != 2 {
			return errNotYet(fmt.Sprintf("instances by state: %v", states))
		}
		var ds []decision
		if err := sb.CLIJSON(ctx, &ds, "decisions", "web"); err != nil {
			return err
		}
		if len(ds) == 0 || ds[len(ds)-1].To != 2 || ds[len(ds)-1].Status == "pending" {
			return errNotYet("no settled decision to 2 yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := low.Wait(ctx); err != nil {
		t.Fatalf("low load: %v\n%s", err, lowOut.String())
	}
	if n, e := loadErrors(t, lowOut.String()); e != 0 || n < 500 {
		t.Fatalf("during scale-in %d of %d requests failed; want 0 of at least 500\n%s", e, n, lowOut.String())
	}

	// The history is consistent: nothing pending or failed, and every
	// applied decision starts where the previous one ended (no double step).
	var ds []decision
	if err := sb.CLIJSON(ctx, &ds, "decisions", "web"); err != nil {
		t.Fatal(err)
	}
	prev := -1
	for _, d := range ds {
		switch d.Status {
		case "superseded":
			continue
		case "applied":
		default:
			t.Fatalf("decision %d is %s: %+v", d.ID, d.Status, ds)
		}
		if prev >= 0 && d.From != prev {
			t.Fatalf("decision %d goes %d → %d after the previous ended at %d: a double step\n%+v", d.ID, d.From, d.To, prev, ds)
		}
		prev = d.To
	}
	if prev != 2 {
		t.Fatalf("last applied decision ends at %d, want 2: %+v", prev, ds)
	}
	cfg, err := sb.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"shoal-web"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AutoScalingGroups) != 1 || aws.ToInt32(out.AutoScalingGroups[0].DesiredCapacity) != 2 {
		t.Fatalf("group: %+v, want desired capacity exactly 2", out.AutoScalingGroups)
	}
	logs, _ := os.ReadFile(filepath.Join(sb.Dir, "logs", "coordinator-"+firstKey(crashed)+".log"))
	if !strings.Contains(string(logs), "failpoint scaler.after-commit: exit") {
		t.Errorf("the crashed node's log does not show the failpoint firing")
	}
}

type errNotYet string

func (e errNotYet) Error() string { return string(e) }

func firstKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

//go:build multiprocess

package compare

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/shoal-dev/shoal/deploy/internal/demo"
	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// TestCompareAWS runs `shoal-demo --compare aws` on a short schedule: a
// 50 s spike is long enough for AWS's 3 datapoints of 10 s (plus the
// agent's flush) to scale its fleet out, not for its scale-in, which the
// full run shows. It checks both fleets scaled out, who scaled each, that
// Shoal never decided for the AWS fleet, Shoal's reaction and that Shoal's
// fleet failed no request, and the report's fleets.
func TestCompareAWS(t *testing.T) {
	bin := testkit.BinDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	report := t.TempDir()
	var out testkit.Buffer
	cfg := demo.DefaultConfig().WithCompare(demo.CompareAWS)
	cfg.BinDir, cfg.ReportDir, cfg.Out = bin, report, &out
	cfg.Baseline, cfg.Spike, cfg.Recovery, cfg.Budget = 5*time.Second, 50*time.Second, 3*time.Second, 0
	var inspectErrs []string
	inspect := func(ctx context.Context, sb *sandbox.Sandbox, sum *demo.Summary) error {
		inspectErrs = inspectAWSFleet(ctx, sb, sum)
		return nil
	}
	start := time.Now()
	sum, err := demo.Run(ctx, cfg, inspect)
	t.Logf("compare demo ran in %s", time.Since(start).Round(time.Second))
	defer func() {
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	}()
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	for _, e := range inspectErrs {
		t.Error(e)
	}
	if len(sum.Fleets) != 2 {
		t.Fatalf("fleets %+v, want 2", sum.Fleets)
	}
	shoal, awsF := sum.Fleets[0], sum.Fleets[1]
	for _, f := range sum.Fleets {
		t.Logf("%s (%s): reaction %.1fs, %d errors, %d unsent of %d, peak p99 %.0fms, %d instance-seconds, peak desired %d",
			f.Name, f.Scaler, f.ReactionS, f.Errors, f.Unsent, f.TotalRequests, f.PeakP99ms, f.InstanceSeconds, f.PeakDesired)
	}
	t.Run("fleets well-formed", func(t *testing.T) {
		for _, c := range []struct {
			f            demo.FleetResult
			name, scaler string
		}{{shoal, demo.Fleet, demo.ScalerShoal}, {awsF, demo.AWSFleet, demo.ScalerAWS}} {
			f := c.f
			if f.Name != c.name || f.Scaler != c.scaler || f.Group == "" {
				t.Errorf("fleet %+v, want name %s scaler %s with a group", f, c.name, c.scaler)
			}
			// About 40 req/s for 58 s and 160 more for 50 s.
			if f.TotalRequests < 5000 {
				t.Errorf("%s: %d requests, want >= 5000", f.Name, f.TotalRequests)
			}
			if f.FailedRequests != f.Errors+f.Unsent || f.PeakP99ms <= 0 {
				t.Errorf("%s: failed %d = errors %d + unsent %d? peak p99 %v", f.Name, f.FailedRequests, f.Errors, f.Unsent, f.PeakP99ms)
			}
			// At least min instances for every second of the run.
			if f.InstanceSeconds < sum.Min*len(sum.Rows) {
				t.Errorf("%s: %d instance-seconds over %d seconds, want >= %d", f.Name, f.InstanceSeconds, len(sum.Rows), sum.Min*len(sum.Rows))
			}
		}
	})
	t.Run("both fleets scaled out", func(t *testing.T) {
		for _, f := range sum.Fleets {
			if f.PeakDesired <= sum.Min || f.ReactionS < 0 || f.FirstIncreaseT < float64(sum.SpikeStart) {
				t.Errorf("%s: peak desired %d, reaction %.1fs, first increase t=%.1f (spike at t=%d)", f.Name, f.PeakDesired, f.ReactionS, f.FirstIncreaseT, sum.SpikeStart)
			}
		}
	})
	t.Run("Shoal's reaction is recorded and quick", func(t *testing.T) {
		if shoal.ReactionS < 0 || shoal.ReactionS > 10 || sum.ScaleOutReactionS < 0 {
			t.Errorf("Shoal reaction %.1fs (decision %.1fs), want 0–10s", shoal.ReactionS, sum.ScaleOutReactionS)
		}
		// AWS needs 3 whole 10 s datapoints above the target.
		if awsF.ReactionS < 20 {
			t.Errorf("AWS reaction %.1fs, want >= 20s: its high alarm needs 3 datapoints of 10 s", awsF.ReactionS)
		}
	})
	t.Run("no failed request on Shoal's fleet", func(t *testing.T) {
		if shoal.FailedRequests != 0 {
			t.Errorf("Shoal's fleet: %d failed (%d errors, %d unsent), want 0", shoal.FailedRequests, shoal.Errors, shoal.Unsent)
		}
	})
	t.Run("the agent stand-in published", func(t *testing.T) {
		if sum.AWSAgent == nil || sum.AWSAgent.Sent < len(sum.Rows) {
			t.Errorf("agent %+v, want at least one datapoint a second", sum.AWSAgent)
		}
	})
	t.Run("report files", func(t *testing.T) {
		checkReport(t, report, sum)
	})
}

// inspectAWSFleet checks, with the system up, that Shoal never decided for
// the AWS fleet and that its group's capacity rose by its target tracking
// policy's high alarm.
func inspectAWSFleet(ctx context.Context, sb *sandbox.Sandbox, sum *demo.Summary) []string {
	var errs []string
	raw, err := sb.CLI(ctx, "decisions", demo.AWSFleet)
	if err != nil {
		return []string{err.Error()}
	}
	var ds []map[string]any
	if err := json.Unmarshal(raw, &ds); err != nil {
		errs = append(errs, fmt.Sprintf("decisions %s: %v: %s", demo.AWSFleet, err, raw))
	}
	if len(ds) != 0 {
		errs = append(errs, fmt.Sprintf("Shoal made %d decisions for %s, want none: %s", len(ds), demo.AWSFleet, raw))
	}
	cfg, err := sb.AWSConfig(ctx)
	if err != nil {
		return append(errs, err.Error())
	}
	group := sum.Fleets[len(sum.Fleets)-1].Group
	acts, err := autoscaling.NewFromConfig(cfg).DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(group)})
	if err != nil {
		return append(errs, err.Error())
	}
	byPolicy := false
	for _, a := range acts.Activities {
		c := aws.ToString(a.Cause)
		byPolicy = byPolicy || (strings.Contains(c, "TargetTracking-"+group+"-AlarmHigh-") && strings.Contains(c, "triggered policy"))
	}
	if !byPolicy {
		var causes []string
		for _, a := range acts.Activities {
			causes = append(causes, aws.ToString(a.Cause))
		}
		errs = append(errs, fmt.Sprintf("no activity of %s was caused by its target tracking high alarm: %q", group, causes))
	}
	return errs
}

func checkReport(t *testing.T, dir string, sum *demo.Summary) {
	f, err := os.Open(filepath.Join(dir, "timeline.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(append(append([]string(nil), demo.TimelineHeader...), demo.CompareHeader...), ",")
	if got := strings.Join(rows[0], ","); got != want {
		t.Errorf("timeline header %q, want %q", got, want)
	}
	if len(rows)-1 != len(sum.Rows) {
		t.Errorf("timeline has %d rows, the run %d", len(rows)-1, len(sum.Rows))
	}
	svg, err := os.ReadFile(filepath.Join(dir, "chart.svg"))
	if err != nil {
		t.Fatal(err)
	}
	// rps ×2, p99 ×2, desired and in service ×2.
	if n := bytes.Count(svg, []byte("<polyline")); n != 8 || !bytes.Contains(svg, []byte("AWS p99")) || !bytes.Contains(svg, []byte("AWS desired")) {
		t.Errorf("chart.svg has %d series, want 8 with AWS's p99 and capacity", n)
	}
	var onDisk struct {
		Fleets []map[string]any `json:"fleets"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &onDisk); err != nil {
		t.Fatal(err)
	}
	if len(onDisk.Fleets) != 2 {
		t.Fatalf("summary.json fleets %v", onDisk.Fleets)
	}
	for _, f := range onDisk.Fleets {
		for _, k := range []string{"name", "scaler", "reaction_s", "failed_requests", "peak_p99_ms", "instance_seconds"} {
			if _, ok := f[k]; !ok {
				t.Errorf("summary.json fleet %v lacks %s", f["name"], k)
			}
		}
	}
}

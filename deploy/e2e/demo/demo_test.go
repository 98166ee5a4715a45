//go:build multiprocess

package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/shoal-dev/shoal/deploy/internal/demo"
	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// TestDemo runs a shortened `make demo` and checks what the issue promises:
// a quick scale-out, (almost) no failed request and none during scale-in, the
// fleet's series in CloudWatch, the high alarm firing and clearing, the group
// back at min, and no process left behind.
func TestDemo(t *testing.T) {
	bin := testkit.BinDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	report := t.TempDir()
	var out testkit.Buffer
	var sb *sandbox.Sandbox
	cfg := demo.DefaultConfig()
	cfg.BinDir, cfg.ReportDir = bin, report
	// The spike starts on a 10 s boundary and lasts past three whole 10 s
	// alarm periods, so the high alarm can fire; 200 req/s is more than 6
	// instances serve at the target, so it does.
	cfg.Baseline, cfg.Spike, cfg.Recovery, cfg.AlignSpike = 5*time.Second, 40*time.Second, 20*time.Second, true
	cfg.ScaleInWindow = 8 * time.Second
	cfg.Out = &out
	var inspectErrs []string
	inspect := func(ctx context.Context, s *sandbox.Sandbox, sum *demo.Summary) error {
		sb = s
		inspectErrs = inspectCloud(ctx, s, sum)
		return nil
	}
	start := time.Now()
	sum, err := demo.Run(ctx, cfg, inspect)
	t.Logf("demo ran in %s", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	defer func() {
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	}()
	for _, e := range inspectErrs {
		t.Error(e)
	}

	t.Run("scale-out within 10s of the spike crossing the target", func(t *testing.T) {
		if sum.ScaleOutReactionS < 0 || sum.ScaleOutReactionS > 10 {
			t.Errorf("reaction %.1fs (crossed at t=%.1f, decided at t=%.1f), want 0–10s", sum.ScaleOutReactionS, sum.SpikeCrossedTargetT, sum.ScaleOutDecidedT)
		}
		if sum.PeakDesired <= sum.Min {
			t.Errorf("peak desired %d, want above min %d", sum.PeakDesired, sum.Min)
		}
	})
	t.Run("failed requests", func(t *testing.T) {
		// The profile offers about 40 req/s for 65 s plus 160 req/s for 40 s;
		// far fewer means the load never got through.
		if sum.TotalRequests < 5000 {
			t.Errorf("only %d requests were sent", sum.TotalRequests)
		}
		if float64(sum.FailedRequests) > 0.001*float64(sum.TotalRequests) {
			t.Errorf("%d of %d requests failed, want at most 0.1%%", sum.FailedRequests, sum.TotalRequests)
		}
		if sum.ScaleInStartT < 0 {
			t.Errorf("no scale-in decision")
		}
		// Scale-in must finish while the baseline load still runs, or "no
		// failure during scale-in" would hold for want of requests.
		if sum.BackAtMinT < 0 || sum.BackAtMinT > sum.LoadEnd {
			t.Errorf("back at min at t=%d, want before the load ended at t=%d", sum.BackAtMinT, sum.LoadEnd)
		}
		if sum.FailedDuringScaleIn != 0 {
			t.Errorf("%d requests failed during scale-in, want 0", sum.FailedDuringScaleIn)
		}
	})
	t.Run("high alarm fired during the spike and cleared after", func(t *testing.T) {
		if sum.HighAlarm == "" || !sum.HighAlarmFired || !sum.HighAlarmCleared {
			t.Errorf("high alarm %q fired=%v cleared=%v; changes %+v", sum.HighAlarm, sum.HighAlarmFired, sum.HighAlarmCleared, sum.AlarmChanges)
		}
	})
	t.Run("back to min after scale-in", func(t *testing.T) {
		if sum.BackAtMinT < 0 {
			t.Errorf("the fleet never came back to %d in service", sum.Min)
		}
	})
	t.Run("report files", func(t *testing.T) {
		checkReport(t, report, sum)
	})
	t.Run("no process left behind", func(t *testing.T) {
		if sb == nil {
			t.Fatal("inspect never ran")
		}
		left, err := sb.Leftovers()
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// inspectCloud checks the local cloud through aws-sdk-go-v2 while the system
// is still up, returning what is wrong.
func inspectCloud(ctx context.Context, s *sandbox.Sandbox, sum *demo.Summary) []string {
	var errs []string
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	asgName := ""
	for _, m := range sum.Made {
		if m.Kind == "auto-scaling-group" {
			asgName = m.ID
		}
	}
	if asgName == "" {
		return []string{fmt.Sprintf("bootstrap made no auto-scaling-group: %+v", sum.Made)}
	}

	// CloudWatch holds the fleet's series, and they saw the spike.
	cw := cloudwatch.NewFromConfig(cfg)
	all, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{
		Namespace:  aws.String("Shoal"),
		Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("AutoScalingGroupName"), Value: aws.String(asgName)}},
	})
	if err != nil {
		errs = append(errs, fmt.Sprintf("ListMetrics Shoal for %s: %v", asgName, err))
	} else {
		have := map[string]bool{}
		for _, m := range all.Metrics {
			have[aws.ToString(m.MetricName)] = true
		}
		for _, want := range []string{"CPUUtilization", "MemoryUtilization", "util"} {
			if !have[want] {
				errs = append(errs, fmt.Sprintf("CloudWatch has no Shoal/%s series for %s (has %v)", want, asgName, have))
			}
		}
	}
	lm, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{
		Namespace:  aws.String("Shoal"),
		MetricName: aws.String("util"),
		Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("AutoScalingGroupName"), Value: aws.String(asgName)}},
	})
	if err != nil {
		errs = append(errs, fmt.Sprintf("ListMetrics Shoal/util for %s: %v", asgName, err))
	} else if len(lm.Metrics) == 0 {
		errs = append(errs, fmt.Sprintf("ListMetrics: no Shoal/util series for %s", asgName))
	} else {
		start := time.UnixMilli(sum.LoadStartUnixMS).Add(-time.Minute)
		gd, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(start),
			EndTime:   aws.Time(time.Now().Add(time.Minute)),
			MetricDataQueries: []cwtypes.MetricDataQuery{{
				Id:         aws.String("util"),
				MetricStat: &cwtypes.MetricStat{Metric: &lm.Metrics[0], Period: aws.Int32(10), Stat: aws.String("Average")},
			}},
		})
		switch {
		case err != nil:
			errs = append(errs, fmt.Sprintf("GetMetricData: %v", err))
		case len(gd.MetricDataResults) != 1 || len(gd.MetricDataResults[0].Values) < 5:
			errs = append(errs, fmt.Sprintf("GetMetricData: want >= 5 datapoints of util, got %+v", gd.MetricDataResults))
		default:
			peak := 0.0
			for _, v := range gd.MetricDataResults[0].Values {
				peak = max(peak, v)
			}
			if peak <= sum.Target {
				errs = append(errs, fmt.Sprintf("CloudWatch util peaked at %.1f, want above the target %.0f during the spike", peak, sum.Target))
			}
		}
	}

	// The alarm's own history says it went to ALARM and came back.
	if sum.HighAlarm != "" {
		h, err := cw.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String(sum.HighAlarm), HistoryItemType: cwtypes.HistoryItemTypeStateUpdate})
		if err != nil {
			errs = append(errs, fmt.Sprintf("DescribeAlarmHistory: %v", err))
		} else {
			var toAlarm, fromAlarm bool
			for _, it := range h.AlarmHistoryItems {
				s := aws.ToString(it.HistorySummary)
				toAlarm = toAlarm || strings.Contains(s, "to ALARM")
				fromAlarm = fromAlarm || strings.Contains(s, "from ALARM")
			}
			if !toAlarm || !fromAlarm {
				var all []string
				for _, it := range h.AlarmHistoryItems {
					all = append(all, aws.ToString(it.HistorySummary))
				}
				errs = append(errs, fmt.Sprintf("alarm %s history lacks a move to and from ALARM: %q", sum.HighAlarm, all))
			}
		}
	}

	// The group itself is back at min with min instances in service.
	as := autoscaling.NewFromConfig(cfg)
	if err := sandbox.Poll(ctx, 20*time.Second, "group back at min", func(ctx context.Context) error {
		g, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{asgName}})
		if err != nil {
			return err
		}
		if len(g.AutoScalingGroups) != 1 {
			return fmt.Errorf("%d groups", len(g.AutoScalingGroups))
		}
		grp := g.AutoScalingGroups[0]
		inService := 0
		for _, in := range grp.Instances {
			if in.LifecycleState == "InService" {
				inService++
			}
		}
		if int(aws.ToInt32(grp.DesiredCapacity)) != sum.Min || inService != sum.Min || len(grp.Instances) != sum.Min {
			return fmt.Errorf("desired %d, %d instances, %d in service", aws.ToInt32(grp.DesiredCapacity), len(grp.Instances), inService)
		}
		return nil
	}); err != nil {
		errs = append(errs, err.Error())
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
	if got := strings.Join(rows[0], ","); got != "t,rps,p99,cpu_avg,desired,in_service,draining,decision" {
		t.Errorf("timeline header %q", got)
	}
	if len(rows) < sum.SpikeEnd {
		t.Errorf("timeline has %d rows, want one per second past t=%d", len(rows)-1, sum.SpikeEnd)
	}
	decisions := 0
	for _, r := range rows[1:] {
		if r[7] != "" {
			decisions++
		}
	}
	if decisions < 2 {
		t.Errorf("timeline marks %d decisions, want a scale-out and a scale-in", decisions)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "chart.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(svg, []byte("<svg")) || bytes.Count(svg, []byte("<polyline")) != 5 || !bytes.Contains(svg, []byte("stroke-dasharray")) {
		t.Errorf("chart.svg lacks its 5 series or the decision marks")
	}
	var onDisk demo.Summary
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &onDisk); err != nil {
		t.Fatal(err)
	}
	if onDisk.FailedRequests != sum.FailedRequests || onDisk.ScaleOutReactionS != sum.ScaleOutReactionS {
		t.Errorf("summary.json %+v differs from the run's summary", onDisk)
	}
}

// TestDemoCtrlC interrupts bin/shoal-demo once its first live line is out and
// checks it stops everything it started.
func TestDemoCtrlC(t *testing.T) {
	bin := testkit.BinDir(t)
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// stdout is read line by line; the pipe ends once the process has.
	stdout, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() }) // after the process is stopped
	var stderr testkit.Buffer
	proc := testkit.Start(t, filepath.Join(bin, "shoal-demo"), []string{"--bin", bin, "--keep", "--report-dir", t.TempDir()},
		testkit.Options{Env: []string{"DEMO_DURATION=20s"}, Stdout: pw, Stderr: &stderr})
	var out testkit.Buffer
	dir := ""
	live, eof := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(&out, line)
			if d, ok := strings.CutPrefix(line, "sandbox (data and every process's log): "); ok {
				dir = d
			}
			if f := strings.Fields(line); !signalled && len(f) >= 7 && f[0] == "1" {
				signalled = true
				close(live)
			}
		}
	}()
	select {
	case <-live:
	case <-ctx.Done():
		t.Fatalf("no live line before the deadline:\n%s%s", out.String(), stderr.String())
	}
	interrupted := time.Now()
	if err := proc.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proc.Done():
	case <-ctx.Done():
		t.Fatalf("shoal-demo still running after Ctrl-C:\n%s", out.String())
	}
	pw.Close()
	<-eof
	err = proc.Err()
	t.Logf("stopped %s after Ctrl-C", time.Since(interrupted).Round(100*time.Millisecond))
	if err == nil || !strings.Contains(stderr.String(), "interrupted; everything was stopped") {
		t.Errorf("exit %v, stderr %q; want a failure saying it was interrupted", err, stderr.String())
	}
	if !strings.Contains(out.String(), "stopped: no process left behind") {
		t.Errorf("output lacks the clean stop:\n%s", out.String())
	}
	if dir == "" {
		t.Fatalf("shoal-demo --keep did not print its sandbox:\n%s", out.String())
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	left, err := sandbox.LeftoversOf(bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left behind after Ctrl-C: %v", left)
	}
}

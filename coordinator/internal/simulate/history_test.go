package simulate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func TestTraceFromHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pts := []HistoryPoint{
		// A minute of 4 instances at 50 % of 100 requests/s: 200 requests/s.
		{T: t0, Step: time.Minute, Avg: 50, Count: 240},
		{T: t0.Add(time.Minute), Step: time.Minute, Avg: 75, Count: 240},
		// 1-second points that overlap the coarse part are dropped.
		{T: t0.Add(time.Minute), Step: time.Second, Avg: 10, Count: 4},
		{T: t0.Add(2 * time.Minute), Step: time.Second, Avg: 80, Count: 6},
	}
	tr, err := TraceFromHistory(pts, "cpu", 100)
	if err != nil {
		t.Fatal(err)
	}
	want := Trace{{0, 200}, {60, 300}, {120, 480}}
	if len(tr) != len(want) {
		t.Fatalf("trace %v, want %v", tr, want)
	}
	for i := range want {
		if tr[i] != want[i] {
			t.Fatalf("trace %v, want %v", tr, want)
		}
	}
	rpt, _ := TraceFromHistory([]HistoryPoint{{T: t0, Step: time.Second, Avg: 30, Count: 5}}, "requests_per_target", 100)
	if rpt[0].Demand != 150 {
		t.Fatalf("requests_per_target 30 × 5 instances = %v, want 150", rpt[0].Demand)
	}
	if _, err := TraceFromHistory(nil, "cpu", 100); err == nil {
		t.Fatal("empty history accepted")
	}
	if _, err := TraceFromHistory([]HistoryPoint{{T: t0, Step: time.Second, Avg: -1, Count: 1}}, "cpu", 100); err == nil {
		t.Fatal("negative demand accepted")
	}
}

func TestParseSince(t *testing.T) {
	for in, want := range map[string]time.Duration{"14d": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "1d": 24 * time.Hour} {
		if got, err := parseSince(in); err != nil || got != want {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0d", "-1h", "32d", "1.5d", "soon"} {
		if _, err := parseSince(in); err == nil {
			t.Errorf("parseSince(%q) accepted", in)
		}
	}
}

func TestFromCloudWatchCommand(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var gotFleet string
	var gotSince time.Duration
	h := func(_ context.Context, fleet string, since time.Duration) (string, []HistoryPoint, error) {
		gotFleet, gotSince = fleet, since
		return "cpu", []HistoryPoint{{T: t0, Step: time.Second, Avg: 50, Count: 4}, {T: t0.Add(time.Second), Step: time.Second, Avg: 60, Count: 4}}, nil
	}
	out := filepath.Join(t.TempDir(), "web.csv")
	run := func(c *cobra.Command, args ...string) error {
		c.SetArgs(args)
		c.SetOut(&strings.Builder{})
		c.SetErr(&strings.Builder{})
		return c.Execute()
	}
	if err := run(NewCommandWith(h), "--from-cloudwatch", "web", "--since", "2d", "--write-trace", out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if string(b) != "time,demand\n0,200\n1,240\n" || gotFleet != "web" || gotSince != 48*time.Hour {
		t.Fatalf("trace %q, fleet %q, since %v", b, gotFleet, gotSince)
	}
	if f, err := os.Open(out); err == nil {
		_, err := ReadTrace(f)
		f.Close()
		if err != nil {
			t.Fatalf("written trace does not read back: %v", err)
		}
	}
	for _, c := range []struct {
		cmd  *cobra.Command
		args []string
		want string
	}{
		{NewCommandWith(h), []string{"--from-cloudwatch", "web"}, "needs --write-trace"},
		{NewCommandWith(h), []string{"--write-trace", out}, "only with --from-cloudwatch"},
		{NewCommand(), []string{"--from-cloudwatch", "web", "--write-trace", out}, "not available in this binary"},
		{NewCommandWith(h), []string{"--from-cloudwatch", "web", "--write-trace", out, "--since", "40d"}, "--since"},
	} {
		if err := run(c.cmd, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
	}
}

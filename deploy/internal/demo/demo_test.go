package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no bin", func(c *Config) { c.BinDir = "" }, "bin dir: required"},
		{"too short", func(c *Config) { *c = c.WithDuration(10 * time.Second) }, "duration (10s) must be >= 15s"},
		{"spike not above baseline", func(c *Config) { c.BaselineRPS, c.SpikeRPS = 100, 90 }, "spike rps (90) must be > baseline rps (100)"},
		{"min above max", func(c *Config) { c.Min, c.Max = 5, 3 }, "min (5) must be >= 1 and <= max (3)"},
		{"target out of range", func(c *Config) { c.Target = 120 }, "target (120) must be in (0, 100]"},
		{"empty phase", func(c *Config) { c.Baseline, c.Spike, c.Recovery = 10*time.Second, 20*time.Second, 0 }, "must all be >= 1s"},
		{"no output", func(c *Config) { c.Out = nil }, "out: a writer"},
		{"zero config", func(c *Config) { *c = Config{BinDir: "bin"} }, "phases"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.BinDir = "bin"
			tc.edit(&cfg)
			before := fmt.Sprintf("%+v", cfg)
			err := cfg.Validate()
			if after := fmt.Sprintf("%+v", cfg); after != before {
				t.Fatalf("Validate changed the config:\n%s\n%s", before, after)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrConfig containing %q", err, tc.want)
			}
		})
	}
}

func TestWithDurationSplitsPhases(t *testing.T) {
	c := DefaultConfig().WithDuration(100 * time.Second)
	if c.Baseline != 20*time.Second || c.Spike != 35*time.Second || c.Recovery != 45*time.Second || c.Total() != 100*time.Second {
		t.Fatalf("phases %s/%s/%s, want 20s/35s/45s", c.Baseline, c.Spike, c.Recovery)
	}
	if d := DefaultConfig().Total(); d != 150*time.Second {
		t.Fatalf("default load profile %s, want 150s", d)
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name, val string
		want      time.Duration
		err       bool
	}{
		{"unset keeps default", "", 150 * time.Second, false},
		{"duration", "90s", 90 * time.Second, false},
		{"not a duration", "ninety", 0, true},
		{"negative", "-5s", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromEnv(DefaultConfig(), func(k string) string {
				if k == "DEMO_DURATION" {
					return tc.val
				}
				return ""
			})
			if (err != nil) != tc.err {
				t.Fatalf("FromEnv err = %v, want error %v", err, tc.err)
			}
			if err != nil && !strings.Contains(err.Error(), "DEMO_DURATION") {
				t.Fatalf("error %q does not name DEMO_DURATION", err)
			}
			if err == nil && c.Total() != tc.want {
				t.Fatalf("Total() = %s, want %s", c.Total(), tc.want)
			}
		})
	}
}

func TestLoadLinesLandOnTheTimeline(t *testing.T) {
	t0 := time.Now().Add(-12 * time.Second)
	g := &loadgen{t0: t0, seconds: map[int]loadSecond{}, offset: -1, done: make(chan struct{})}
	// The first line arrives ~12 s after t0, so its t=1s is timeline second 12.
	g.read(strings.NewReader("t=1s rate=70 ok=69 err=1 p50=20.1ms p99=241.9ms codes=http_503=1 instances=i-a=70\n" +
		"t=2s rate=80 ok=80 err=0 p50=20.1ms p99=30.5ms codes= instances=i-a=80\n" +
		"summary requests=150 ok=149 errors=1 rps=75 p50_ms=20 p99_ms=240 dropped=0\n"))
	s, ok := g.second(12)
	if !ok || s.requests != 70 || s.errors != 1 || s.p99ms != 241.9 {
		t.Fatalf("second 12 = %+v, %v", s, ok)
	}
	if s, ok := g.second(13); !ok || s.requests != 80 {
		t.Fatalf("second 13 = %+v, %v", s, ok)
	}
	if g.totals == nil || *g.totals != (loadTotals{requests: 150, ok: 149, errors: 1}) {
		t.Fatalf("totals = %+v", g.totals)
	}
}

// fixture is a run through a spike: crossing at t=10, scale-out decided at
// t=12.5, scale-in decided at t=30.2, back at min at t=33.
func fixture() *run {
	cfg := DefaultConfig()
	cfg.BinDir, cfg.Baseline, cfg.Spike, cfg.Recovery = "bin", 10*time.Second, 15*time.Second, 15*time.Second
	r := &run{cfg: cfg, spikeAt: 10, spikeEnd: 25, alarms: []alarmInfo{{Name: "shoal-web-util-high"}, {Name: "shoal-web-util-low"}}}
	for k := 1; k <= 40; k++ {
		row := Row{T: k, RPS: 40, P99ms: 20, Desired: 2, InService: 2}
		switch {
		case k > 10 && k <= 25:
			row.RPS = 200
		}
		switch {
		case k >= 13 && k < 31:
			row.Desired, row.InService = 6, 6
		case k == 31 || k == 32:
			row.Desired, row.InService, row.Draining = 2, 2, 4
		}
		if k == 31 {
			row.Errors = 1 // during scale-in
		}
		if k == 5 {
			row.Errors = 2 // before the spike
		}
		r.rows = append(r.rows, row)
	}
	r.decisions = []DecisionMark{{T: 12.5, From: 2, To: 6}, {T: 30.2, From: 6, To: 2}}
	r.changes = []alarmChange{
		{Name: "shoal-web-util-high", From: "", To: "OK", T: 2},
		{Name: "shoal-web-util-high", From: "OK", To: "ALARM", T: 22},
		{Name: "shoal-web-util-high", From: "ALARM", To: "OK", T: 30},
	}
	return r
}

func TestSummarise(t *testing.T) {
	s := fixture().summarise(loadTotals{requests: 5000, ok: 4997, errors: 3}, true)
	checks := []struct {
		name      string
		got, want any
	}{
		{"crossed", s.SpikeCrossedTargetT, 10.0},
		{"decided", s.ScaleOutDecidedT, 12.5},
		{"reaction", s.ScaleOutReactionS, 2.5},
		{"peak desired", s.PeakDesired, 6},
		{"failed", s.FailedRequests, 3},
		{"failed during scale-in", s.FailedDuringScaleIn, 1},
		{"back at min", s.BackAtMinT, 33},
		{"scale-in duration", s.ScaleInDurationS, 8.0},
		{"high alarm", s.HighAlarm, "shoal-web-util-high"},
		{"fired", s.HighAlarmFired, true},
		{"cleared", s.HighAlarmCleared, true},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Fatalf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

func TestSummariseNoScaleOut(t *testing.T) {
	r := fixture()
	r.decisions = nil
	s := r.summarise(loadTotals{}, true)
	if s.ScaleOutReactionS != -1 || s.ScaleInStartT != -1 {
		t.Fatalf("reaction %v, scale-in start %v, want -1 for both", s.ScaleOutReactionS, s.ScaleInStartT)
	}
}

func TestTimelineCSV(t *testing.T) {
	var b bytes.Buffer
	rows := []Row{{T: 1, RPS: 40, P99ms: 21.55, CPUAvg: 40.04, CPUKnown: true, Desired: 2, InService: 2}, {T: 2, RPS: 200, P99ms: 240, Desired: 4, InService: 2, Decision: "2->4"}}
	if err := writeTimeline(&b, rows); err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"t", "rps", "p99", "cpu_avg", "desired", "in_service", "draining", "decision"},
		{"1", "40", "21.6", "40.0", "2", "2", "0", ""},
		{"2", "200", "240.0", "", "4", "2", "0", "2->4"},
	}
	if len(got) != len(want) {
		t.Fatalf("rows %q", got)
	}
	for i := range want {
		if strings.Join(got[i], ",") != strings.Join(want[i], ",") {
			t.Errorf("row %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestChartMarksDecisionsAndSpike(t *testing.T) {
	r := fixture()
	s := r.summarise(loadTotals{}, true)
	var b bytes.Buffer
	if err := writeChart(&b, s); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	for _, want := range []string{"<svg", "</svg>", "2→6", "6→2", "load (requests/s)", "p99 latency (ms)", "instances", "shoal-web-util-high ALARM"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if n := strings.Count(svg, "<polyline"); n != 5 {
		t.Errorf("%d series, want 5 (rps, p99, desired, in_service, draining)", n)
	}
	if err := writeChart(&b, &Summary{}); err == nil {
		t.Error("a chart of no rows should fail")
	}
}

func TestAlarmSpans(t *testing.T) {
	s := &Summary{HighAlarm: "h", AlarmChanges: []alarmChange{
		{Name: "h", To: "OK", T: 2}, {Name: "l", To: "ALARM", T: 3}, {Name: "h", From: "OK", To: "ALARM", T: 10},
		{Name: "h", From: "ALARM", To: "OK", T: 20}, {Name: "h", From: "OK", To: "ALARM", T: 30},
	}}
	got := alarmSpans(s, 40)
	want := [][2]int{{10, 20}, {30, 40}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("spans %v, want %v", got, want)
	}
}

func TestMainRejectsBadDuration(t *testing.T) {
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == "DEMO_DURATION" {
			return "ninety"
		}
		return ""
	}
	if code := Main(context.Background(), []string{"--bin", t.TempDir()}, &stdout, &stderr, getenv); code != 1 || !strings.Contains(stderr.String(), "shoal-demo: ") || !strings.Contains(stderr.String(), "DEMO_DURATION") {
		t.Fatalf("exit %d, stderr %q; want 1 naming DEMO_DURATION", code, stderr.String())
	}
}

package demo

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWithSpot(t *testing.T) {
	c := DefaultConfig().WithSpot()
	c.BinDir = "bin"
	if c.Scenario != ScenarioSpot || c.Min != 6 || c.Max < 7 || c.SpotNoticeIn != 40*time.Second || c.SpotDrainMargin != 5*time.Second {
		t.Fatalf("spot config %+v", c)
	}
	// Steady load below the target at min, so the policy never scales.
	if at := float64(c.Min*c.Capacity) * c.Target / 100; float64(c.BaselineRPS) >= at {
		t.Fatalf("baseline %d req/s is not below what %d instances serve at the target (%.0f)", c.BaselineRPS, c.Min, at)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"unknown scenario", func(c *Config) { c.Scenario = "flood" }, `scenario ("flood") must be "spike" or "spot"`},
		{"with compare", func(c *Config) { c.Compare = CompareAWS }, `compare ("aws") runs only with the "spike" scenario`},
		{"no room above min", func(c *Config) { c.Max = c.Min }, "max (6) must leave room above min (6)"},
		{"notice too short", func(c *Config) { c.SpotNoticeIn = time.Second }, "spot notice in (1s)"},
		{"margin past the notice", func(c *Config) { c.SpotDrainMargin = c.SpotNoticeIn }, "spot drain margin (40s)"},
		{"first notice at 0", func(c *Config) { c.SpotFirstNotice = 0 }, "spot first notice (t=0s)"},
		{"second notice past the load", func(c *Config) { c.SpotGap = 200 }, "spot gap (200s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c
			tc.edit(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFromEnvSpot(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := FromEnv(DefaultConfig(), env(map[string]string{"DEMO_SCENARIO": "spot"}))
	if err != nil || c.Scenario != ScenarioSpot || c.Min != 6 {
		t.Fatalf("DEMO_SCENARIO=spot: %+v, %v", c, err)
	}
	c, err = FromEnv(DefaultConfig(), env(map[string]string{"DEMO_SCENARIO": "spot", "DEMO_DURATION": "60s"}))
	if err != nil || c.Total() != time.Minute || c.Scenario != ScenarioSpot {
		t.Fatalf("DEMO_SCENARIO=spot DEMO_DURATION=60s: total %s, %v", c.Total(), err)
	}
	if _, err := FromEnv(DefaultConfig(), env(map[string]string{"DEMO_SCENARIO": "spot", "DEMO_DURATION": "10s"})); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "DEMO_DURATION") {
		t.Fatalf("a spot run of 10s: %v", err)
	}
	c, err = FromEnv(DefaultConfig(), env(map[string]string{"DEMO_SCENARIO": "spike"}))
	if err != nil || c.Scenario != ScenarioSpike || c.Min != 2 {
		t.Fatalf("DEMO_SCENARIO=spike: %+v, %v", c, err)
	}
	if _, err := FromEnv(DefaultConfig(), env(map[string]string{"DEMO_SCENARIO": "flood"})); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "DEMO_SCENARIO") {
		t.Fatalf("DEMO_SCENARIO=flood: %v", err)
	}
	c, err = FromEnv(DefaultConfig(), env(map[string]string{"DEMO_SCENARIO": "spot", "DEMO_COMPARE": "aws"}))
	if err != nil {
		t.Fatal(err)
	}
	c.BinDir = "bin"
	if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "compare") {
		t.Fatalf("spot with compare: %v", err)
	}
}

func TestMainRejectsBadScenario(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"--bin", t.TempDir(), "--scenario", "flood"}, &stdout, &stderr, func(string) string { return "" })
	if code != 1 || !strings.Contains(stderr.String(), "--scenario") {
		t.Fatalf("exit %d, stderr %q; want 1 naming --scenario", code, stderr.String())
	}
}

// TestSpotWatchPairs checks how notices meet their moments: each gets the
// first group launch after it that no earlier notice claimed, a drain seen
// before its notice does not count, capacity is tracked from the first
// notice on, and a replacement is never picked as a victim.
func TestSpotWatchPairs(t *testing.T) {
	w := newSpotWatch(nil, nil, Fleet, "g", time.Now())
	w.launched = []string{"i-a", "i-b", "i-c", "i-r1", "i-r2"}
	w.launchedAt = map[string]float64{"i-a": 0, "i-b": 0, "i-c": 0, "i-r1": 3.4, "i-r2": 13.5}
	w.inService = []string{"i-c", "i-b", "i-a"}
	if v, ok := w.victim(); !ok || v != "i-a" {
		t.Fatalf("first victim %q, want i-a (first by id)", v)
	}
	w.noticed("i-a", 3)
	w.inService = []string{"i-c", "i-b", "i-r1"}
	if v, ok := w.victim(); !ok || v != "i-b" {
		t.Fatalf("second victim %q, want i-b (i-r1 is a replacement)", v)
	}
	w.noticed("i-b", 13)
	w.draining = map[string]float64{"i-a": 3.6, "i-b": 2}                         // i-b drained before its notice: not this one's drain
	w.serving = map[string]float64{"i-a": 0, "i-b": 0, "i-r1": 4.2, "i-r2": 14.4} // i-r2 serves
	w.terminated = map[string]float64{"i-a": 6}
	w.minAfter = 2
	is, pre, least := w.results()
	if pre != 3 || least != 2 || len(is) != 2 {
		t.Fatalf("pre %d, min %d, %d interruptions", pre, least, len(is))
	}
	want := []Interruption{
		{Instance: "i-a", Replacement: "i-r1", NoticeT: 3, DrainStartedT: 3.6, ReplacementInServiceT: 4.2, TerminatedT: 6},
		{Instance: "i-b", Replacement: "i-r2", NoticeT: 13, DrainStartedT: -1, ReplacementInServiceT: 14.4, TerminatedT: -1},
	}
	for k := range want {
		if is[k] != want[k] {
			t.Errorf("interruption %d = %+v, want %+v", k, is[k], want[k])
		}
	}
	if w.done(2) {
		t.Fatal("done with i-b not terminated")
	}
	w.terminated["i-b"] = 16
	if !w.done(2) || w.done(3) {
		t.Fatal("done: want true for 2 notices, false while a third is due")
	}
}

func TestSpotSummaryPrints(t *testing.T) {
	s := &Summary{Scenario: ScenarioSpot, TotalRequests: 3000, PreNoticeInService: 6, MinInServiceAfterNotice: 5,
		Interruptions: []Interruption{{Instance: "i-a", Replacement: "i-r1", NoticeT: 3, DrainStartedT: 3.61, ReplacementInServiceT: 4.2, TerminatedT: -1}}}
	var b bytes.Buffer
	printSummary(&b, DefaultConfig(), s)
	for _, want := range []string{"i-a: notice t=3.00s; draining 0.61s after; replacement i-r1 in service 1.20s after; terminated never", "never fewer than 5", "failed requests: 0 of 3000"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestWithCompare(t *testing.T) {
	c := DefaultConfig().WithCompare(CompareAWS)
	c.BinDir = "bin"
	if c.Baseline != 20*time.Second || c.Spike != time.Minute || c.Recovery != 380*time.Second || c.Budget != 7*time.Minute+40*time.Second {
		t.Fatalf("compare profile %s/%s/%s budget %s", c.Baseline, c.Spike, c.Recovery, c.Budget)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"unknown compare", func(c *Config) { c.Compare = "gcp" }, `compare ("gcp") must be empty or "aws"`},
		{"agent flush", func(c *Config) { c.AgentFlush = 0 }, "agent flush (0s)"},
		{"negative budget", func(c *Config) { c.Budget = -time.Second }, "budget (-1s)"},
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

func TestFromEnvCompare(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := FromEnv(DefaultConfig(), env(map[string]string{"DEMO_COMPARE": "aws"}))
	if err != nil || c.Compare != CompareAWS || c.Spike != time.Minute {
		t.Fatalf("DEMO_COMPARE=aws: %+v, %v", c, err)
	}
	c, err = FromEnv(DefaultConfig(), env(map[string]string{"DEMO_COMPARE": "aws", "DEMO_DURATION": "3m"}))
	if err != nil || c.Total() != 3*time.Minute || c.Baseline != 20*time.Second || c.Spike != time.Minute {
		t.Fatalf("DEMO_DURATION=3m in a compare run: %s/%s/%s, %v", c.Baseline, c.Spike, c.Recovery, err)
	}
	if _, err := FromEnv(DefaultConfig(), env(map[string]string{"DEMO_COMPARE": "aws", "DEMO_DURATION": "60s"})); err == nil || !strings.Contains(err.Error(), "DEMO_DURATION") {
		t.Fatalf("a compare run shorter than its baseline and spike: %v", err)
	}
	if _, err := FromEnv(DefaultConfig(), env(map[string]string{"DEMO_COMPARE": "gcp"})); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "DEMO_COMPARE") {
		t.Fatalf("DEMO_COMPARE=gcp: %v", err)
	}
}

func TestMainRejectsBadCompare(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"--bin", t.TempDir(), "--compare", "gcp"}, &stdout, &stderr, func(string) string { return "" })
	if code != 1 || !strings.Contains(stderr.String(), "--compare") {
		t.Fatalf("exit %d, stderr %q; want 1 naming --compare", code, stderr.String())
	}
}

func TestPromValue(t *testing.T) {
	page := "# HELP demoapp_utilization busy share\n# TYPE demoapp_utilization gauge\ndemoapp_utilization_total 3\ndemoapp_utilization 62.5\n"
	v, err := promValue(strings.NewReader(page), "demoapp_utilization")
	if err != nil || v != 62.5 {
		t.Fatalf("promValue = %v, %v; want 62.5 (not the _total series)", v, err)
	}
	if _, err := promValue(strings.NewReader("other 1\n"), "demoapp_utilization"); err == nil {
		t.Fatal("a page without the metric must fail")
	}
	if _, err := promValue(strings.NewReader("demoapp_utilization x\n"), "demoapp_utilization"); err == nil {
		t.Fatal("a value that is not a number must fail")
	}
}

// compareFixture is fixture() with an AWS fleet beside it: the spike
// crosses its target at t=10 too, its group grows 2→4 at t=38 and is back
// at min at t=40; Shoal's group launches at t=11.2, AWS's at t=37.5.
func compareFixture() (*run, map[string]float64) {
	r := fixture()
	r.group = "shoal-web"
	r.aws = &awsSide{fleet: AWSFleet, group: "shoal-web-aws"}
	for i := range r.rows {
		row := &r.rows[i]
		row.Running = row.Desired
		a := SideRow{RPS: row.RPS, P99ms: 30, Desired: 2, InService: 2, Running: 2}
		if row.T >= 11 && row.T <= 25 {
			a.RPS, a.P99ms = 100, 2500
		}
		if row.T >= 38 && row.T < 40 {
			a.Desired, a.InService, a.Running = 4, 4, 4
		}
		if row.T == 38 {
			a.Change = "2->4"
		}
		row.AWS = &a
	}
	return r, map[string]float64{"shoal-web": 11.2, "shoal-web-aws": 37.5}
}

func TestFleetResults(t *testing.T) {
	r, launches := compareFixture()
	s := r.summarise(loadTotals{requests: 5000, errors: 0}, true)
	fl := r.fleetResults(s, loadTotals{unsent: 0}, loadTotals{requests: 4000, errors: 7, unsent: 1500}, true, launches)
	if len(fl) != 2 {
		t.Fatalf("fleets %+v", fl)
	}
	sh, a := fl[0], fl[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"shoal name", sh.Name, Fleet},
		{"shoal scaler", sh.Scaler, ScalerShoal},
		{"shoal reaction", math.Round(sh.ReactionS*10) / 10, 1.2},
		{"shoal failed", sh.FailedRequests, 0},
		{"shoal instance-seconds", sh.InstanceSeconds, 2*22 + 6*18},
		{"shoal back at min", sh.BackAtMinT, 33},
		{"aws name", a.Name, AWSFleet},
		{"aws scaler", a.Scaler, ScalerAWS},
		{"aws crossed", a.SpikeCrossedT, 10.0},
		{"aws reaction", math.Round(a.ReactionS*10) / 10, 27.5},
		{"aws failed = errors + unsent", a.FailedRequests, 1507},
		{"aws peak p99", a.PeakP99ms, 2500.0},
		{"aws peak desired", a.PeakDesired, 4},
		{"aws instance-seconds", a.InstanceSeconds, 2*38 + 4*2},
		{"aws back at min", a.BackAtMinT, 26},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Fatalf("got %v, want %v", c.got, c.want)
			}
		})
	}
	// A fleet that never launched after the spike has no reaction.
	fl = r.fleetResults(s, loadTotals{}, loadTotals{}, true, map[string]float64{"shoal-web": 11.2})
	if fl[1].ReactionS != -1 || fl[1].FirstIncreaseT != -1 {
		t.Fatalf("no AWS launch: reaction %v, first increase %v; want -1", fl[1].ReactionS, fl[1].FirstIncreaseT)
	}
}

func TestBothAtMinFor(t *testing.T) {
	r, _ := compareFixture()
	if r.bothAtMinFor(5) {
		t.Fatal("AWS's fleet is at 4 until t=40; only one row after that")
	}
	for k := 41; k <= 45; k++ {
		r.rows = append(r.rows, Row{T: k, Desired: 2, InService: 2, AWS: &SideRow{Desired: 2, InService: 2}})
	}
	if !r.bothAtMinFor(5) {
		t.Fatal("both fleets at min for the last 5 rows")
	}
	r.rows[len(r.rows)-1].AWS.Draining = 1
	if r.bothAtMinFor(5) {
		t.Fatal("an instance still draining is not back at min")
	}
}

func TestCompareReport(t *testing.T) {
	r, launches := compareFixture()
	s := r.summarise(loadTotals{}, true)
	s.Fleets = r.fleetResults(s, loadTotals{}, loadTotals{}, true, launches)
	var b bytes.Buffer
	if err := writeTimeline(&b, s.Rows); err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(append(append([]string(nil), TimelineHeader...), CompareHeader...), ",")
	if strings.Join(got[0], ",") != want {
		t.Fatalf("header %q, want %q", got[0], want)
	}
	if row := strings.Join(got[38], ","); row != "38,40,20.0,,2,2,0,,40,30.0,,4,4,0,2->4,2,4" {
		t.Fatalf("row 38 %q", row)
	}
	b.Reset()
	if err := writeChart(&b, s); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	if n := strings.Count(svg, "<polyline"); n != 8 {
		t.Errorf("%d series, want 8 (rps, p99, desired and in service for each fleet)", n)
	}
	for _, w := range []string{"AWS 2→4", "AWS p99", "Shoal p99", "AWS desired", "beside AWS target tracking"} {
		if !strings.Contains(svg, w) {
			t.Errorf("chart lacks %q", w)
		}
	}
	var out bytes.Buffer
	printFleets(&out, s.Fleets)
	if !strings.Contains(out.String(), "22.9× sooner") || !strings.Contains(out.String(), "AWS's instance-seconds") {
		t.Errorf("fleet summary:\n%s", out.String())
	}
}

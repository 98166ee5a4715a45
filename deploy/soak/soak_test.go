package soak

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSlope(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ts, ys []float64
		want   float64
		ok     bool
	}{
		{"flat", []float64{0, 10, 20}, []float64{5, 5, 5}, 0, true},
		{"one per second is 3600 per hour", []float64{0, 1, 2, 3}, []float64{0, 1, 2, 3}, 3600, true},
		{"noisy line", []float64{0, 60, 120, 180}, []float64{10, 12, 10, 12}, 120.0 / 18000 * 3600, true},
		{"two points", []float64{0, 1}, []float64{0, 1}, 0, false},
		{"no spread in time", []float64{5, 5, 5}, []float64{1, 2, 3}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Slope(tc.ts, tc.ys)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("Slope = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseGoroutines(t *testing.T) {
	text := "# HELP go_goroutines_x other\ngo_goroutines_x 99\n# TYPE go_goroutines gauge\ngo_goroutines 42\n"
	if g, err := ParseGoroutines(strings.NewReader(text)); err != nil || g != 42 {
		t.Fatalf("got %d, %v; want 42", g, err)
	}
	if g, err := ParseGoroutines(strings.NewReader("go_goroutines{a=\"b\"} 7\n")); err != nil || g != 7 {
		t.Fatalf("labelled: got %d, %v; want 7", g, err)
	}
	if _, err := ParseGoroutines(strings.NewReader("process_open_fds 3\n")); err == nil {
		t.Fatal("no go_goroutines: want an error")
	}
}

func TestNameAndMetricsURL(t *testing.T) {
	for _, tc := range []struct {
		p         Proc
		name, url string
	}{
		{Proc{1, "/b/shoal-coordinator", "/b/shoal-coordinator serve --node-id n2 --http-addr 127.0.0.1:9 --rpc-addr 127.0.0.1:8"}, "coordinator n2", "http://127.0.0.1:9/metrics"},
		{Proc{2, "/b/shoal-lb", "/b/shoal-lb serve --listen 127.0.0.1:1 --admin-addr 127.0.0.1:2"}, "lb", "http://127.0.0.1:2/metrics"},
		{Proc{3, "/b/shoal-demoapp", "/b/shoal-demoapp --listen 127.4.5.6:8080 --capacity 50"}, "demoapp 127.4.5.6", "http://127.4.5.6:8080/metrics"},
		{Proc{4, "/b/shoal-agent", "/b/shoal-agent --scrape http://127.4.5.6:8080/metrics --http-addr 127.4.5.6:9101"}, "agent 127.4.5.6", "http://127.4.5.6:9101/metrics"},
		{Proc{5, "/b/shoal-agent", "/b/shoal-agent --scrape http://127.4.5.7:8080/metrics"}, "agent 127.4.5.7", ""},
		{Proc{6, "/b/shoal-localcloud", "/b/shoal-localcloud serve --addr 127.0.0.1:3"}, "localcloud", ""},
		{Proc{7, "/b/other", "/b/other"}, "other pid 7", ""},
	} {
		if got := Name(tc.p); got != tc.name {
			t.Errorf("Name(%q) = %q, want %q", tc.p.Args, got, tc.name)
		}
		if got := MetricsURL(tc.p); got != tc.url {
			t.Errorf("MetricsURL(%q) = %q, want %q", tc.p.Args, got, tc.url)
		}
	}
}

func TestUnderTest(t *testing.T) {
	for _, tc := range []struct {
		p    Proc
		want bool
	}{
		{Proc{1, "/b/shoal-coordinator", "/b/shoal-coordinator serve --node-id n1"}, true},
		{Proc{2, "/b/shoal-coordinator", "/b/shoal-coordinator --address 127.0.0.1:1 -o json status"}, false},
		{Proc{3, "/b/shoal-lb", "/b/shoal-lb serve --listen 127.0.0.1:1"}, true},
		{Proc{4, "/b/shoal-lb", "/b/shoal-lb loadtest --target http://127.0.0.1:1/"}, false},
		{Proc{5, "/b/shoal-agent", "/b/shoal-agent --scrape http://127.4.5.6:8080/metrics"}, true},
	} {
		if got := UnderTest(tc.p); got != tc.want {
			t.Errorf("UnderTest(%q) = %v, want %v", tc.p.Args, got, tc.want)
		}
	}
}

func TestSchedule(t *testing.T) {
	c := DefaultConfig()
	c.Duration, c.SpikeEvery, c.SpikeFor = 10*time.Minute, 4*time.Minute, time.Minute
	var got []string
	var sum time.Duration
	for _, p := range c.Schedule() {
		got = append(got, fmt.Sprintf("%s+%s@%d", p.Start, p.Length, p.RPS))
		sum += p.Length
	}
	want := "0s+3m0s@40 3m0s+1m0s@200 4m0s+3m0s@40 7m0s+1m0s@200 8m0s+2m0s@40"
	if strings.Join(got, " ") != want {
		t.Fatalf("schedule %s, want %s", strings.Join(got, " "), want)
	}
	if sum != c.Duration {
		t.Fatalf("phases add up to %s, want %s", sum, c.Duration)
	}
}

func TestParseSummary(t *testing.T) {
	out := "t=1s rate=40 ok=40 err=0\nsummary requests=1200 ok=1197 errors=3 rps=40 p50_ms=1 p99_ms=4 dropped=466\nerrors_by_code 502=3\n"
	r := ParseSummary(strings.NewReader(out))
	if r == nil || r.Total != 1200 || r.OK != 1197 || r.Failed != 3 || r.Unsent != 466 {
		t.Fatalf("got %+v", r)
	}
	r = parseLoadOutput(strings.NewReader(out + "errors_by_code http_503=2;timeout=1\n"))
	if r == nil || r.Failed != 3 || r.Unsent != 466 || r.FailedByCode["http_503"] != 2 || r.FailedByCode["timeout"] != 1 {
		t.Fatalf("with codes: got %+v", r)
	}
	if ParseSummary(strings.NewReader("t=1s rate=40\n")) != nil {
		t.Fatal("no summary line: want nil")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.BinDir = "bin"
	if err := ok.Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	for _, tc := range []struct {
		field string
		mod   func(*Config)
	}{
		{"bin dir", func(c *Config) { c.BinDir = "" }},
		{"duration", func(c *Config) { c.Duration = 48 * time.Hour }},
		{"warm up", func(c *Config) { c.WarmUp = c.Duration }},
		{"spike", func(c *Config) { c.SpikeFor = c.SpikeEvery }},
		{"rates", func(c *Config) { c.SpikeRPS = 1 }},
		{"agent http port", func(c *Config) { c.AgentHTTPPort = 70000 }},
	} {
		c := ok
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v", tc.field, err)
		}
	}
	c, err := FromEnv(ok, func(k string) string { return map[string]string{"SOAK_DURATION": "45s"}[k] })
	if err != nil || c.Duration != 45*time.Second || c.WarmUp != 9*time.Second {
		t.Fatalf("FromEnv: %v %v %v", c.Duration, c.WarmUp, err)
	}
	if _, err := FromEnv(ok, func(string) string { return "soon" }); err == nil {
		t.Fatal("bad SOAK_DURATION: want an error")
	}
}

// TestSamplerReadsThisProcess samples the test binary itself, its /metrics
// served by a test server: RSS and fds from /proc are positive, goroutines
// are read from go_goroutines, and Summarize computes a slope from the
// points after the warm-up only.
func TestSamplerReadsThisProcess(t *testing.T) {
	g := 10
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "go_goroutines %d\n", g)
		g += 5
	}))
	defer srv.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	me := Proc{PID: os.Getpid(), Exe: "/x/shoal-lb", Args: "shoal-lb serve --admin-addr " + strings.TrimPrefix(srv.URL, "http://")}
	gone := Proc{PID: 1 << 30, Exe: self}
	now := time.Unix(1000, 0)
	s, err := NewSampler(func() ([]Proc, error) { return []Proc{me, gone}, nil }, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if err := s.Sample(context.Background()); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Second)
	}
	series := s.Series()
	if len(series) != 1 || series[0].Name != "lb" || len(series[0].Points) != 6 {
		t.Fatalf("series %+v: want one of 6 points (the gone pid skipped)", series)
	}
	for _, p := range series[0].Points {
		if p.RSS <= 0 || p.FDs <= 0 || p.Goroutines < 10 {
			t.Fatalf("point %+v", p)
		}
	}
	rows := Summarize(series, 20*time.Second)
	// Goroutines rise by 5 every 10 s: 1800 per hour, after the warm-up too.
	if rows[0].GoSlope == nil || math.Abs(*rows[0].GoSlope-1800) > 1e-6 || rows[0].RSSSlope == nil || rows[0].FDSlope == nil {
		t.Fatalf("row %+v", rows[0])
	}
	var b bytes.Buffer
	rep := &Report{Processes: rows, Requests: Requests{Total: 10, OK: 10}}
	if err := WriteTable(&b, rep); err != nil || !strings.Contains(b.String(), "1800.0") || !strings.Contains(b.String(), "failed 0") {
		t.Fatalf("table %v:\n%s", err, b.String())
	}
	dir := t.TempDir()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.json", "report.txt"} {
		if st, err := os.Stat(dir + "/" + f); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

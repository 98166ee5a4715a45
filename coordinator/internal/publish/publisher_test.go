package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/encoding/cbor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testPublisherConfig() Config {
	c := DefaultConfig()
	c.Cluster = "shoal"
	c.RetryBase = time.Millisecond
	c.RetryMax = 5 * time.Millisecond
	c.Logger = quietLogger()
	return c
}

func newTestPublisher(t *testing.T, api API, edit func(*Config)) *Publisher {
	t.Helper()
	c := testPublisherConfig()
	if edit != nil {
		edit(&c)
	}
	p, err := New(api, c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// bigPeriod holds n datums in all: the heartbeat plus n-1 per-instance
// series (3 metrics per instance, the remainder as fleet metrics).
func bigPeriod(n int) Period {
	f := FleetStats{Fleet: "web", Group: "web-asg", PerInstance: true, Metrics: map[string]Stats{}, Instances: map[string]map[string]Stats{}}
	rest := n - 1
	st := Stats{SampleCount: 10, Sum: 500, Min: 40, Max: 60}
	for i := 0; rest >= 3; i++ {
		f.Instances[fmt.Sprintf("i-%05d", i)] = map[string]Stats{"cpu": st, "mem": st, "requests_per_target": st}
		rest -= 3
	}
	for _, m := range []string{"cpu", "mem"}[:rest] {
		f.Metrics[m] = st
	}
	return Period{Start: t0, Fleets: []FleetStats{f}}
}

func requestSizes(rs []request) []int {
	var out []int
	for _, r := range rs {
		out = append(out, len(r.datums))
	}
	return out
}

func TestBuildSplitsUnderLimits(t *testing.T) {
	long := strings.Repeat("g", 255)
	tests := []struct {
		name      string
		period    Period
		maxBytes  int
		wantSizes []int
	}{
		{"one datum is just the heartbeat", Period{Start: t0}, 0, []int{1}},
		{"exactly 1000", bigPeriod(1000), 0, []int{1000}},
		{"1001", bigPeriod(1001), 0, []int{1000, 1}},
		{"2,500 datums", bigPeriod(2500), 0, []int{1000, 1000, 500}},
		{"size-bound before count-bound", func() Period {
			p := bigPeriod(400)
			p.Fleets[0].Group = long
			return p
		}(), 40_000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPublisher(t, nil, func(c *Config) {
				if tt.maxBytes > 0 {
					c.MaxBytes = tt.maxBytes
				}
			})
			reqs := p.build(tt.period)
			total := 0
			for _, r := range reqs {
				if len(r.datums) > MaxDatumsPerRequest {
					t.Errorf("request with %d datums", len(r.datums))
				}
				sum := 0
				for _, d := range r.datums {
					sum += datumSize(d)
				}
				if sum != r.bytes || r.bytes > p.cfg.MaxBytes {
					t.Errorf("request bytes %d (recomputed %d) over %d", r.bytes, sum, p.cfg.MaxBytes)
				}
				if !r.period.Equal(t0) {
					t.Errorf("request period %v", r.period)
				}
				total += len(r.datums)
			}
			if tt.wantSizes != nil && fmt.Sprint(requestSizes(reqs)) != fmt.Sprint(tt.wantSizes) {
				t.Errorf("sizes = %v, want %v", requestSizes(reqs), tt.wantSizes)
			}
			if tt.wantSizes == nil && len(reqs) < 2 {
				t.Errorf("size-bound case made %d requests, want several", len(reqs))
			}
			want := 0
			for _, f := range tt.period.Fleets {
				want += len(f.Metrics)
				for _, ms := range f.Instances {
					want += len(ms)
				}
			}
			if total != want+1 {
				t.Errorf("%d datums in requests, want %d", total, want+1)
			}
		})
	}
}

func findDatum(ds []types.MetricDatum, metric string, dims map[string]string) *types.MetricDatum {
	for i, d := range ds {
		if sdkaws.ToString(d.MetricName) == metric && fmt.Sprint(dimMap(d.Dimensions)) == fmt.Sprint(dims) {
			return &ds[i]
		}
	}
	return nil
}

func TestBuildDatums(t *testing.T) {
	st := Stats{SampleCount: 4, Sum: 200, Min: 20, Max: 80}
	period := Period{Start: t0, Fleets: []FleetStats{
		{Fleet: "web", Group: "web-asg", Metrics: map[string]Stats{"cpu": st, "mem": st, "requests_per_target": st, "load1": st, "queue_depth": st, "empty": {}, "broken": {SampleCount: 1, Sum: math.NaN(), Min: 1, Max: 1}},
			Instances: map[string]map[string]Stats{"i-1": {"cpu": st}}},
		{Fleet: "api", Group: "api-asg", PerInstance: true, Metrics: map[string]Stats{"cpu": st},
			Instances: map[string]map[string]Stats{"i-2": {"cpu": st}}},
	}}
	web := map[string]string{DimGroup: "web-asg", DimCluster: "shoal"}
	api := map[string]string{DimGroup: "api-asg", DimCluster: "shoal"}
	tests := []struct {
		name     string
		interval time.Duration
		metric   string
		dims     map[string]string
		present  bool
		unit     types.StandardUnit
		res      int32
	}{
		{"cpu maps to CPUUtilization", 10 * time.Second, "CPUUtilization", web, true, "Percent", 1},
		{"mem maps to MemoryUtilization", 10 * time.Second, "MemoryUtilization", web, true, "Percent", 1},
		{"requests_per_target maps", 10 * time.Second, "RequestsPerTarget", web, true, "Count/Second", 1},
		{"custom keeps its name", 10 * time.Second, "queue_depth", web, true, "None", 1},
		{"load1 is not a standard metric", 10 * time.Second, "LoadAverage1", web, false, "", 0},
		{"an empty statistic set is skipped", 10 * time.Second, "empty", web, false, "", 0},
		{"a NaN statistic set is skipped", 10 * time.Second, "broken", web, false, "", 0},
		{"per-instance off: no instance series", 10 * time.Second, "CPUUtilization", map[string]string{DimGroup: "web-asg", DimCluster: "shoal", DimInstance: "i-1"}, false, "", 0},
		{"per-instance on: instance series", 10 * time.Second, "CPUUtilization", map[string]string{DimGroup: "api-asg", DimCluster: "shoal", DimInstance: "i-2"}, true, "Percent", 1},
		{"second fleet", 10 * time.Second, "CPUUtilization", api, true, "Percent", 1},
		{"heartbeat", 10 * time.Second, HeartbeatMetric, map[string]string{DimCluster: "shoal"}, true, "Count", 1},
		{"60 s interval is standard resolution", time.Minute, "CPUUtilization", web, true, "Percent", 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPublisher(t, nil, func(c *Config) { c.Interval = tt.interval })
			ds := datumsOf(p.build(period))
			d := findDatum(ds, tt.metric, tt.dims)
			if (d != nil) != tt.present {
				t.Fatalf("datum %s %v present = %v, want %v", tt.metric, tt.dims, d != nil, tt.present)
			}
			if d == nil {
				return
			}
			if d.Unit != tt.unit || sdkaws.ToInt32(d.StorageResolution) != tt.res || !sdkaws.ToTime(d.Timestamp).Equal(t0) {
				t.Errorf("unit %q res %d ts %v", d.Unit, sdkaws.ToInt32(d.StorageResolution), sdkaws.ToTime(d.Timestamp))
			}
			sv := d.StatisticValues
			if tt.metric != HeartbeatMetric && (sdkaws.ToFloat64(sv.SampleCount) != 4 || sdkaws.ToFloat64(sv.Sum) != 200 || sdkaws.ToFloat64(sv.Minimum) != 20 || sdkaws.ToFloat64(sv.Maximum) != 80) {
				t.Errorf("statistic set = %+v", sv)
			}
		})
	}
}

func TestCustomMetricCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newTestPublisher(t, nil, func(c *Config) { c.MaxCustomMetrics = 2; c.Registerer = reg })
	st := Stats{SampleCount: 1, Sum: 1, Min: 1, Max: 1}
	ms := map[string]Stats{"cpu": st, "a_custom": st, "b_custom": st, "c_custom": st}
	ds := datumsOf(p.build(Period{Start: t0, Fleets: []FleetStats{{Fleet: "web", Group: "g", Metrics: ms}}}))
	var names []string
	for _, d := range ds {
		names = append(names, sdkaws.ToString(d.MetricName))
	}
	if got := strings.Join(names, ","); got != HeartbeatMetric+",a_custom,b_custom,CPUUtilization" {
		t.Errorf("published %s", got)
	}
	if n := testutil.ToFloat64(p.custom.Refused().WithLabelValues("web")); n != 1 {
		t.Errorf("refused counter = %v, want 1", n)
	}
	err := p.custom.Admit("web", "d_custom")
	if !errors.Is(err, ErrTooManyCustomMetrics) || !strings.Contains(err.Error(), `fleet "web" already has 2 custom metrics (a_custom, b_custom)`) {
		t.Errorf("Admit error = %v", err)
	}
	if err := p.custom.Admit("api", "d_custom"); err != nil {
		t.Errorf("another fleet has its own cap: %v", err)
	}
	if err := p.custom.Admit("web", "cpu"); err != nil {
		t.Errorf("vocabulary metrics do not count: %v", err)
	}
	if err := p.custom.Admit("web", "bad\nname"); !errors.Is(err, ErrBadMetricName) {
		t.Errorf("bad name: %v", err)
	}
}

func TestPublishThroughCBORServer(t *testing.T) {
	s := &cborServer{}
	cw := startCBOR(t, s, 3)
	p := newTestPublisher(t, cw, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if err := p.Publish(bigPeriod(2500)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "three PutMetricData requests", func() bool { return len(s.putRequests()) == 3 })
	total := 0
	for _, r := range s.putRequests() {
		if r.namespace != Namespace {
			t.Errorf("namespace %q", r.namespace)
		}
		if len(r.datums) > 1000 || r.bytes > MaxRequestBytes {
			t.Errorf("request of %d datums, %d bytes", len(r.datums), r.bytes)
		}
		total += len(r.datums)
	}
	if total != 2500 {
		t.Errorf("%d datums arrived, want 2500", total)
	}
	first := s.putRequests()[0].datums[0]
	if first["MetricName"].(cbor.String) != HeartbeatMetric {
		t.Errorf("first datum = %v", first)
	}
	if _, ok := first["StatisticValues"].(cbor.Map); !ok {
		t.Errorf("no StatisticValues in %v", first)
	}
}

func TestThrottlingIsRetriedAndDropsAreCounted(t *testing.T) {
	var mu sync.Mutex
	throttle := true
	s := &cborServer{fail: func(int) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if throttle {
			return 400, "Throttling"
		}
		return 0, ""
	}}
	cw := startCBOR(t, s, 2)
	reg := prometheus.NewRegistry()
	p := newTestPublisher(t, cw, func(c *Config) { c.QueueSize = 3; c.Registerer = reg })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Five one-request periods against a throttling CloudWatch and a queue
	// of three: the SDK retries each attempt, Run retries the request, and
	// the oldest periods are dropped to make room.
	for i := range 5 {
		if err := p.Publish(Period{Start: t0.Add(time.Duration(i) * 10 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "retries", func() bool { return s.calls() >= 6 })
	dropped := testutil.ToFloat64(p.m.droppedBatches.WithLabelValues("queue_full"))
	if dropped < 1 {
		t.Fatalf("dropped = %v, want >= 1", dropped)
	}
	mu.Lock()
	throttle = false
	mu.Unlock()
	eventually(t, 10*time.Second, "the queue to drain", func() bool {
		return p.QueueLen() == 0 && len(s.putRequests())+int(testutil.ToFloat64(p.m.droppedBatches.WithLabelValues("queue_full"))) == 5
	})
	puts := s.putRequests()
	// What got through is in order, none twice, and includes the newest.
	var last time.Time
	for _, r := range puts {
		ts, err := cbor.AsTime(r.datums[0]["Timestamp"])
		if err != nil {
			t.Fatal(err)
		}
		if !ts.After(last) {
			t.Errorf("period %v sent after %v", ts, last)
		}
		last = ts
	}
	if !last.Equal(t0.Add(40 * time.Second)) {
		t.Errorf("newest period sent = %v, want %v", last, t0.Add(40*time.Second))
	}
	if n, err := testutil.GatherAndCount(reg, "shoal_publish_dropped_batches_total"); err != nil || n != 2 {
		t.Errorf("registered drop series = %d (%v), want 2 (queue_full, rejected)", n, err)
	}
	if testutil.ToFloat64(p.m.requests.WithLabelValues("error")) < 1 {
		t.Error("no failed request counted")
	}
}

// TestRejectedBatchIsDroppedNotRetried: a batch CloudWatch refuses for good
// (a 400 that is not throttling) is dropped and counted once, and the next
// period still goes out.
func TestRejectedBatchIsDroppedNotRetried(t *testing.T) {
	s := &cborServer{fail: func(n int) (int, string) {
		if n == 1 {
			return 400, "InvalidParameterValue"
		}
		return 0, ""
	}}
	cw := startCBOR(t, s, 3)
	p := newTestPublisher(t, cw, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := range 2 {
		if err := p.Publish(Period{Start: t0.Add(time.Duration(i) * 10 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "the second period", func() bool { return len(s.putRequests()) == 1 })
	if n := s.calls(); n != 2 {
		t.Errorf("%d calls, want 2 (the refused one is not retried)", n)
	}
	if n := testutil.ToFloat64(p.m.droppedBatches.WithLabelValues("rejected")); n != 1 {
		t.Errorf("rejected drops = %v, want 1", n)
	}
	if ts, _ := cbor.AsTime(s.putRequests()[0].datums[0]["Timestamp"]); !ts.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("sent period %v, want the second", ts)
	}
}

package runner

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoal-dev/shoal/agent/internal/collect"
	"github.com/shoal-dev/shoal/agent/internal/health"
	"github.com/shoal-dev/shoal/agent/internal/stream"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

type srcFunc func(time.Time) (map[string]float64, error)

func (f srcFunc) Collect(t time.Time) (map[string]float64, error) { return f(t) }

type checkFunc func(context.Context) health.Result

func (f checkFunc) Check(ctx context.Context) health.Result { return f(ctx) }

type sink struct {
	mu      sync.Mutex
	samples []*shoalv1.Sample
	ready   []bool
	reasons []string
}

func (s *sink) Push(x *shoalv1.Sample, ready bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples, s.ready, s.reasons = append(s.samples, x), append(s.ready, ready), append(s.reasons, reason)
}

func (s *sink) Stats() stream.Stats { return stream.Stats{Dropped: 7, Connected: true} }

func TestTick(t *testing.T) {
	now := time.UnixMilli(1700000000123)
	cases := []struct {
		name     string
		sources  []Source
		health   health.Checker
		want     map[string]float64
		ready    bool
		reason   string
		errCount float64
	}{
		{"merged sources", []Source{
			srcFunc(func(time.Time) (map[string]float64, error) { return map[string]float64{"cpu": 10, "mem": 20}, nil }),
			srcFunc(func(time.Time) (map[string]float64, error) { return map[string]float64{"queue": 3}, nil }),
		}, nil, map[string]float64{"cpu": 10, "mem": 20, "queue": 3}, true, "", 0},
		{"failing source keeps the others", []Source{
			srcFunc(func(time.Time) (map[string]float64, error) { return map[string]float64{"cpu": 1}, nil }),
			srcFunc(func(time.Time) (map[string]float64, error) { return nil, errors.New("scrape down") }),
		}, checkFunc(func(context.Context) health.Result { return health.Result{Reason: "503"} }),
			map[string]float64{"cpu": 1}, false, "503", 1},
		{"nothing yet pushes nothing", []Source{
			srcFunc(func(time.Time) (map[string]float64, error) { return nil, nil }),
		}, nil, nil, true, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sk := &sink{}
			reg := prometheus.NewRegistry()
			r, err := New(Config{Interval: time.Second, Sources: tc.sources, Health: tc.health, Sink: sk,
				Now: func() time.Time { return now }, Registerer: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			r.Tick(context.Background())
			if tc.want == nil {
				if len(sk.samples) != 0 {
					t.Fatalf("pushed %v", sk.samples)
				}
				return
			}
			if len(sk.samples) != 1 {
				t.Fatalf("pushed %d samples", len(sk.samples))
			}
			s := sk.samples[0]
			if s.GetUnixMs() != now.UnixMilli() || len(s.GetValues()) != len(tc.want) {
				t.Fatalf("sample = %v", s)
			}
			for k, v := range tc.want {
				if s.GetValues()[k] != v {
					t.Errorf("%s = %v, want %v", k, s.GetValues()[k], v)
				}
			}
			if sk.ready[0] != tc.ready || sk.reasons[0] != tc.reason {
				t.Errorf("ready %v %q, want %v %q", sk.ready[0], sk.reasons[0], tc.ready, tc.reason)
			}
			if got := testutil.ToFloat64(r.collectErrs); got != tc.errCount {
				t.Errorf("collect errors = %v, want %v", got, tc.errCount)
			}
		})
	}
}

func TestOwnMetricsSayHostWide(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := New(Config{Interval: time.Second, Scope: collect.ScopeCgroup, Sink: &sink{}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	helps := map[string]string{}
	values := map[string]float64{}
	for _, mf := range mfs {
		helps[mf.GetName()] = mf.GetHelp()
		if m := mf.GetMetric(); len(m) == 1 {
			values[mf.GetName()] = m[0].GetCounter().GetValue() + m[0].GetGauge().GetValue()
		}
	}
	for _, m := range []string{"shoal_agent_net_rx", "shoal_agent_net_tx", "shoal_agent_disk", "shoal_agent_load1"} {
		if !strings.Contains(helps[m], "HOST-WIDE") {
			t.Errorf("%s help %q does not say it is host-wide", m, helps[m])
		}
	}
	if values["shoal_agent_dropped_samples_total"] != 7 || values["shoal_agent_stream_connected"] != 1 {
		t.Errorf("stream stats not exposed: %v", values)
	}
}

func TestRepeatedErrorsLoggedOnce(t *testing.T) {
	var buf strings.Builder
	now := time.Unix(1700000000, 0)
	failing := srcFunc(func(time.Time) (map[string]float64, error) { return nil, errors.New("scrape down") })
	r, err := New(Config{Interval: time.Second, Sources: []Source{failing}, Sink: &sink{},
		Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		now = time.Unix(1700000000+int64(i), 0)
		r.Tick(context.Background())
	}
	if n := strings.Count(buf.String(), "scrape down"); n != 1 {
		t.Errorf("logged %d times in 30 s, want once", n)
	}
	now = now.Add(time.Minute)
	r.Tick(context.Background())
	if n := strings.Count(buf.String(), "scrape down"); n != 2 {
		t.Errorf("logged %d times after a minute, want twice", n)
	}
	if got := testutil.ToFloat64(r.collectErrs); got != 31 {
		t.Errorf("collect errors = %v, want every failure counted (31)", got)
	}
}

package publish

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// source is a Source with fixed numbers that records which periods it was
// asked for.
type source struct {
	mu      sync.Mutex
	fleets  []*shoalv1.Fleet
	fleet   map[string]Stats
	per     map[string]map[string]Stats
	rpt     float64
	rptOK   bool
	periods []time.Time
}

func (s *source) Fleets() []*shoalv1.Fleet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fleets
}

func (s *source) PeriodStats(_ string, from, _ time.Time) (map[string]Stats, map[string]map[string]Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.periods = append(s.periods, from)
	return s.fleet, s.per
}

func (s *source) RequestsPerTarget(string) (float64, bool) { return s.rpt, s.rptOK }

func (s *source) asked() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.periods)
}

func TestPeriodStatsKeepsWhatMayBePublished(t *testing.T) {
	st := Stats{SampleCount: 3, Sum: 150, Min: 40, Max: 60}
	src := &source{
		fleet: map[string]Stats{"cpu": st, "mem": {}, "queue_depth": st, "jobs_waiting": st},
		per:   map[string]map[string]Stats{"i-1": {"cpu": st, "mem": st}, "i-2": {"cpu": {}}},
		rpt:   42, rptOK: true,
	}
	p := newTestPublisher(t, newAlarmStore(), func(c *Config) { c.MaxCustomMetrics = 1 })
	for _, tc := range []struct {
		name      string
		perInst   bool
		wantInsts map[string][]string
	}{
		{"fleet only", false, nil},
		{"per instance: only metrics kept for the fleet, only sampled ones", true, map[string][]string{"i-1": {"cpu"}, "i-2": {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := p.periodStats(src, &shoalv1.Fleet{Name: "web", Asg: "web-asg", PublishPerInstance: tc.perInst}, t0, t0.Add(10*time.Second))
			if fs.Fleet != "web" || fs.Group != "web-asg" || fs.PerInstance != tc.perInst {
				t.Fatalf("fleet stats header = %+v", fs)
			}
			custom := 0
			for m := range fs.Metrics {
				if IsCustom(m) {
					custom++
				}
			}
			if _, ok := fs.Metrics["mem"]; ok {
				t.Fatal("mem had no samples and was kept")
			}
			if fs.Metrics["cpu"] != st || custom != 1 || fs.Metrics["requests_per_target"].Sum != 42 || len(fs.Metrics) != 3 {
				t.Fatalf("metrics = %v, want cpu, requests_per_target and one custom metric (cap 1)", fs.Metrics)
			}
			if tc.wantInsts == nil {
				if fs.Instances != nil {
					t.Fatalf("instances = %v for a fleet that does not publish them", fs.Instances)
				}
				return
			}
			for id, want := range tc.wantInsts {
				var got []string
				for m := range fs.Instances[id] {
					got = append(got, m)
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Fatalf("instance %s metrics = %v, want %v", id, got, want)
				}
			}
		})
	}
}

func TestRunPeriodsPublishesEachCompletePeriodOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{fleets: []*shoalv1.Fleet{{Name: "web", Asg: "web-asg"}}, fleet: map[string]Stats{"cpu": {SampleCount: 1, Sum: 50, Min: 50, Max: 50}}}
		p := newTestPublisher(t, newAlarmStore(), nil)
		start := time.Now()
		// A restored watermark: the period before it is never asked for again.
		p.Restore(start.Truncate(10 * time.Second).Add(-10 * time.Second))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); p.RunPeriods(ctx, src) }()
		time.Sleep(25 * time.Second)
		cancel()
		<-done
		base := start.Truncate(10 * time.Second)
		want := []time.Time{base, base.Add(10 * time.Second)}
		if got := src.asked(); !slices.EqualFunc(got, want, time.Time.Equal) {
			t.Fatalf("periods asked = %v, want %v (each complete period after the watermark, once)", got, want)
		}
		if n := p.QueueLen(); n != 2 {
			t.Fatalf("queued requests = %d, want one per period", n)
		}
	})
}

func TestRunAlarmsFollowsTheFleets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newAlarmStore()
		r, err := NewReconciler(store, ReconcilerConfig{Cluster: "shoal", HeartbeatPeriod: 10 * time.Second, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		src := &source{fleets: []*shoalv1.Fleet{{Name: "web", Asg: "web-asg", Policy: cpuPolicy(50)}}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); r.RunAlarms(ctx, src, 10*time.Second) }()
		synctest.Wait()
		if got, want := store.names(), []string{"shoal-coordinator-heartbeat", "shoal-web-cpu-high", "shoal-web-cpu-low"}; !slices.Equal(got, want) {
			t.Fatalf("alarms at start = %v, want %v", got, want)
		}
		src.mu.Lock()
		src.fleets = nil
		src.mu.Unlock()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got, want := store.names(), []string{"shoal-coordinator-heartbeat"}; !slices.Equal(got, want) {
			t.Fatalf("alarms after the fleet went = %v, want %v", got, want)
		}
		cancel()
		<-done
	})
}

package ingest

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
)

// TestSampleLatencyObserved: the leader observes now − sample time for live
// samples as they enter its ring, counts old ones as backlog instead, and a
// follower (which only queues) observes nothing.
func TestSampleLatencyObserved(t *testing.T) {
	now := time.Unix(1700000000, 0)
	cases := []struct {
		name        string
		leader      bool
		ages        []time.Duration // now − sample time; negative is ahead of the clock
		wantCount   uint64
		wantSum     float64
		wantBacklog float64
		// wantLE is the count in the bucket with upper bound 0.03 s.
		wantLE30ms uint64
	}{
		{"live samples", true, []time.Duration{30 * time.Millisecond, 250 * time.Millisecond}, 2, 0.28, 0, 1},
		{"backlog left out", true, []time.Duration{10 * time.Second, 6 * time.Second, 20 * time.Millisecond}, 1, 0.02, 2, 1},
		{"clock skew counts as zero", true, []time.Duration{-2 * time.Second}, 1, 0, 0, 1},
		{"follower observes nothing", false, []time.Duration{30 * time.Millisecond}, 0, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			cl := &fakeCluster{id: "n1", leader: tc.leader, leaderAddr: "n2"}
			s, err := New(latencyConfig(now, reg), cl, newRegistry())
			if err != nil {
				t.Fatal(err)
			}
			rep := &clusterv1.InstanceReport{Hello: hello("i-1", 1)}
			for _, age := range tc.ages {
				rep.Samples = append(rep.Samples, smp(now.Add(-age), "cpu", 1.0))
			}
			if err := s.route(rep); err != nil {
				t.Fatal(err)
			}
			h := histogram(t, reg, "shoal_ingest_sample_latency_seconds")
			if h.GetSampleCount() != tc.wantCount || math.Abs(h.GetSampleSum()-tc.wantSum) > 1e-9 {
				t.Errorf("histogram count %d sum %g, want %d and %g", h.GetSampleCount(), h.GetSampleSum(), tc.wantCount, tc.wantSum)
			}
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() == 0.03 && b.GetCumulativeCount() != tc.wantLE30ms {
					t.Errorf("bucket le=0.03 has %d, want %d", b.GetCumulativeCount(), tc.wantLE30ms)
				}
			}
			if got := testutil.ToFloat64(s.m.backlog); got != tc.wantBacklog {
				t.Errorf("backlog %g, want %g", got, tc.wantBacklog)
			}
		})
	}
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("%s not registered", name)
	return nil
}

func latencyConfig(now time.Time, reg prometheus.Registerer) Config {
	c := testConfig()
	c.Now = func() time.Time { return now }
	c.Registerer = reg
	return c
}

package cwstore

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func TestPutValidation(t *testing.T) {
	id := MetricID{Namespace: "Shoal", MetricName: "CPU"}
	cases := []struct {
		name string
		d    Datum
		want error
	}{
		{"valid", Datum{Metric: id, Values: []float64{1}}, nil},
		{"no namespace", Datum{Metric: MetricID{MetricName: "x"}}, ErrMissingParameter},
		{"reserved namespace", Datum{Metric: MetricID{Namespace: "AWS/EC2", MetricName: "x"}}, ErrInvalidParameter},
		{"storage resolution 5", Datum{Metric: id, StorageResolution: 5}, ErrInvalidParameter},
		{"counts mismatch", Datum{Metric: id, Values: []float64{1, 2}, Counts: []float64{1}}, ErrInvalidParameter},
		{"statistic set min above max", Datum{Metric: id, Stats: &StatisticSet{SampleCount: 1, Minimum: 5, Maximum: 1}}, ErrInvalidParameter},
		{"too old", Datum{Metric: id, Timestamp: t0.Add(-15 * 24 * time.Hour)}, ErrInvalidParameter},
		{"too far ahead", Datum{Metric: id, Timestamp: t0.Add(3 * time.Hour)}, ErrInvalidParameter},
		{"empty dimension value", Datum{Metric: MetricID{Namespace: "S", MetricName: "x", Dimensions: []Dimension{{Name: "a"}}}}, ErrInvalidParameter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := NewStore().Put(t0, []Datum{c.d})
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Put = %v, want %v", err, c.want)
			}
		})
	}
}

func TestQueryAggregatesByPeriodAndResolution(t *testing.T) {
	s := NewStore()
	id := MetricID{Namespace: "Shoal", MetricName: "RPS", Dimensions: []Dimension{{"b", "2"}, {"a", "1"}}}
	same := MetricID{Namespace: "Shoal", MetricName: "RPS", Dimensions: []Dimension{{"a", "1"}, {"b", "2"}}}
	if err := s.Put(t0, []Datum{
		{Metric: id, Timestamp: t0.Add(1 * time.Second), Values: []float64{1}, StorageResolution: 1},
		{Metric: id, Timestamp: t0.Add(2 * time.Second), Values: []float64{3}, StorageResolution: 1},
		{Metric: id, Timestamp: t0.Add(30 * time.Second), Values: []float64{5}},
	}); err != nil {
		t.Fatal(err)
	}
	hr, err := s.Query(same, t0, t0.Add(10*time.Second), time.Second, "", MaxStatisticsDatapoints)
	if err != nil {
		t.Fatal(err)
	}
	if len(hr) != 3 { // 1 s, 2 s and the standard-resolution point stored at 0 s
		t.Fatalf("1 s query found %d periods, want 3 (dimension order must not matter)", len(hr))
	}
	min, err := s.Query(same, t0, t0.Add(time.Minute), time.Minute, "", MaxStatisticsDatapoints)
	if err != nil || len(min) != 1 {
		t.Fatalf("minute query: %v %v", min, err)
	}
	for stat, want := range map[string]float64{"Sum": 9, "SampleCount": 3, "Average": 3, "Minimum": 1, "Maximum": 5, "p50": 3, "p100": 5} {
		if got, ok := min[0].Statistic(stat); !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", stat, got, ok, want)
		}
	}
	if _, err := s.Query(id, t0, t0.Add(2*time.Hour), time.Second, "", MaxStatisticsDatapoints); !errors.Is(err, ErrInvalidCombination) {
		t.Fatalf("7200 datapoints: %v", err)
	}
	if _, err := s.Query(id, t0, t0, time.Minute, "", MaxStatisticsDatapoints); !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("empty range: %v", err)
	}
	s.Prune(t0.Add(time.Hour), 30*time.Minute)
	if got := s.List("", "", nil); len(got) != 0 {
		t.Fatalf("prune kept %v", got)
	}
}

func TestPeriodValidation(t *testing.T) {
	for _, c := range []struct {
		p            int
		query, alarm bool
	}{
		{1, true, false}, {5, true, false}, {10, true, true}, {20, true, true}, {30, true, true},
		{45, false, false}, {60, true, true}, {90, false, false}, {120, true, true}, {0, false, false},
	} {
		if err := ValidateQueryPeriod(c.p); (err == nil) != c.query {
			t.Errorf("ValidateQueryPeriod(%d) = %v", c.p, err)
		}
		if err := ValidateAlarmPeriod(c.p); (err == nil) != c.alarm {
			t.Errorf("ValidateAlarmPeriod(%d) = %v", c.p, err)
		}
	}
}

func TestSeriesLimit(t *testing.T) {
	s := NewStore()
	for i := 0; i < MaxSeries; i++ {
		s.series[MetricID{Namespace: "S", MetricName: "m", Dimensions: []Dimension{{"i", strconv.Itoa(i)}}}.key()] = &series{}
	}
	err := s.Put(t0, []Datum{{Metric: MetricID{Namespace: "S", MetricName: "new"}, Values: []float64{1}}})
	if !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("Put beyond MaxSeries = %v", err)
	}
	if err := s.Put(t0, []Datum{{Metric: MetricID{Namespace: "S", MetricName: "m", Dimensions: []Dimension{{"i", "7"}}}, Values: []float64{1}}}); err != nil {
		t.Fatalf("Put to an existing metric at the limit: %v", err)
	}
}

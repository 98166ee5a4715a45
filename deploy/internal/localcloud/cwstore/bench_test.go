package cwstore

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkPut measures storing one-second data for 100 instances, the
// shape of a Shoal coordinator publishing per-instance metrics.
func BenchmarkPut(b *testing.B) {
	s := NewStore()
	batch := make([]Datum, 100)
	for i := range batch {
		batch[i] = Datum{Metric: MetricID{Namespace: "Shoal", MetricName: "CPU", Dimensions: []Dimension{{"InstanceId", "i-" + strconv.Itoa(i)}}},
			Values: []float64{float64(i)}, StorageResolution: 1}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := t0.Add(time.Duration(i%3600) * time.Second)
		for j := range batch {
			batch[j].Timestamp = now
		}
		if err := s.Put(now, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluate measures one alarm evaluation over an hour of
// one-second data (3600 points, 5 one-minute periods evaluated).
func BenchmarkEvaluate(b *testing.B) {
	s := NewStore()
	id := MetricID{Namespace: "Shoal", MetricName: "CPU"}
	for i := 0; i < 3600; i++ {
		ts := t0.Add(time.Duration(i) * time.Second)
		_ = s.Put(ts, []Datum{{Metric: id, Timestamp: ts, Values: []float64{float64(i % 100)}, StorageResolution: 1}})
	}
	a := NewAlarm(Alarm{Name: "a", Metric: id, Statistic: "Average", Period: 60, EvaluationPeriods: 5, Threshold: 50, ComparisonOperator: "GreaterThanThreshold"}, nil, t0)
	now := t0.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		a.Evaluate(s, now)
	}
}

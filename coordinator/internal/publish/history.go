package publish

import (
	"context"
	"fmt"
	"time"
)

// CloudWatch keeps sub-minute datapoints for 3 hours and 1-minute ones for
// 15 days ("Metrics retention",
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#metrics-retention).
const (
	HighResRetention = 3 * time.Hour
	MinuteRetention  = 15 * 24 * time.Hour
)

// HistorySample is one step of a fleet's history: the policy metric's
// fleet average and how many samples it averaged. Agents report once a
// second, so Count / Step is the number of reporting instances.
type HistorySample struct {
	T     time.Time
	Step  time.Duration
	Avg   float64
	Count float64
}

// History reads a fleet's metric back at the finest resolution CloudWatch
// still holds: 1 s for the last HighResRetention, 1 min before that, from
// now−since (at most MinuteRetention) to now. Steps without both an
// average and a sample count are left out.
func (r *Reader) History(ctx context.Context, group, metric string, since time.Duration, now time.Time) ([]HistorySample, error) {
	if since <= 0 || since > MinuteRetention {
		return nil, fmt.Errorf("since (%v): must be in (0, %v], what CloudWatch keeps at 1-minute resolution", since, MinuteRetention)
	}
	start := now.Add(-since)
	split := now.Add(-HighResRetention)
	var out []HistorySample
	if start.Before(split) {
		// Minute boundaries, so the coarse part ends where the fine one starts.
		split = split.Truncate(time.Minute)
		s, err := r.historyRange(ctx, group, metric, start.Truncate(time.Minute), split, time.Minute)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	} else {
		split = start
	}
	s, err := r.historyRange(ctx, group, metric, split, now, time.Second)
	if err != nil {
		return nil, err
	}
	return append(out, s...), nil
}

func (r *Reader) historyRange(ctx context.Context, group, metric string, from, to time.Time, step time.Duration) ([]HistorySample, error) {
	if !from.Before(to) {
		return nil, nil
	}
	q := Query{Group: group, Metric: metric, Start: from, End: to, Period: step}
	q.Stat = "Average"
	avg, err := r.Series(ctx, q)
	if err != nil {
		return nil, err
	}
	q.Stat = "SampleCount"
	cnt, err := r.Series(ctx, q)
	if err != nil {
		return nil, err
	}
	counts := make(map[int64]float64, len(cnt))
	for _, p := range cnt {
		counts[p.T.UnixNano()] = p.V
	}
	out := make([]HistorySample, 0, len(avg))
	for _, p := range avg {
		if c, ok := counts[p.T.UnixNano()]; ok && c > 0 {
			out = append(out, HistorySample{T: p.T, Step: step, Avg: p.V, Count: c})
		}
	}
	return out, nil
}

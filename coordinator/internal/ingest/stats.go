package ingest

import (
	"math"
	"time"
)

// Stats is one metric's raw samples over a period, the shape of a
// CloudWatch StatisticSet: unlike Agg, every sample counts, so the published
// Sum and SampleCount add up across instances and periods.
type Stats struct {
	Count         int
	Sum, Min, Max float64
}

func (s *Stats) add(v float64) {
	if s.Count == 0 || v < s.Min {
		s.Min = v
	}
	if s.Count == 0 || v > s.Max {
		s.Max = v
	}
	s.Count++
	s.Sum += v
}

func (s *Stats) merge(o Stats) {
	if o.Count == 0 {
		return
	}
	if s.Count == 0 || o.Min < s.Min {
		s.Min = o.Min
	}
	if s.Count == 0 || o.Max > s.Max {
		s.Max = o.Max
	}
	s.Count += o.Count
	s.Sum += o.Sum
}

// stats returns each metric's samples with from <= ts < to.
func (r *ring) stats(from, to int64) map[string]Stats {
	out := map[string]Stats{}
	for i, ts := range r.ts {
		if ts < from || ts >= to {
			continue
		}
		for name, c := range r.cols {
			v := float64(c[i])
			if math.IsNaN(v) {
				continue
			}
			s := out[name]
			s.add(v)
			out[name] = s
		}
	}
	return out
}

// PeriodStats returns fleet's samples with timestamps in [from, to): merged
// over the fleet's instances, and per instance. Only the leader has them; a
// follower gets nils.
func (s *Service) PeriodStats(fleet string, from, to time.Time) (map[string]Stats, map[string]map[string]Stats) {
	if !s.cluster.IsLeader() {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fleetStats := map[string]Stats{}
	per := map[string]map[string]Stats{}
	for id, in := range s.store.byFleet[fleet] {
		st := in.ring.stats(from.UnixMilli(), to.UnixMilli())
		if len(st) == 0 {
			continue
		}
		per[id] = st
		for m, v := range st {
			f := fleetStats[m]
			f.merge(v)
			fleetStats[m] = f
		}
	}
	return fleetStats, per
}

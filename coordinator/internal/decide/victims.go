package decide

import (
	"math"
	"sort"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Candidate is an instance a scale-in may drain: in service, unprotected
// and not already leaving (the caller filters on those).
type Candidate struct {
	ID, AZ string
	// Reported says the instance's agent reported recently; Metrics are its
	// latest values then.
	Reported bool
	Metrics  map[string]float64
	// AtRisk says EC2 recommended rebalancing the instance away (a Spot
	// rebalance recommendation): it is likely to be interrupted soon.
	AtRisk bool
	// NotServing says the instance takes no requests yet (still launching,
	// or not ready): removing it costs no drain and no capacity.
	NotServing bool
}

// Victims picks n instances to drain: balanced across AZs first (always
// from the AZ with the most candidates), then least loaded by the policy's
// first target-tracking metric (cpu without one), then newest id. An
// instance with no report serves no one we can see and goes first; one that
// reports without the metric goes last. Instances at risk come before all
// of that, newest id first: removing them costs nothing EC2 was not about
// to take. Then instances not serving yet, newest id first: a scale-in
// right after a scale-out must not drain the instances that serve and keep
// the ones still launching (the chaos harness saw an LB left with only
// draining backends). Fewer than n candidates yield all of them.
func Victims(p *shoalv1.ScalingPolicy, cands []Candidate, n int) []string {
	var risky, idle []string
	var rest []Candidate
	for _, c := range cands {
		switch {
		case c.AtRisk:
			risky = append(risky, c.ID)
		case c.NotServing:
			idle = append(idle, c.ID)
		default:
			rest = append(rest, c)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(risky)))
	sort.Sort(sort.Reverse(sort.StringSlice(idle)))
	first := append(risky, idle...)
	if len(first) >= n {
		return first[:max(n, 0)]
	}
	return append(first, victims(p, rest, n-len(first))...)
}

func victims(p *shoalv1.ScalingPolicy, cands []Candidate, n int) []string {
	metric := "cpu"
	if p != nil && len(p.TargetTracking) > 0 {
		metric = p.TargetTracking[0].Metric
	}
	type cand struct {
		id   string
		load float64
	}
	byAZ := map[string][]cand{}
	for _, c := range cands {
		load := math.Inf(1)
		if x, ok := c.Metrics[metric]; ok {
			load = x
		}
		if !c.Reported {
			load = math.Inf(-1)
		}
		byAZ[c.AZ] = append(byAZ[c.AZ], cand{id: c.ID, load: load})
	}
	for _, cs := range byAZ {
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].load != cs[j].load {
				return cs[i].load < cs[j].load
			}
			return cs[i].id > cs[j].id
		})
	}
	var out []string
	for len(out) < n {
		best := ""
		for az, cs := range byAZ {
			if len(cs) == 0 {
				continue
			}
			if best == "" || len(cs) > len(byAZ[best]) || (len(cs) == len(byAZ[best]) && az < best) {
				best = az
			}
		}
		if best == "" {
			break
		}
		out = append(out, byAZ[best][0].id)
		byAZ[best] = byAZ[best][1:]
	}
	return out
}

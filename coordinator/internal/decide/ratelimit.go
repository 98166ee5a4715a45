package decide

import (
	"fmt"
	"math"
	"strings"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// rateLimit caps the change per period in each direction. With both a count
// and a percentage, the larger change is allowed (as the HPA's default
// selectPolicy Max does). Changes already made inside the period count.
func rateLimit(now time.Time, current, desired int32, p *shoalv1.ScalingPolicy, events []Event) (int32, string) {
	switch {
	case desired > current && active(p.ScaleOutLimit):
		l := p.ScaleOutLimit
		period := Period(l)
		var added int32
		for _, e := range events {
			if e.To > e.From && e.At.After(now.Add(-period)) {
				added += e.To - e.From
			}
		}
		start := current - added
		limit := int32(math.MinInt32)
		if l.MaxInstances > 0 {
			limit = start + l.MaxInstances
		}
		if l.MaxPercent > 0 {
			pl := ceil(float64(start) * (1 + l.MaxPercent/100))
			if pl < start+1 {
				pl = start + 1
			}
			limit = max(limit, pl)
		}
		if desired > limit {
			out := max(limit, current)
			return out, fmt.Sprintf("scale_out_limit %s: at most %d (wanted %d)", describe(l), out, desired)
		}
	case desired < current && active(p.ScaleInLimit):
		l := p.ScaleInLimit
		period := Period(l)
		var removed int32
		for _, e := range events {
			if e.To < e.From && e.At.After(now.Add(-period)) {
				removed += e.From - e.To
			}
		}
		start := current + removed
		limit := int32(math.MaxInt32)
		if l.MaxInstances > 0 {
			limit = start - l.MaxInstances
		}
		if l.MaxPercent > 0 {
			limit = min(limit, ceil(float64(start)*(1-l.MaxPercent/100)))
		}
		if desired < limit {
			out := min(limit, current)
			return out, fmt.Sprintf("scale_in_limit %s: at least %d (wanted %d)", describe(l), out, desired)
		}
	}
	return desired, ""
}

func active(l *shoalv1.RateLimit) bool {
	return l != nil && Period(l) > 0 && (l.MaxInstances > 0 || l.MaxPercent > 0)
}

func describe(l *shoalv1.RateLimit) string {
	var parts []string
	if l.MaxInstances > 0 {
		parts = append(parts, fmt.Sprintf("%d instances", l.MaxInstances))
	}
	if l.MaxPercent > 0 {
		parts = append(parts, fmt.Sprintf("%.4g%%", l.MaxPercent))
	}
	return strings.Join(parts, " or ") + " per " + Period(l).String()
}

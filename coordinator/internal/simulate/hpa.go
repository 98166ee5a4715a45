package simulate

import "math"

// hpa models the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) with
// its documented defaults
// (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/):
//
//   - The controller syncs every 15 s (--horizontal-pod-autoscaler-sync-period).
//   - desiredReplicas = ceil(currentReplicas × currentMetricValue /
//     desiredMetricValue), skipped when the ratio is within the 0.1
//     tolerance (--horizontal-pod-autoscaler-tolerance).
//   - Pods not yet ready are set aside; when the ratio says scale up they
//     are counted at 0 % of the target, and the scale is dropped if that
//     reverses the direction ("Algorithm details").
//   - Scale-down is stabilised over 300 s: the highest recommendation in
//     the window wins (behavior.scaleDown.stabilizationWindowSeconds).
//   - Default scale-up policies: 100 % or 4 pods per 15 s, whichever is
//     larger (selectPolicy Max); default scale-down: 100 % per 15 s
//     ("Default Behavior").
//
// The model's warm-up stands in for pod readiness: an instance reports
// once it is past it.
type hpa struct {
	target    float64
	tolerance float64
	sync      int64
	downWin   int64

	recs   []hpaRec
	events []hpaRec // capacity changes: at, and the change in desired
}

type hpaRec struct {
	at int64
	n  int32
}

// Documented HPA defaults.
const (
	hpaSync       = 15
	hpaTolerance  = 0.1
	hpaDownWindow = 300
	hpaUpPercent  = 100
	hpaUpPods     = 4
	hpaUpPeriod   = 15
)

// NewHPA returns the Kubernetes HPA model for a target value in the
// metric's units.
func NewHPA(target float64) Autoscaler {
	return &hpa{target: target, tolerance: hpaTolerance, sync: hpaSync, downWin: hpaDownWindow}
}

func (h *hpa) Name() string { return PolicyHPA }

func (h *hpa) Step(obs *Observation) (int32, error) {
	if obs.Now%h.sync != 0 {
		return obs.Desired, nil
	}
	cur := obs.Desired
	raw, ok := h.replicas(obs)
	if !ok {
		return cur, nil
	}
	// Stabilisation: scale down to no less than the highest recommendation
	// of the last 300 s (scale-up window is 0 by default).
	kept := h.recs[:0]
	for _, r := range h.recs {
		if r.at > obs.Now-h.downWin {
			kept = append(kept, r)
		}
	}
	h.recs = append(kept, hpaRec{at: obs.Now, n: raw})
	want := raw
	if raw < cur {
		down := raw
		for _, r := range h.recs {
			down = max(down, r.n)
		}
		want = min(cur, down)
	}
	// Rate: the larger of +100 % and +4 pods over the last 15 s.
	if want > cur {
		var added int32
		for _, e := range h.events {
			if e.at > obs.Now-hpaUpPeriod && e.n > 0 {
				added += e.n
			}
		}
		start := cur - added
		limit := max(start*(100+hpaUpPercent)/100, start+hpaUpPods)
		want = min(want, max(limit, cur))
	}
	want = min(max(want, obs.Min), obs.Max)
	if want != cur {
		h.events = append(h.events, hpaRec{at: obs.Now, n: want - cur})
		if len(h.events) > 64 {
			h.events = h.events[len(h.events)-64:]
		}
	}
	return want, nil
}

// replicas is the HPA replica calculator for one resource metric with no
// missing pods (every ready instance in the model reports).
func (h *hpa) replicas(obs *Observation) (int32, bool) {
	cur := obs.Desired
	ready := obs.Reporting
	if ready == 0 {
		return cur, false
	}
	unready := int(cur) - ready
	ratio := obs.Value / h.target
	if unready <= 0 || ratio <= 1 {
		if math.Abs(ratio-1) <= h.tolerance {
			return cur, true
		}
		return int32(math.Ceil(ratio*float64(ready) - 1e-9)), true
	}
	// Scale up with unready pods: count them at 0 and re-check.
	newRatio := obs.Value * float64(ready) / float64(cur) / h.target
	if math.Abs(newRatio-1) <= h.tolerance || newRatio < 1 {
		return cur, true
	}
	n := int32(math.Ceil(newRatio*float64(cur) - 1e-9))
	if n < cur {
		return cur, true
	}
	return n, true
}

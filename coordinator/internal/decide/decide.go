package decide

import (
	"fmt"
	"math"
	"strings"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Defaults used where a policy leaves a field at zero, as the proto documents
// for tolerance. The scale-in window follows the same rule: zero means the
// default, so a hand-written policy without one does not flap.
const (
	DefaultTolerance      = 0.1
	DefaultScaleInWindow  = 60 * time.Second
	DefaultScaleOutWindow = 0 * time.Second
)

// Instance is one member of the fleet as Decide sees it.
type Instance struct {
	ID string
	// InService is when the instance came into service; zero while it is
	// still pending. Until InService+warmup it is left out of the metrics.
	InService time.Time
	// Metrics holds the latest value of each metric; a metric absent here is
	// missing data for this instance.
	Metrics map[string]float64
}

// Input is everything one decision depends on. Decide reads no clock: Now is
// the only time it knows.
type Input struct {
	Now      time.Time
	Policy   *shoalv1.ScalingPolicy
	Min, Max int32
	// Current is the capacity the fleet has or is getting: in-service plus
	// pending instances; draining instances count as gone.
	Current   int32
	Instances []Instance
	// Aggregates are fleet-level values (e.g. requests_per_target from the
	// load balancers). A metric found here is used as is instead of the
	// per-instance values.
	Aggregates map[string]float64
	// LaunchDelay is how long a launched instance takes to serve: measured
	// per group by the caller (the scaler's p90, kept through raft so it
	// survives a failover), or the simulator's --launch-delay. Zero
	// takes the policy's warmup.
	LaunchDelay time.Duration
}

// MaxSustain bounds the policy's sustain (0..MaxSustain), the share of the
// launch delay a rise must last before it is bought in full (sustain.go):
// waiting twice the launch delay before buying is already slower than any
// sensible policy. It is read from the policy, not passed beside it, so the
// live engine and the simulator cannot run the same policy with different
// knobs.
const MaxSustain = 2

// Recommendation is one raw recommendation, before stabilisation and limits.
// Sustained is the level the recommendations had held over the sustain
// horizon at that time (equal to Desired when the rule is off).
type Recommendation struct {
	At        time.Time
	Desired   int32
	Sustained int32
}

// Event is one capacity change Decide asked for.
type Event struct {
	At       time.Time
	From, To int32
}

// State is the history Decide needs: recent raw recommendations (for the
// stabilisation windows) and recent scaling events (for the rate limits),
// each oldest first.
// The caller keeps it and passes back the State each Decide returns; it holds
// only entries young enough to matter.
type State struct {
	Recommendations []Recommendation
	Events          []Event
}

// Decision is Decide's answer. Desired equals Current when nothing changes.
type Decision struct {
	Current int32
	Desired int32
	// Reason is one human-readable line; Details are the lines behind it,
	// one per metric and per rule that shaped the answer, for `explain`.
	Reason  string
	Details []string
	// Inputs are the numbers the decision was made on, keyed by name
	// (e.g. "cpu", "cpu.target", "current", "ready").
	Inputs map[string]float64
}

// Changed reports whether the decision asks for a different capacity.
func (d Decision) Changed() bool { return d.Desired != d.Current }

// proposal is one metric's opinion.
type proposal struct {
	metric  string
	desired int32
	opinion bool // false: no data, the metric neither scales out nor agrees to scale in
	line    string
}

// Decide computes the recommended capacity. It is pure: the same Input and
// State always give the same Decision and State. The returned State records
// the raw recommendation and, when Desired differs from Current, the event.
func Decide(in Input, st State) (Decision, State, error) {
	if err := Validate(in.Policy, in.Min, in.Max); err != nil {
		return Decision{}, st, err
	}
	if in.Current < 0 {
		return Decision{}, st, fmt.Errorf("%w: current: must be >= 0 (got %d)", ErrInvalidInput, in.Current)
	}
	if in.LaunchDelay < 0 {
		return Decision{}, st, fmt.Errorf("%w: launch delay: must be >= 0 (got %v)", ErrInvalidInput, in.LaunchDelay)
	}
	d := Decision{Current: in.Current, Inputs: map[string]float64{
		"current": float64(in.Current), "min": float64(in.Min), "max": float64(in.Max),
	}}
	p := in.Policy
	if p == nil {
		d.Desired = clamp(in.Current, in.Min, in.Max)
		d.Reason = finish(&d, "no scaling policy")
		return d, st.record(in.Now, in.Current, d.Desired), nil
	}

	warmup := Warmup(p)
	var ready []Instance
	for _, inst := range in.Instances {
		if !inst.InService.IsZero() && !in.Now.Before(inst.InService.Add(warmup)) {
			ready = append(ready, inst)
		}
	}
	unready := int(in.Current) - len(ready)
	if unready < 0 {
		unready = 0
	}
	d.Inputs["ready"] = float64(len(ready))
	d.Inputs["unready"] = float64(unready)
	d.Details = append(d.Details, fmt.Sprintf("capacity %d: %d ready, %d pending or warming (warmup %v)", in.Current, len(ready), unready, warmup))

	var props []proposal
	for _, t := range p.TargetTracking {
		props = append(props, targetTracking(in, t, ready, unready, d.Inputs))
	}
	for _, s := range p.StepScaling {
		props = append(props, stepScaling(in, s, ready, unready, d.Inputs))
	}
	for _, pr := range props {
		d.Details = append(d.Details, pr.line)
	}

	raw, why, ok := combine(in.Current, props)
	if !ok {
		d.Desired = clamp(in.Current, in.Min, in.Max)
		d.Reason = finish(&d, why)
		return d, st.prune(in.Now, p, horizon(in)).record(in.Now, in.Current, d.Desired), nil
	}
	d.Inputs["recommendation"] = float64(raw)
	h := horizon(in)
	st = st.prune(in.Now, p, h)

	sus := sustained(in.Now, in.Current, raw, h, st.Recommendations)
	sus.delay, sus.share = launchDelay(in), p.GetSustain()
	if h > 0 {
		d.Inputs["sustain"] = sus.share
		d.Inputs["sustained"] = float64(sus.level)
		d.Inputs["sustain.horizon_s"] = h.Seconds()
	}
	desired, stabLine := stabilise(in.Now, in.Current, raw, sus, p, st.Recommendations)
	st.Recommendations = append(st.Recommendations, Recommendation{At: in.Now, Desired: raw, Sustained: sus.level})
	if stabLine != "" {
		d.Details = append(d.Details, stabLine)
		why += "; " + stabLine
	}
	desired, limLine := rateLimit(in.Now, in.Current, desired, p, st.Events)
	if limLine != "" {
		d.Details = append(d.Details, limLine)
		why += "; " + limLine
	}
	if b := clamp(desired, in.Min, in.Max); b != desired {
		line := fmt.Sprintf("bounded to %d by min %d / max %d", b, in.Min, in.Max)
		d.Details = append(d.Details, line)
		why += "; " + line
		desired = b
	}
	d.Desired = desired
	d.Reason = finish(&d, why)
	return d, st.record(in.Now, in.Current, d.Desired), nil
}

// finish prefixes the reason with what happens.
func finish(d *Decision, why string) string {
	switch {
	case d.Desired > d.Current:
		return fmt.Sprintf("scale out %d → %d: %s", d.Current, d.Desired, why)
	case d.Desired < d.Current:
		return fmt.Sprintf("scale in %d → %d: %s", d.Current, d.Desired, why)
	default:
		return fmt.Sprintf("hold at %d: %s", d.Current, why)
	}
}

// combine: scale out if any metric wants out; scale in only if all metrics
// agree, and then by the smallest step any of them asks for. A metric
// without data never agrees to scale in.
func combine(current int32, props []proposal) (int32, string, bool) {
	var have []proposal
	for _, p := range props {
		if p.opinion {
			have = append(have, p)
		}
	}
	if len(have) == 0 {
		return current, "no metric has data", false
	}
	hi := have[0]
	allIn := true
	for _, p := range have {
		if p.desired > hi.desired {
			hi = p
		}
		if p.desired >= current {
			allIn = false
		}
	}
	if len(have) < len(props) {
		allIn = false
	}
	switch {
	case hi.desired > current:
		return hi.desired, fmt.Sprintf("%s wants %d", hi.metric, hi.desired), true
	case allIn:
		if len(props) == 1 {
			return hi.desired, fmt.Sprintf("%s wants %d", hi.metric, hi.desired), true
		}
		return hi.desired, fmt.Sprintf("all %d metrics agree to scale in; the least reduction is %s's %d", len(props), hi.metric, hi.desired), true
	default:
		var holds []string
		for _, p := range props {
			if !p.opinion || p.desired >= current {
				holds = append(holds, p.metric)
			}
		}
		return current, fmt.Sprintf("%s %s no change", strings.Join(holds, ", "), plural(len(holds), "wants", "want")), true
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// targetTracking follows the Kubernetes HPA replica calculator
// (pkg/controller/podautoscaler/replica_calculator.go): warming instances
// and missing data are first set aside; when they could change the
// direction, missing data counts as 100 % of target on scale-in and 0 on
// scale-out, and instances not yet ready count as 0 on scale-out.
func targetTracking(in Input, t *shoalv1.TargetTracking, ready []Instance, unready int, inputs map[string]float64) proposal {
	m, target := t.Metric, t.Target
	tol := t.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	inputs[m+".target"] = target
	pr := proposal{metric: m, desired: in.Current}
	hold := func(format string, args ...any) proposal {
		pr.opinion = true
		pr.line = fmt.Sprintf("%s: ", m) + fmt.Sprintf(format, args...)
		inputs[m+".desired"] = float64(pr.desired)
		return pr
	}

	if v, ok := in.Aggregates[m]; ok && finite(v) {
		inputs[m] = v
		ratio := v / target
		if math.Abs(ratio-1) <= tol {
			return hold("fleet value %.4g within %.0f%% of target %.4g", v, tol*100, target)
		}
		pr.desired = ceil(float64(in.Current) * ratio)
		return hold("ceil(%d × %.4g / %.4g) = %d", in.Current, v, target, pr.desired)
	}

	var sum float64
	var n, missing int
	for _, inst := range ready {
		if v, ok := inst.Metrics[m]; ok && finite(v) {
			sum += v
			n++
		} else {
			missing++
		}
	}
	if n == 0 {
		pr.line = fmt.Sprintf("%s: no data from any ready instance (%d ready, %d missing)", m, len(ready), missing)
		return pr
	}
	mean := sum / float64(n)
	inputs[m] = mean
	ratio := mean / target
	scaleUpWithUnready := unready > 0 && ratio > 1
	if !scaleUpWithUnready && missing == 0 {
		if math.Abs(ratio-1) <= tol {
			return hold("%.4g within %.0f%% of target %.4g", mean, tol*100, target)
		}
		pr.desired = ceil(float64(n) * ratio)
		return hold("ceil(%d × %.4g / %.4g) = %d", n, mean, target, pr.desired)
	}

	adjSum, adjN := sum, n
	var notes []string
	if missing > 0 {
		if ratio < 1 {
			adjSum += float64(missing) * target
			notes = append(notes, fmt.Sprintf("%d missing counted at 100%% of target", missing))
		} else {
			notes = append(notes, fmt.Sprintf("%d missing counted as 0", missing))
		}
		adjN += missing
	}
	if scaleUpWithUnready {
		adjN += unready
		notes = append(notes, fmt.Sprintf("%d not ready counted as 0", unready))
	}
	adjMean := adjSum / float64(adjN)
	newRatio := adjMean / target
	inputs[m+".adjusted"] = adjMean
	note := strings.Join(notes, ", ")
	if math.Abs(newRatio-1) <= tol || (ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1) {
		return hold("%.4g on %d reporting, %.4g with %s: within %.0f%% of target %.4g or direction reversed", mean, n, adjMean, note, tol*100, target)
	}
	pr.desired = ceil(float64(adjN) * newRatio)
	if (newRatio < 1 && pr.desired > in.Current) || (newRatio > 1 && pr.desired < in.Current) {
		pr.desired = in.Current
		return hold("%.4g on %d reporting, %.4g with %s: ceil(%d × %.4g / %.4g) points the other way; no change", mean, n, adjMean, note, adjN, adjMean, target)
	}
	return hold("%.4g on %d reporting, %.4g with %s: ceil(%d × %.4g / %.4g) = %d", mean, n, adjMean, note, adjN, adjMean, target, pr.desired)
}

// stepScaling maps the metric's band to an adjustment, as EC2 Auto Scaling
// step policies do. Scale-out steps are measured from the ready capacity, so
// a breach that persists while the last step's instances warm up adds only
// the difference, not the whole step again.
func stepScaling(in Input, s *shoalv1.StepScaling, ready []Instance, unready int, inputs map[string]float64) proposal {
	m := s.Metric
	pr := proposal{metric: m, desired: in.Current}
	v, ok := in.Aggregates[m]
	if !ok || !finite(v) {
		var sum float64
		var n int
		for _, inst := range ready {
			if x, ok := inst.Metrics[m]; ok && finite(x) {
				sum += x
				n++
			}
		}
		if n == 0 {
			pr.line = fmt.Sprintf("%s: no data from any ready instance", m)
			return pr
		}
		v = sum / float64(n)
	}
	inputs[m] = v
	pr.opinion = true
	var st *shoalv1.Step
	for _, c := range s.Steps {
		if (c.Lower == nil || v >= *c.Lower) && (c.Upper == nil || v < *c.Upper) {
			st = c
			break
		}
	}
	if st == nil {
		pr.line = fmt.Sprintf("%s: %.4g is in no step; no change", m, v)
		inputs[m+".desired"] = float64(pr.desired)
		return pr
	}
	band := fmt.Sprintf("[%s, %s)", bound(st.Lower, "-inf"), bound(st.Upper, "+inf"))
	readyCap := in.Current - int32(unready)
	switch st.AdjustmentType {
	case shoalv1.AdjustmentType_ADJUSTMENT_TYPE_EXACT_CAPACITY:
		pr.desired = int32(st.Adjustment)
		pr.line = fmt.Sprintf("%s: %.4g in step %s: exact capacity %d", m, v, band, pr.desired)
	case shoalv1.AdjustmentType_ADJUSTMENT_TYPE_CHANGE_IN_CAPACITY, shoalv1.AdjustmentType_ADJUSTMENT_TYPE_PERCENT_CHANGE:
		base := in.Current
		if st.Adjustment > 0 {
			base = readyCap
		}
		delta := int32(st.Adjustment)
		what := fmt.Sprintf("%+d", delta)
		if st.AdjustmentType == shoalv1.AdjustmentType_ADJUSTMENT_TYPE_PERCENT_CHANGE {
			// Rounded away from zero, so a small percentage of a small
			// fleet still moves it by one.
			x := float64(base) * st.Adjustment / 100
			delta = int32(math.Copysign(math.Ceil(math.Abs(x)-1e-9), x))
			what = fmt.Sprintf("%+.4g%% of %d = %+d", st.Adjustment, base, delta)
		}
		pr.desired = base + delta
		if st.Adjustment > 0 && pr.desired < in.Current {
			pr.desired = in.Current
		}
		if pr.desired < 0 {
			pr.desired = 0
		}
		pr.line = fmt.Sprintf("%s: %.4g in step %s: %s from %d → %d", m, v, band, what, base, pr.desired)
	}
	inputs[m+".desired"] = float64(pr.desired)
	return pr
}

func bound(b *float64, inf string) string {
	if b == nil {
		return inf
	}
	return fmt.Sprintf("%.4g", *b)
}

func windows(p *shoalv1.ScalingPolicy) (up, down time.Duration) {
	up, down = Windows(p)
	if down == 0 {
		down = DefaultScaleInWindow
	}
	return up, down
}

// stabilise follows the HPA's stabilizeRecommendationWithBehaviors: scale
// out to at most the lowest recommendation in the scale-out window, scale in
// to at least the highest recommendation in the scale-in window. With a
// sustain horizon, scale-out also stops at the sustained level, and the
// scale-in window keeps the highest sustained level rather than the highest
// single recommendation, so one noisy second neither buys nor holds an
// instance.
func stabilise(now time.Time, current, raw int32, sus sustain, p *shoalv1.ScalingPolicy, recs []Recommendation) (int32, string) {
	upW, downW := windows(p)
	upCut, downCut := now.Add(-upW), now.Add(-downW)
	upRaw, down := raw, sus.level
	for _, r := range recs {
		if r.Desired < upRaw && r.At.After(upCut) {
			upRaw = r.Desired
		}
		held := r.Desired
		if sus.horizon > 0 {
			held = r.Sustained
		}
		if held > down && r.At.After(downCut) {
			down = held
		}
	}
	up := min(upRaw, sus.level)
	out := current
	if out < up {
		out = up
	}
	if out > down {
		out = down
	}
	switch {
	case raw > current && out < raw && sus.level < upRaw:
		return out, sus.explain(current)
	case raw > current && out < raw:
		return out, fmt.Sprintf("scale-out window %v: lowest recommendation is %d", upW, up)
	case raw < current && out > raw && sus.horizon > 0:
		return out, fmt.Sprintf("scale-in window %v: highest sustained recommendation is %d", downW, down)
	case raw < current && out > raw:
		return out, fmt.Sprintf("scale-in window %v: highest recommendation is %d", downW, down)
	}
	return out, ""
}

// prune drops history too old to matter to this policy. It copies what it
// keeps (with room for this tick's entry) so the caller's State is never
// shared with the one Decide returns.
func (s State) prune(now time.Time, p *shoalv1.ScalingPolicy, horizon time.Duration) State {
	up, down := windows(p)
	cut := now.Add(-max(up, down, horizon))
	// Recommendations are oldest first: keep the tail after cut.
	first := len(s.Recommendations)
	for i, r := range s.Recommendations {
		if r.At.After(cut) {
			first = i
			break
		}
	}
	kept := s.Recommendations[first:]
	recs := make([]Recommendation, len(kept), len(kept)+1)
	copy(recs, kept)
	var longest time.Duration
	for _, l := range []*shoalv1.RateLimit{p.ScaleOutLimit, p.ScaleInLimit} {
		if l != nil {
			longest = max(longest, Period(l))
		}
	}
	var evs []Event
	evCut := now.Add(-longest)
	for _, e := range s.Events {
		if e.At.After(evCut) {
			evs = append(evs, e)
		}
	}
	return State{Recommendations: recs, Events: evs}
}

// record notes a capacity change Decide asked for.
func (s State) record(at time.Time, from, to int32) State {
	if from != to {
		s.Events = append(s.Events[:len(s.Events):len(s.Events)], Event{At: at, From: from, To: to})
	}
	return s
}

// Seed returns the State a new leader should start a fleet with: it holds
// the current capacity as a recommendation made now, so the scale-in window
// runs in full after a leader change instead of an empty history allowing
// an immediate scale-in.
func Seed(now time.Time, current int32) State {
	return State{Recommendations: []Recommendation{{At: now, Desired: current, Sustained: current}}}
}

// Record notes a capacity change made outside Decide (a manual scale), so
// the rate limits count it.
func (s State) Record(at time.Time, from, to int32) State { return s.record(at, from, to) }

// ceil rounds up, forgiving floating-point noise such as 4 × 75 / 50 =
// 6.000000000000001.
func ceil(x float64) int32 {
	c := math.Ceil(x - 1e-9)
	switch {
	case c > math.MaxInt32:
		return math.MaxInt32
	case c < 0:
		return 0 // a negative custom metric must not ask for negative capacity
	}
	return int32(c)
}

// finite filters out NaN and infinities, which a broken exporter can send;
// they count as missing data rather than poisoning the mean.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func clamp(v, lo, hi int32) int32 {
	return max(lo, min(v, hi))
}

package decide

import (
	"fmt"
	"time"
)

// The sustain rule: capacity is bought for a rise only as far as the rise
// has already lasted a share of the launch delay.
//
// Why: an instance launched now serves from one launch delay L on. A burst
// that ends before then is never served by it, and the instance is billed
// for L plus the scale-in window for nothing. Demand gives no notice of how
// long a burst will last, but its age is a fair guide: under a heavy-tailed
// (Lindy) view of burst lengths, a burst that has lasted a is about as
// likely to last another a as not, so one that has lasted s·L is likely to
// outlive the L it takes to serve it when s is near 1, and a short spike of
// noise (a few seconds) almost never is. The policy's sustain is s.
//
// How: the horizon is s·L. The sustained level is the lowest raw
// recommendation over the horizon, the level every second of it needed.
// Scale-out goes no higher than that; the scale-in window keeps the highest
// sustained level it saw instead of the highest single second. A step that
// persists is bought in full once it is s·L old, and its part that has
// already lasted that long is bought at once, so a rise that crosses the
// target and keeps climbing is followed second by second with a lag of
// s·L. With s = 0 the horizon is empty and the rule changes nothing.

// sustain is the rule's answer for one tick.
type sustain struct {
	horizon time.Duration
	level   int32
	// age is how long the recommendations have been above the current
	// capacity without a break, up to this tick.
	age   time.Duration
	delay time.Duration
	share float64
}

// horizon is s·L, with L the measured launch delay or the policy's warmup.
func horizon(in Input) time.Duration {
	s := in.Policy.GetSustain()
	if s == 0 {
		return 0
	}
	return time.Duration(s * float64(launchDelay(in)))
}

func launchDelay(in Input) time.Duration {
	if in.LaunchDelay > 0 {
		return in.LaunchDelay
	}
	return Warmup(in.Policy)
}

// sustained is the lowest of raw and the recommendations younger than the
// horizon; recs are oldest first.
func sustained(now time.Time, current, raw int32, h time.Duration, recs []Recommendation) sustain {
	s := sustain{horizon: h, level: raw}
	if h <= 0 {
		return s
	}
	cut := now.Add(-h)
	for _, r := range recs {
		if r.Desired < s.level && r.At.After(cut) {
			s.level = r.Desired
		}
	}
	if raw > current {
		since := now
		for i := len(recs) - 1; i >= 0 && recs[i].Desired > current; i-- {
			since = recs[i].At
		}
		s.age = now.Sub(since)
	}
	return s
}

// explain says why a rise was not bought in full.
func (s sustain) explain(current int32) string {
	what := "not bought"
	if s.level > current {
		what = fmt.Sprintf("bought only the %d it has held throughout", s.level)
	}
	return fmt.Sprintf("a %v burst is shorter than the %v it must last (%.2g × the %v launch delay): %s", s.age.Round(time.Second), s.horizon.Round(time.Second), s.share, s.delay, what)
}

package decide

import (
	"errors"
	"strings"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// runSustain decides once a second from t0 to t0+to on a fleet of 4 that
// never changes (the answer is what is asked, not applied), with every
// instance at cpu(t) against a target of 50 and a 60 s launch delay. It
// returns the first second the decision scales out, and every reason.
func runSustain(t *testing.T, sustain float64, to int, cpu func(s int) float64) (int, []string) {
	t.Helper()
	p := &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}, Sustain: sustain}
	st := Seed(t0.Add(-time.Hour), 4)
	first := -1
	var reasons []string
	for s := -120; s <= to; s++ {
		in := Input{Now: t0.Add(time.Duration(s) * time.Second), Policy: p, Min: 1, Max: 20, Current: 4,
			Instances: fleet("cpu", cpu(s), cpu(s), cpu(s), cpu(s)), LaunchDelay: time.Minute}
		d, next, err := Decide(in, st)
		if err != nil {
			t.Fatal(err)
		}
		st = next
		if s >= 0 {
			reasons = append(reasons, d.Reason)
		}
		if first < 0 && d.Desired > 4 {
			first = s
		}
	}
	return first, reasons
}

func TestSustain(t *testing.T) {
	burst := func(from, n int) func(int) float64 {
		return func(s int) float64 {
			if s >= from && s < from+n {
				return 100
			}
			return 50
		}
	}
	t.Run("a burst shorter than the horizon is not bought", func(t *testing.T) {
		// Sustain 1/3 of a 60 s launch delay: 20 s. A 15 s burst at twice
		// the target never reaches it.
		at, reasons := runSustain(t, 1.0/3, 120, burst(0, 15))
		if at >= 0 {
			t.Fatalf("scaled out at t=%d for a 15 s burst", at)
		}
		want := "a 10s burst is shorter than the 20s it must last (0.33 × the 1m0s launch delay): not bought"
		if !strings.Contains(reasons[10], want) {
			t.Fatalf("reason at t=10 = %q, want it to contain %q", reasons[10], want)
		}
	})
	t.Run("without sustain the same burst is bought at once", func(t *testing.T) {
		if at, _ := runSustain(t, 0, 120, burst(0, 15)); at != 0 {
			t.Fatalf("scaled out at t=%d, want 0", at)
		}
	})
	t.Run("a step that persists is bought once it has lasted the horizon", func(t *testing.T) {
		at, _ := runSustain(t, 1.0/3, 120, burst(0, 1000))
		if at != 19 {
			t.Fatalf("scaled out at t=%d, want 19 (the 20th second of the step)", at)
		}
	})
	t.Run("a short horizon still reacts within seconds", func(t *testing.T) {
		// 0.05 × 60 s = 3 s.
		if at, _ := runSustain(t, 0.05, 120, burst(0, 1000)); at != 2 {
			t.Fatalf("scaled out at t=%d, want 2", at)
		}
	})
	t.Run("the part of a rise that has lasted is bought", func(t *testing.T) {
		// 75 (wants 6) for 30 s, then 100 (wants 8) from t=10: at t=10 the
		// horizon has held 6 throughout, so 6 is bought, not 8.
		cpu := func(s int) float64 {
			switch {
			case s < 0:
				return 50
			case s < 10:
				return 75
			}
			return 100
		}
		at, reasons := runSustain(t, 1.0/6, 20, cpu)
		if at != 9 || !strings.HasPrefix(reasons[10], "scale out 4 → 6") || !strings.Contains(reasons[10], "bought only the 6 it has held throughout") {
			t.Fatalf("first scale-out t=%d; reason at t=10: %q", at, reasons[10])
		}
	})
	t.Run("the inputs show the knob only when it is on", func(t *testing.T) {
		in := func(sustain float64) Input {
			p := policy(func(p *shoalv1.ScalingPolicy) { p.Sustain = sustain })
			return Input{Now: t0, Policy: p, Max: 20, Current: 4, Instances: fleet("cpu", 100, 100, 100, 100), LaunchDelay: time.Minute}
		}
		// The fleet held 4 five seconds ago, inside the 15 s horizon: the
		// rise to 8 is not bought yet.
		d, _, err := Decide(in(0.25), Seed(t0.Add(-5*time.Second), 4))
		if err != nil {
			t.Fatal(err)
		}
		if d.Inputs["sustain"] != 0.25 || d.Inputs["sustain.horizon_s"] != 15 || d.Inputs["sustained"] != 4 || d.Desired != 4 {
			t.Fatalf("desired %d, inputs with sustain 0.25 = %v, want 4, sustain 0.25, horizon 15 s, sustained 4", d.Desired, d.Inputs)
		}
		d, _, err = Decide(in(0), Seed(t0.Add(-5*time.Second), 4))
		if err != nil || d.Desired != 8 {
			t.Fatalf("desired %d (%v) with sustain 0, want 8", d.Desired, err)
		}
		for _, k := range []string{"sustain", "sustained", "sustain.horizon_s"} {
			if _, ok := d.Inputs[k]; ok {
				t.Errorf("input %q present with sustain 0: %v", k, d.Inputs)
			}
		}
	})
	t.Run("without a launch delay or warmup the rule is off", func(t *testing.T) {
		p := policy(func(p *shoalv1.ScalingPolicy) { p.Sustain = 1 })
		d, _, err := Decide(Input{Now: t0, Policy: p, Max: 20, Current: 4, Instances: fleet("cpu", 100, 100, 100, 100)}, Seed(t0.Add(-time.Hour), 4))
		if err != nil || d.Desired != 8 {
			t.Fatalf("desired %d (%v), want 8 at once: no launch delay to measure the horizon by", d.Desired, err)
		}
	})
	t.Run("sustain out of range", func(t *testing.T) {
		p := policy(func(p *shoalv1.ScalingPolicy) { p.Sustain = 3 })
		_, _, err := Decide(Input{Now: t0, Policy: p, Max: 5, Current: 1}, State{})
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "policy.sustain: must be a share of the launch delay in [0, 2] (got 3)") {
			t.Fatalf("err = %v", err)
		}
	})
}

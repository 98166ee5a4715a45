package simulate

import "testing"

// obsFor is a fleet of n ready instances, plus warming ones, all reporting
// value.
func obsFor(now int64, desired int32, ready, warming int, value float64) *Observation {
	o := &Observation{Now: now, Desired: desired, Min: 1, Max: 100, Value: value, Reporting: ready}
	for i := 0; i < ready; i++ {
		o.Serving = append(o.Serving, Member{InService: -3600, Reporting: true})
	}
	for i := 0; i < warming; i++ {
		o.Serving = append(o.Serving, Member{InService: now - 5})
	}
	return o
}

// drive feeds a model one observation per second from second from to to
// (inclusive) and returns the first second it changed capacity, and to what.
func drive(a Autoscaler, from, to int64, obs func(now int64) *Observation) (int64, int32) {
	for now := from; now <= to; now++ {
		o := obs(now)
		want, err := a.Step(o)
		if err != nil {
			panic(err)
		}
		if want != o.Desired {
			return now, want
		}
	}
	return -1, 0
}

func TestAWSTargetTracking(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(a Autoscaler) // history before the case
		from, to int64
		obs      func(now int64) *Observation
		wantAt   int64
		wantTo   int32
	}{
		{
			// 90 % against a 60 % target breaches from the first minute; the
			// alarm needs 3 datapoints (t=60, 120, 180).
			name: "scale-out after 3 datapoints", to: 600,
			obs:    func(now int64) *Observation { return obsFor(now, 4, 4, 0, 90) },
			wantAt: 180, wantTo: 6,
		},
		{
			// The second minute dips below target: the run restarts, so the
			// third consecutive breach is the minute ending at t=300.
			name: "a non-breaching datapoint restarts the count", to: 600,
			obs: func(now int64) *Observation {
				v := 90.0
				if now >= 60 && now < 120 {
					v = 50
				}
				return obsFor(now, 4, 4, 0, v)
			},
			wantAt: 300, wantTo: 6,
		},
		{
			name: "within target no scale-out", to: 900,
			obs:    func(now int64) *Observation { return obsFor(now, 4, 4, 0, 59) },
			wantAt: -1,
		},
		{
			// 30 % is below 0.9 × 60: 15 datapoints, the last at t=900.
			name: "scale-in after 15 datapoints", to: 1200,
			obs:    func(now int64) *Observation { return obsFor(now, 10, 10, 0, 30) },
			wantAt: 900, wantTo: 5,
		},
		{
			// 55 % is below target but above the 54 % low threshold.
			name: "above the low threshold no scale-in", to: 1800,
			obs:    func(now int64) *Observation { return obsFor(now, 10, 10, 0, 55) },
			wantAt: -1,
		},
		{
			name: "no scale-in while instances warm up", to: 1200,
			obs:    func(now int64) *Observation { return obsFor(now, 10, 8, 2, 30) },
			wantAt: -1,
		},
		{
			// With 2 of 6 instances still warming, 90 % on the 4 ready ones
			// asks for ceil(4 × 90/60) = 6: already there, nothing added.
			name: "warming capacity counts toward scale-out", to: 400,
			obs:    func(now int64) *Observation { return obsFor(now, 6, 4, 2, 90) },
			wantAt: -1,
		},
		{
			// A scale-out at t=180 starts the 300 s cooldown; the 15 low
			// datapoints after it end at t=1080, past the cooldown.
			name: "scale-in respects the cooldown",
			setup: func(a Autoscaler) {
				drive(a, 0, 180, func(now int64) *Observation { return obsFor(now, 4, 4, 0, 90) })
			},
			from: 181, to: 2000,
			obs:    func(now int64) *Observation { return obsFor(now, 6, 6, 0, 20) },
			wantAt: 1080, wantTo: 2,
		},
		{
			name: "bounded by max", to: 200,
			obs: func(now int64) *Observation {
				o := obsFor(now, 4, 4, 0, 600)
				o.Max = 8
				return o
			},
			wantAt: 180, wantTo: 8,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := NewAWSTargetTracking(60)
			if c.setup != nil {
				c.setup(a)
			}
			at, to := drive(a, c.from, c.to, c.obs)
			if at != c.wantAt || (at >= 0 && to != c.wantTo) {
				t.Fatalf("changed at t=%d to %d, want t=%d to %d", at, to, c.wantAt, c.wantTo)
			}
		})
	}
}

func TestHPA(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(a Autoscaler)
		from, to int64
		obs      func(now int64) *Observation
		wantAt   int64
		wantTo   int32
	}{
		{
			// The first sync after a breach acts: t=15 for a breach from t=1.
			name: "acts on the 15 s sync", from: 1, to: 100,
			obs:    func(now int64) *Observation { return obsFor(now, 4, 4, 0, 90) },
			wantAt: 15, wantTo: 6,
		},
		{
			name: "inside the 10 % tolerance", to: 600,
			obs:    func(now int64) *Observation { return obsFor(now, 4, 4, 0, 65) },
			wantAt: -1,
		},
		{
			// A recommendation of 10 at t=0 holds scale-down until it leaves
			// the 300 s window: the sync at t=300.
			name: "scale-down held for the 300 s window",
			setup: func(a Autoscaler) {
				a.Step(obsFor(0, 10, 10, 0, 60))
			},
			from: 1, to: 1000,
			obs:    func(now int64) *Observation { return obsFor(now, 10, 10, 0, 30) },
			wantAt: 300, wantTo: 5,
		},
		{
			// ceil(2 × 600/60) = 20, but at most max(2 × 2, 2 + 4) = 6.
			name: "scale-up limited to the larger of 100 % and 4 pods", to: 100,
			obs:    func(now int64) *Observation { return obsFor(now, 2, 2, 0, 600) },
			wantAt: 0, wantTo: 6,
		},
		{
			// 10 × 100 %: +100 % (20) beats +4 (14).
			name: "percent policy wins for larger fleets", to: 100,
			obs:    func(now int64) *Observation { return obsFor(now, 10, 10, 0, 600) },
			wantAt: 0, wantTo: 20,
		},
		{
			// 2 ready at 100 % with 2 not ready: counted at 0 the fleet is at
			// 50 %, below the 60 % target, so nothing is added.
			name: "not-ready pods count as 0 on scale-up", to: 100,
			obs:    func(now int64) *Observation { return obsFor(now, 4, 2, 2, 100) },
			wantAt: -1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := NewHPA(60)
			if c.setup != nil {
				c.setup(a)
			}
			at, to := drive(a, c.from, c.to, c.obs)
			if at != c.wantAt || (at >= 0 && to != c.wantTo) {
				t.Fatalf("changed at t=%d to %d, want t=%d to %d", at, to, c.wantAt, c.wantTo)
			}
		})
	}
}

func TestHPARateLimitWindow(t *testing.T) {
	a := NewHPA(60)
	// t=0: 2 → 6. t=15: the 0 s event has left the 15 s period, so the
	// limit restarts from 6: max(12, 10) = 12.
	if got, _ := a.Step(obsFor(0, 2, 2, 0, 600)); got != 6 {
		t.Fatalf("t=0: %d, want 6", got)
	}
	if got, _ := a.Step(obsFor(15, 6, 6, 0, 600)); got != 12 {
		t.Fatalf("t=15: %d, want 12", got)
	}
}

func TestAWSTargetTrackingHires(t *testing.T) {
	hires := func(period int) Autoscaler {
		a, err := NewAWSTargetTrackingHires(60, period)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	t.Run("10 s period: 3 datapoints at t=10, 20, 30", func(t *testing.T) {
		at, to := drive(hires(10), 0, 600, func(now int64) *Observation { return obsFor(now, 4, 4, 0, 90) })
		if at != 30 || to != 6 {
			t.Fatalf("changed at t=%d to %d, want t=30 to 6", at, to)
		}
	})
	t.Run("30 s period: the third datapoint closes at t=90", func(t *testing.T) {
		at, _ := drive(hires(30), 0, 600, func(now int64) *Observation { return obsFor(now, 4, 4, 0, 90) })
		if at != 90 {
			t.Fatalf("changed at t=%d, want 90", at)
		}
	})
	t.Run("10 s scale-in: 15 datapoints", func(t *testing.T) {
		at, to := drive(hires(10), 0, 600, func(now int64) *Observation { return obsFor(now, 10, 10, 0, 30) })
		if at != 150 || to != 5 {
			t.Fatalf("changed at t=%d to %d, want t=150 to 5", at, to)
		}
	})
	t.Run("staying in ALARM re-invokes once a minute, not every period", func(t *testing.T) {
		// The alarm enters ALARM at t=30 and scales 4 → 6. The metric
		// doubles from t=35; the datapoints at t=40 and 50 would ask for
		// more, but the alarm stays in ALARM, so the next invocation is the
		// first evaluation of the next minute: t=60, to ceil(4 × 180/60).
		a := hires(10)
		var changes []int64
		var tos []int32
		desired := int32(4)
		for now := int64(0); now <= 130; now++ {
			v := 90.0
			if now >= 35 {
				v = 180
			}
			o := obsFor(now, desired, 4, int(desired)-4, v)
			o.Serving = o.Serving[:4] // the new ones are still pending
			want, _ := a.Step(o)
			if want != desired {
				changes, tos = append(changes, now), append(tos, want)
				desired = want
			}
		}
		if len(changes) != 2 || changes[0] != 30 || changes[1] != 60 || tos[0] != 6 || tos[1] != 12 {
			t.Fatalf("changes at %v to %v, want at [30 60] to [6 12]", changes, tos)
		}
	})
	t.Run("60 s period is the legacy model", func(t *testing.T) {
		legacy, h60 := NewAWSTargetTracking(60), hires(60)
		if h60.Name() != "aws-target-tracking-hires:60" || hires(10).Name() != PolicyAWSHires {
			t.Fatalf("names %q %q", h60.Name(), hires(10).Name())
		}
		for now := int64(0); now < 1800; now++ {
			v := 90.0
			if now > 600 {
				v = 20
			}
			a, _ := legacy.Step(obsFor(now, 4, 4, 0, v))
			b, _ := h60.Step(obsFor(now, 4, 4, 0, v))
			if a != b {
				t.Fatalf("t=%d: legacy %d, hires:60 %d", now, a, b)
			}
		}
	})
	for _, p := range []int{0, 5, 20, 120} {
		if _, err := NewAWSTargetTrackingHires(60, p); err == nil {
			t.Errorf("period %d accepted", p)
		}
	}
}

func TestParseHires(t *testing.T) {
	for _, c := range []struct {
		in      string
		period  int
		ok, err bool
	}{
		{"aws-target-tracking-hires", 10, true, false},
		{"aws-target-tracking-hires:10", 10, true, false},
		{"aws-target-tracking-hires:30", 30, true, false},
		{"aws-target-tracking-hires:60", 60, true, false},
		{"aws-target-tracking-hires:20", 0, true, true},
		{"aws-target-tracking-hires:", 0, true, true},
		{"aws-target-tracking-hiresx", 0, false, false},
		{"aws-target-tracking", 0, false, false},
	} {
		p, ok, err := parseHires(c.in)
		if p != c.period || ok != c.ok || (err != nil) != c.err {
			t.Errorf("parseHires(%q) = %d, %v, %v; want %d, %v, error %v", c.in, p, ok, err, c.period, c.ok, c.err)
		}
	}
}

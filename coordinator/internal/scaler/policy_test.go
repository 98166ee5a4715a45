package scaler

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"no eval interval", func(c *Config) { c.EvalInterval = 0 }, "eval-interval (0s) must be > 0"},
		{"negative drain timeout", func(c *Config) { c.DrainTimeout = -time.Second }, "drain-timeout (-1s)"},
		{"no agent grace", func(c *Config) { c.AgentGrace = 0 }, "agent-grace"},
		{"no hook name", func(c *Config) { c.HookName = "" }, "hook name: required"},
		{"no launch failures", func(c *Config) { c.LaunchFailures = 0 }, "launch failures (0)"},
		{"no clock", func(c *Config) { c.Now = nil }, "now: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			snapshot := c.EvalInterval
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			if c.EvalInterval != snapshot {
				t.Fatal("Validate changed the config")
			}
		})
	}
}

// TestSustainFromPolicy: the live engine runs the fleet policy's sustain,
// the knob the simulator tunes. With a 10 s warm-up (the launch delay while
// none is learned) and sustain 0.5, a rise must last 5 s: a 2 s spike is
// not bought, and explain says why and shows the knob; with sustain 0 the
// same spike is bought at once.
func TestSustainFromPolicy(t *testing.T) {
	run := func(t *testing.T, sustain float64) (*harness, []string) {
		p := cpuPolicy()
		p.Warmup, p.Sustain = durationpb.New(10*time.Second), sustain
		h := newHarness(t, 2, p)
		h.tick()
		h.serve(50)
		var reasons []string
		// Past the warm-up at the target, then two seconds at twice it,
		// then back.
		for s, cpu := range []float64{50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 100, 100, 50, 50, 50, 50, 50, 50, 50} {
			h.clk.Add(time.Second)
			h.met.set(h.ids(cloud.LifecycleInService), "cpu", cpu)
			h.tick()
			if e, ok := h.s.Explain(fleet); ok && s == 12 {
				reasons = append(reasons, e.Reason)
				if sustain != 0 && (e.Inputs["sustain"] != sustain || e.Inputs["sustain.horizon_s"] != 5) {
					t.Errorf("explain inputs %v, want sustain %v over a 5 s horizon", e.Inputs, sustain)
				}
			}
		}
		return h, reasons
	}
	t.Run("sustain 0.5: a 2 s spike is not bought", func(t *testing.T) {
		h, reasons := run(t, 0.5)
		if ds := h.decisions(); len(ds) != 0 {
			t.Fatalf("decisions = %v, want none", ds)
		}
		want := "a 1s burst is shorter than the 5s it must last (0.5 × the 10s launch delay): not bought"
		if len(reasons) != 1 || !strings.Contains(reasons[0], want) {
			t.Fatalf("explain in the spike's second second = %q, want it to contain %q", reasons, want)
		}
	})
	t.Run("sustain 0: the same spike is bought", func(t *testing.T) {
		h, _ := run(t, 0)
		ds := h.decisions()
		if len(ds) == 0 || ds[0].PreviousCapacity != 2 || ds[0].Capacity != 4 {
			t.Fatalf("decisions = %v, want 2 → 4 on the spike", ds)
		}
		if _, ok := ds[0].Inputs["sustain"]; ok {
			t.Fatalf("decision inputs %v carry sustain though it is 0", ds[0].Inputs)
		}
	})
}

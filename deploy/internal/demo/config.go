package demo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Config is one demo run. Zero values take the defaults noted.
type Config struct {
	// BinDir holds the binaries (`make build`). Required.
	BinDir string
	// ReportDir receives timeline.csv, chart.svg and summary.json
	// (default demo-report).
	ReportDir string
	// Duration of the whole load profile (default 150s); the phases split it
	// 20 % baseline, 35 % spike, 45 % baseline unless set below.
	Duration time.Duration
	// Baseline, Spike and Recovery set the phases' lengths directly.
	Baseline, Spike, Recovery time.Duration
	// AlignSpike starts the spike on a 10-second boundary of the clock, so
	// CloudWatch's 10 s alarm periods see whole spike periods (default on
	// in the e2e test; the demo itself does not need it).
	AlignSpike bool
	// BaselineRPS and SpikeRPS are the offered load (defaults 40 and 200).
	BaselineRPS, SpikeRPS int
	// Capacity is each instance's requests/s (demoapp --capacity, default 50).
	Capacity int
	// Min, Max and Target are the fleet's bounds and the util target
	// (defaults 2, 6 and 50).
	Min, Max int
	Target   float64
	// ScaleInWindow is the policy's scale-in stabilisation (default 15s).
	ScaleInWindow time.Duration
	// PublishInterval is the coordinators' CloudWatch period (default 2s, so
	// alarms see the spike quickly).
	PublishInterval time.Duration
	// Out receives the live lines and the summary (default os.Stdout).
	Out io.Writer
	// KeepDir keeps the sandbox's data and logs.
	KeepDir bool
	// Hold keeps the system up after the report until ctx ends, for the
	// CLI tour.
	Hold bool
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("demo config")

// WithDefaults returns c with unset fields filled in.
func (c Config) WithDefaults() Config {
	if c.ReportDir == "" {
		c.ReportDir = "demo-report"
	}
	if c.Duration == 0 {
		c.Duration = 150 * time.Second
	}
	if c.Baseline == 0 && c.Spike == 0 && c.Recovery == 0 {
		c.Baseline = c.Duration * 20 / 100
		c.Spike = c.Duration * 35 / 100
		c.Recovery = c.Duration - c.Baseline - c.Spike
	}
	c.Duration = c.Baseline + c.Spike + c.Recovery
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.BaselineRPS, 40)
	def(&c.SpikeRPS, 200)
	def(&c.Capacity, 50)
	def(&c.Min, 2)
	def(&c.Max, 6)
	if c.Target == 0 {
		c.Target = 50
	}
	if c.ScaleInWindow == 0 {
		c.ScaleInWindow = 15 * time.Second
	}
	if c.PublishInterval == 0 {
		c.PublishInterval = 2 * time.Second
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	return c
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	switch {
	case c.BinDir == "":
		return fmt.Errorf("%w: bin dir: required (run `make build`)", ErrConfig)
	case c.Baseline < time.Second || c.Spike < time.Second || c.Recovery < time.Second:
		return fmt.Errorf("%w: phases (baseline %s, spike %s, recovery %s) must all be >= 1s", ErrConfig, c.Baseline, c.Spike, c.Recovery)
	case c.Duration < 15*time.Second:
		return fmt.Errorf("%w: duration (%s) must be >= 15s to show a scale-out and a scale-in", ErrConfig, c.Duration)
	case c.BaselineRPS <= 0:
		return fmt.Errorf("%w: baseline rps (%d) must be > 0", ErrConfig, c.BaselineRPS)
	case c.SpikeRPS <= c.BaselineRPS:
		return fmt.Errorf("%w: spike rps (%d) must be > baseline rps (%d)", ErrConfig, c.SpikeRPS, c.BaselineRPS)
	case c.Min < 1 || c.Min > c.Max:
		return fmt.Errorf("%w: min (%d) must be >= 1 and <= max (%d)", ErrConfig, c.Min, c.Max)
	case c.Target <= 0 || c.Target > 100:
		return fmt.Errorf("%w: target (%v) must be in (0, 100]", ErrConfig, c.Target)
	case c.Capacity <= 0:
		return fmt.Errorf("%w: capacity (%d) must be > 0", ErrConfig, c.Capacity)
	}
	return nil
}

// FromEnv reads DEMO_DURATION (a Go duration) into c.Duration.
func FromEnv(c Config, getenv func(string) string) (Config, error) {
	if v := getenv("DEMO_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("%w: DEMO_DURATION (%q) must be a positive Go duration such as 90s", ErrConfig, v)
		}
		c.Duration = d
	}
	return c, nil
}

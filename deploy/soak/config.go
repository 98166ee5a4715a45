package soak

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Config is one soak run; start from DefaultConfig.
type Config struct {
	// BinDir holds the binaries (`make build`). Required.
	BinDir string
	// ReportDir receives report.json and report.txt (default soak-report).
	ReportDir string
	// Duration is how long the load runs (SOAK_DURATION, default 30m).
	Duration time.Duration
	// WarmUp is left out of the slopes: caches, pools and the first scale
	// out fill up then (default 2m).
	WarmUp time.Duration
	// SampleEvery is the sampling period (default 10s).
	SampleEvery time.Duration
	// BaselineRPS and SpikeRPS are the offered load (defaults 40 and 200,
	// the demo's).
	BaselineRPS, SpikeRPS int
	// SpikeEvery is the distance between spike starts, SpikeFor a spike's
	// length (defaults 4m and 60s).
	SpikeEvery, SpikeFor time.Duration
	// Capacity, Min, Max and Target are the fleet's, as in the demo
	// (50 req/s per instance, 2–6 instances, util 50).
	Capacity int
	Min, Max int
	Target   float64
	// ScaleInWindow is the policy's scale-in stabilisation (default 15s).
	ScaleInWindow time.Duration
	// PublishInterval is the coordinators' CloudWatch period (default 2s,
	// as in the demo).
	PublishInterval time.Duration
	// AgentHTTPPort is the port each instance's agent serves /metrics on,
	// so its goroutines are sampled too (default 9101).
	AgentHTTPPort int
	// Out receives progress lines and the table (default os.Stdout).
	Out io.Writer
	// KeepDir keeps the sandbox's data and logs.
	KeepDir bool
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("soak config")

// DefaultConfig is `make soak`: 30 minutes, a 60 s spike every 4 minutes.
func DefaultConfig() Config {
	return Config{
		ReportDir:       "soak-report",
		Duration:        30 * time.Minute,
		WarmUp:          2 * time.Minute,
		SampleEvery:     10 * time.Second,
		BaselineRPS:     40,
		SpikeRPS:        200,
		SpikeEvery:      4 * time.Minute,
		SpikeFor:        60 * time.Second,
		Capacity:        50,
		Min:             2,
		Max:             6,
		Target:          50,
		ScaleInWindow:   15 * time.Second,
		PublishInterval: 2 * time.Second,
		AgentHTTPPort:   9101,
		Out:             os.Stdout,
	}
}

// MaxDuration bounds one run: the load loop is bounded in time.
const MaxDuration = 24 * time.Hour

// Validate names the first wrong field and why; it changes nothing.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
	}
	switch {
	case c.BinDir == "":
		return bad("bin dir: required")
	case c.ReportDir == "":
		return bad("report dir: required")
	case c.Duration < 10*time.Second || c.Duration > MaxDuration:
		return bad("duration (%v): must be between 10s and %v", c.Duration, MaxDuration)
	case c.SampleEvery < 100*time.Millisecond:
		return bad("sample every (%v): must be >= 100ms", c.SampleEvery)
	case c.WarmUp < 0 || c.WarmUp+3*c.SampleEvery > c.Duration:
		return bad("warm up (%v): must be >= 0 and leave at least 3 samples of the %v duration", c.WarmUp, c.Duration)
	case c.BaselineRPS < 1 || c.SpikeRPS < c.BaselineRPS:
		return bad("rates: baseline (%d) must be >= 1 and spike (%d) >= baseline", c.BaselineRPS, c.SpikeRPS)
	case c.SpikeFor <= 0 || c.SpikeEvery <= c.SpikeFor:
		return bad("spike: for (%v) must be > 0 and shorter than every (%v)", c.SpikeFor, c.SpikeEvery)
	case c.Capacity < 1:
		return bad("capacity (%d): must be >= 1", c.Capacity)
	case c.Min < 1 || c.Max < c.Min:
		return bad("min (%d) and max (%d): need 1 <= min <= max", c.Min, c.Max)
	case c.Target <= 0:
		return bad("target (%v): must be > 0", c.Target)
	case c.PublishInterval < time.Second:
		return bad("publish interval (%v): must be >= 1s", c.PublishInterval)
	case c.AgentHTTPPort < 0 || c.AgentHTTPPort > 65535:
		return bad("agent http port (%d): must be 0 (off) or a port", c.AgentHTTPPort)
	case c.Out == nil:
		return bad("out: required")
	}
	return nil
}

// FromEnv applies SOAK_DURATION to c.
func FromEnv(c Config, getenv func(string) string) (Config, error) {
	if v := getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("%w: SOAK_DURATION %q: %w", ErrConfig, v, err)
		}
		c.Duration = d
		// A short run keeps a proportionate warm-up and spike cadence.
		c.WarmUp = min(c.WarmUp, d/5)
	}
	return c, nil
}

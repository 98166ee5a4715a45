package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
)

// Config is one demo run; start from DefaultConfig.
type Config struct {
	// BinDir holds the binaries (`make build`). Required.
	BinDir string
	// ReportDir receives timeline.csv, chart.svg and summary.json
	// (default demo-report).
	ReportDir string
	// Baseline, Spike and Recovery are the load profile's phases (default
	// 30s, 52.5s and 67.5s: WithDuration's split of 150s); Total is their sum.
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
	// Compare is "" (Shoal alone) or "aws": a second, identical fleet
	// behind a load balancer of its own, under the same load, scaled by the
	// local cloud's AWS target tracking instead of Shoal (compare.go).
	Compare string
	// Budget bounds the whole run's wall time when > 0: the recovery phase
	// ends early to stay inside it (WithCompare sets 7m40s, so `make demo
	// DEMO_COMPARE=aws` with its build stays under 8 minutes).
	Budget time.Duration
	// AgentFlush is the stand-in CloudWatch agent's flush interval in
	// compare mode (default 10s, the period of AWS's best target tracking
	// setting); it samples every second.
	AgentFlush time.Duration
	// OnLoad, when set, is called just before the load starts, with the
	// running sandbox (the console screenshot opens its page then). It
	// must not block.
	OnLoad func(ctx context.Context, sb *sandbox.Sandbox)
	// Scenario is ScenarioSpike (the default: baseline, spike, recovery)
	// or ScenarioSpot (WithSpot: steady load at Min while two instances
	// get Spot interruption notices; spot.go).
	Scenario string
	// SpotNoticeIn is how long after its notice the local cloud
	// terminates an interrupted instance (default 40s, so the scenario
	// stays short); SpotDrainMargin is the coordinators'
	// --spot-drain-margin (default 5s).
	SpotNoticeIn, SpotDrainMargin time.Duration
	// SpotFirstNotice is the timeline second of the first notice (default
	// 3); the second follows SpotGap seconds later (default 10) and not
	// before the first replacement is in service, so capacity drops by
	// one at most.
	SpotFirstNotice, SpotGap int
}

// The scenarios: Config.Scenario's values.
const (
	ScenarioSpike = "spike"
	ScenarioSpot  = "spot"
)

// CompareAWS is Config.Compare's one value.
const CompareAWS = "aws"

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("demo config")

// DefaultConfig is `make demo`: 150 s of load, 40 req/s rising to 200,
// a fleet of 2 to 6 instances of 50 req/s held at 50 % utilisation. BinDir
// has no default.
func DefaultConfig() Config {
	return Config{
		ReportDir:       "demo-report",
		BaselineRPS:     40,
		SpikeRPS:        200,
		Capacity:        50,
		Min:             2,
		Max:             6,
		Target:          50,
		ScaleInWindow:   15 * time.Second,
		PublishInterval: 2 * time.Second,
		AgentFlush:      10 * time.Second,
		Out:             os.Stdout,
		Scenario:        ScenarioSpike,
		SpotNoticeIn:    40 * time.Second,
		SpotDrainMargin: 5 * time.Second,
		SpotFirstNotice: 3,
		SpotGap:         10,
	}.WithDuration(150 * time.Second)
}

// WithCompare returns c set up for `--compare aws`: 20 s of baseline, a
// one-minute spike, then up to 380 s of baseline again, which ends early
// once both fleets are back at min. AWS's side needs the length: its
// scale-in waits for 15 low datapoints and for 300 s after its last
// scale-out (deploy/awsmodel), and its alarm actions repeat only once a
// minute. Budget keeps the whole run under 8 minutes.
func (c Config) WithCompare(kind string) Config {
	c.Compare = kind
	c.Baseline, c.Spike, c.Recovery = 20*time.Second, 60*time.Second, 380*time.Second
	c.Budget = 7*time.Minute + 40*time.Second
	return c
}

// WithSpot returns c set up for the spot scenario: 6 to 8 instances
// (min 6, so the fleet sits at 6 and the policy never scales it; the two
// above leave room for Shoal's desired+1 replacements) under a steady 120
// req/s, 40 % of what 6 serve at the target, for 30 s: notices at t=3 and
// t=13, each settled (drained, replaced, terminated) in a few seconds on
// the local cloud.
func (c Config) WithSpot() Config {
	c.Scenario = ScenarioSpot
	c.Min, c.Max, c.BaselineRPS = 6, 8, 120
	c.SpikeRPS = max(c.SpikeRPS, c.BaselineRPS+1)
	c.Baseline, c.Spike, c.Recovery = 28*time.Second, time.Second, time.Second
	return c
}

// WithDuration returns c with its phases split from d: 20 % baseline, 35 %
// spike, 45 % baseline again.
func (c Config) WithDuration(d time.Duration) Config {
	c.Baseline = d * 20 / 100
	c.Spike = d * 35 / 100
	c.Recovery = d - c.Baseline - c.Spike
	return c
}

// Total is the whole load profile's length.
func (c Config) Total() time.Duration { return c.Baseline + c.Spike + c.Recovery }

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	switch {
	case c.BinDir == "":
		return fmt.Errorf("%w: bin dir: required (run `make build`)", ErrConfig)
	case c.Baseline < time.Second || c.Spike < time.Second || c.Recovery < time.Second:
		return fmt.Errorf("%w: phases (baseline %s, spike %s, recovery %s) must all be >= 1s", ErrConfig, c.Baseline, c.Spike, c.Recovery)
	case c.Total() < 15*time.Second:
		return fmt.Errorf("%w: duration (%s) must be >= 15s to show a scale-out and a scale-in", ErrConfig, c.Total())
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
	case c.ReportDir == "":
		return fmt.Errorf("%w: report dir: required", ErrConfig)
	case c.ScaleInWindow <= 0:
		return fmt.Errorf("%w: scale-in window (%s) must be > 0", ErrConfig, c.ScaleInWindow)
	case c.PublishInterval <= 0:
		return fmt.Errorf("%w: publish interval (%s) must be > 0", ErrConfig, c.PublishInterval)
	case c.Out == nil:
		return fmt.Errorf("%w: out: a writer for the live lines is required", ErrConfig)
	case c.Compare != "" && c.Compare != CompareAWS:
		return fmt.Errorf("%w: compare (%q) must be empty or %q", ErrConfig, c.Compare, CompareAWS)
	case c.Budget < 0:
		return fmt.Errorf("%w: budget (%s) must be >= 0", ErrConfig, c.Budget)
	case c.Scenario != ScenarioSpike && c.Scenario != ScenarioSpot:
		return fmt.Errorf("%w: scenario (%q) must be %q or %q", ErrConfig, c.Scenario, ScenarioSpike, ScenarioSpot)
	case c.Scenario == ScenarioSpot && c.Compare != "":
		return fmt.Errorf("%w: compare (%q) runs only with the %q scenario", ErrConfig, c.Compare, ScenarioSpike)
	case c.Scenario == ScenarioSpot && c.Max < c.Min+1:
		return fmt.Errorf("%w: max (%d) must leave room above min (%d) for a replacement in the spot scenario", ErrConfig, c.Max, c.Min)
	case c.Scenario == ScenarioSpot && (c.SpotNoticeIn < 10*time.Second || c.SpotNoticeIn > 2*time.Minute):
		return fmt.Errorf("%w: spot notice in (%s) must be between 10s and 2m", ErrConfig, c.SpotNoticeIn)
	case c.Scenario == ScenarioSpot && (c.SpotDrainMargin < 0 || c.SpotDrainMargin >= c.SpotNoticeIn):
		return fmt.Errorf("%w: spot drain margin (%s) must be >= 0 and below the notice's %s", ErrConfig, c.SpotDrainMargin, c.SpotNoticeIn)
	case c.Scenario == ScenarioSpot && (c.SpotFirstNotice < 1 || c.SpotFirstNotice >= int(c.Total()/time.Second)):
		return fmt.Errorf("%w: spot first notice (t=%ds) must be >= 1 and inside the load (%s)", ErrConfig, c.SpotFirstNotice, c.Total())
	case c.Scenario == ScenarioSpot && (c.SpotGap < 0 || c.SpotFirstNotice+c.SpotGap >= int(c.Total()/time.Second)):
		return fmt.Errorf("%w: spot gap (%ds) must be >= 0 and leave the second notice inside the load (%s)", ErrConfig, c.SpotGap, c.Total())
	case c.Compare != "" && (c.AgentFlush < time.Second || c.AgentFlush > time.Minute):
		return fmt.Errorf("%w: agent flush (%s) must be between 1s and 1m", ErrConfig, c.AgentFlush)
	}
	return nil
}

// FromEnv applies DEMO_SCENARIO (WithSpot for "spot"), DEMO_COMPARE (WithCompare) and then DEMO_DURATION (a Go
// duration): in the default run it splits the phases; in a compare run it
// shortens or lengthens the recovery phase so the profile lasts that long.
func FromEnv(c Config, getenv func(string) string) (Config, error) {
	switch v := getenv("DEMO_SCENARIO"); v {
	case "", ScenarioSpike:
	case ScenarioSpot:
		if c.Scenario != ScenarioSpot {
			c = c.WithSpot()
		}
	default:
		return c, fmt.Errorf("%w: DEMO_SCENARIO (%q) must be %q, %q or unset", ErrConfig, v, ScenarioSpike, ScenarioSpot)
	}
	if v := getenv("DEMO_DURATION"); v != "" && c.Scenario == ScenarioSpot {
		// The spot scenario's load is one phase; its bound is the total.
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second {
			return c, fmt.Errorf("%w: DEMO_DURATION (%q) must be a Go duration of at least 30s in the spot scenario", ErrConfig, v)
		}
		c.Baseline, c.Spike, c.Recovery = d-2*time.Second, time.Second, time.Second
		return c, nil
	}
	if v := getenv("DEMO_COMPARE"); v != "" {
		if v != CompareAWS {
			return c, fmt.Errorf("%w: DEMO_COMPARE (%q) must be %q or unset", ErrConfig, v, CompareAWS)
		}
		c = c.WithCompare(v)
	}
	if v := getenv("DEMO_DURATION"); v != "" && c.Compare != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= c.Baseline+c.Spike {
			return c, fmt.Errorf("%w: DEMO_DURATION (%q) must be a Go duration longer than the compare run's baseline and spike (%s)", ErrConfig, v, c.Baseline+c.Spike)
		}
		c.Recovery = d - c.Baseline - c.Spike
		return c, nil
	}
	if v := getenv("DEMO_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("%w: DEMO_DURATION (%q) must be a positive Go duration such as 90s", ErrConfig, v)
		}
		c = c.WithDuration(d)
	}
	return c, nil
}

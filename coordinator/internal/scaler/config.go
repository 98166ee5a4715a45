package scaler

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

// Config tunes the loop. Start from DefaultConfig.
type Config struct {
	// EvalInterval is the loop period (--eval-interval).
	EvalInterval time.Duration
	// DrainTimeout bounds the wait for LBs to report a victim idle
	// (--drain-timeout); the LB feed's drain deadlines use it too.
	DrainTimeout time.Duration
	// HookTimeout bounds the agent's on-drain hook.
	HookTimeout time.Duration
	// AgentGrace is how long a group instance may run before an agent that
	// never reported gets it flagged (--agent-grace).
	AgentGrace time.Duration
	// RetireUnknownAfter is how long an instance the group does not know
	// may stay unhealthy before it leaves the registry
	// (--retire-unknown-after), so ids nobody launched do not pile up.
	RetireUnknownAfter time.Duration
	// HookName is the lifecycle hook Shoal puts on each group.
	HookName string
	// HookHeartbeat is the heartbeat timeout of a hook the scaler puts on a
	// group that has none (--hook-heartbeat). A group whose hook already
	// has a heartbeat timeout AWS accepts keeps it: Terraform's or `fleet
	// bootstrap`'s value is the operator's. Shoal sends heartbeats at a
	// third of the hook's own timeout while a drain lasts.
	HookHeartbeat time.Duration
	// LaunchFailures is how many failed launches in a row stop scale-out.
	LaunchFailures int
	// ActivityCheckEvery bounds DescribeScalingActivities calls per fleet
	// while the group is short of capacity.
	ActivityCheckEvery time.Duration
	// NodeID is the node the scaler runs on: the actor of its decisions.
	NodeID string
	// SpotDrainMargin is how long before a Spot interruption's notice time
	// the drain must end (--spot-drain-margin).
	SpotDrainMargin time.Duration
	// RebalanceReplace drains and replaces an instance on a rebalance
	// recommendation, without a deadline (--rebalance-replace); without it
	// the instance is only flagged at risk.
	RebalanceReplace bool
	// WarmPools reads the groups' warm pools; nil means none are read.
	WarmPools cloud.WarmPools
	// Now is the clock.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	return Config{
		EvalInterval:       time.Second,
		DrainTimeout:       30 * time.Second,
		HookTimeout:        10 * time.Second,
		AgentGrace:         time.Minute,
		RetireUnknownAfter: 10 * time.Minute,
		HookName:           cloud.DrainHookName,
		HookHeartbeat:      cloud.DrainHookHeartbeat,
		LaunchFailures:     3,
		ActivityCheckEvery: 5 * time.Second,
		SpotDrainMargin:    15 * time.Second,
		Now:                time.Now,
		Logger:             slog.Default(),
	}
}

// Validate says which field is wrong and why; field names are serve's flags
// where there is one.
func (c Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"eval-interval", c.EvalInterval}, {"drain-timeout", c.DrainTimeout}, {"hook timeout", c.HookTimeout},
		{"agent-grace", c.AgentGrace}, {"retire-unknown-after", c.RetireUnknownAfter}, {"hook heartbeat", c.HookHeartbeat}, {"activity check every", c.ActivityCheckEvery}} {
		if d.v <= 0 {
			return fmt.Errorf("%s (%v) must be > 0", d.name, d.v)
		}
	}
	switch {
	case c.HookHeartbeat < cloud.MinHookHeartbeat || c.HookHeartbeat > cloud.MaxHookHeartbeat || c.HookHeartbeat%time.Second != 0:
		return fmt.Errorf("hook-heartbeat (%v): must be whole seconds from %v to %v (AWS's limits)", c.HookHeartbeat, cloud.MinHookHeartbeat, cloud.MaxHookHeartbeat)
	case c.HookName == "":
		return errors.New("hook name: required")
	case c.SpotDrainMargin < 0 || c.SpotDrainMargin >= 2*time.Minute:
		return fmt.Errorf("spot-drain-margin (%v) must be >= 0 and under the two-minute notice", c.SpotDrainMargin)
	case c.LaunchFailures < 1:
		return fmt.Errorf("launch failures (%d) must be >= 1", c.LaunchFailures)
	case c.Now == nil:
		return errors.New("now: required")
	case c.Logger == nil:
		return errors.New("logger: required")
	}
	return nil
}

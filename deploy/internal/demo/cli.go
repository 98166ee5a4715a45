package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// Main is shoal-demo's entry point; it returns the exit status. When ctx
// ends (main cancels it on Ctrl-C and SIGTERM) the demo stops everything it
// started before returning.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg := DefaultConfig()
	cfg.Out = stdout
	cmd := &cobra.Command{
		Use:   "shoal-demo",
		Short: "bring Shoal up on the local cloud and scale a fleet through a load spike (what `make demo` runs)",
		Long: `shoal-demo starts the local cloud, a 3-node coordinator cluster, a golden
instance running demoapp, the fleet bootstrap and shoal-lb, then drives
baseline → spike → baseline load through the load balancer, printing one
line per second, and writes demo-report/ (timeline.csv, chart.svg,
summary.json). DEMO_DURATION (a Go duration, default 150s) sets the length of
the load profile. Ctrl-C stops everything cleanly.

With --compare aws (or DEMO_COMPARE=aws) a second, identical fleet runs
beside Shoal's behind a load balancer of its own, under the same load at the
same moment, scaled by AWS target tracking as the local cloud runs it (10 s
high-resolution metric, published every 10 s by a stand-in CloudWatch
agent) and never by Shoal. The run lasts up to about 7.5 minutes, so AWS's
side can scale out and back in.

With --scenario spot (or DEMO_SCENARIO=spot) the fleet is held at 6
instances under steady load while two of them get Spot interruption
notices from the local cloud (terminated 40 s later; the coordinators run
with --spot-drain-margin 5s). The load lasts 30 s (DEMO_DURATION sets
it), the whole run about a minute; summary.json lists each interruption's
notice, drain start, replacement in service and termination.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := cfg
			if cmd.Flags().Changed("scenario") {
				switch c.Scenario {
				case ScenarioSpike:
				case ScenarioSpot:
					c = c.WithSpot()
				default:
					return fmt.Errorf("%w: --scenario (%q) must be %q or %q", ErrConfig, c.Scenario, ScenarioSpike, ScenarioSpot)
				}
			}
			if cmd.Flags().Changed("compare") {
				if c.Compare != CompareAWS {
					return fmt.Errorf("%w: --compare (%q) must be %q", ErrConfig, c.Compare, CompareAWS)
				}
				c = c.WithCompare(c.Compare)
			}
			c, err := FromEnv(c, getenv)
			if err != nil {
				return err
			}
			if c.BinDir == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bin dir: %w", err)
				}
				c.BinDir = filepath.Dir(exe)
			}
			ctx := cmd.Context()
			_, err = Run(ctx, c, nil)
			if ctx.Err() != nil && !c.Hold {
				return fmt.Errorf("interrupted; everything was stopped: %w", err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.BinDir, "bin", cfg.BinDir, "directory of the Shoal binaries (default: this program's directory)")
	f.StringVar(&cfg.ReportDir, "report-dir", cfg.ReportDir, "where timeline.csv, chart.svg and summary.json go")
	f.BoolVar(&cfg.KeepDir, "keep", cfg.KeepDir, "keep the sandbox's data and process logs (its path is printed)")
	f.BoolVar(&cfg.Hold, "hold", cfg.Hold, "keep the system up after the report, for the CLI tour, until Ctrl-C")
	f.IntVar(&cfg.BaselineRPS, "baseline-rps", cfg.BaselineRPS, "baseline load, requests/s")
	f.IntVar(&cfg.SpikeRPS, "spike-rps", cfg.SpikeRPS, "spike load, requests/s")
	f.StringVar(&cfg.Scenario, "scenario", cfg.Scenario, `"spike" (load spike, the default) or "spot" (two Spot interruptions under steady load)`)
	f.StringVar(&cfg.Compare, "compare", cfg.Compare, `"aws": a second fleet beside Shoal's, scaled by AWS target tracking in the local cloud`)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "shoal-demo:", err)
		return 1
	}
	return 0
}

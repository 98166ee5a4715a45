package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/agent/internal/loadgen"
)

// newLoadgenCmd is the ingest benchmark's load generator, hidden from help:
// it is a tool for deploy/bench/ingest.sh, not something an instance runs.
func newLoadgenCmd() *cobra.Command {
	var cfg loadgen.Config
	cmd := &cobra.Command{
		Use:    "loadgen",
		Short:  "Simulate N agents streaming samples to a coordinator cluster (benchmark tool)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Progress = os.Stderr
			sum, err := loadgen.Run(cmd.Context(), cfg)
			if err != nil {
				return fmt.Errorf("loadgen: %w", err)
			}
			// The summary goes to stdout, one key=value line, for scripts.
			_, err = fmt.Fprintln(cmd.OutOrStdout(), sum)
			return err
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Coordinators, "coordinator", nil, "coordinator rpc addresses (comma-separated or repeated); streams are spread over them")
	f.StringVar(&cfg.Fleet, "fleet", "", "fleet every simulated agent joins")
	f.IntVar(&cfg.Agents, "agents", 0, "simulated agents (one Connect stream each)")
	f.IntVar(&cfg.Metrics, "metrics", 10, "metrics per sample (cpu, mem, load1, net_rx, net_tx, disk, then custom_N)")
	f.DurationVar(&cfg.Interval, "interval", time.Second, "each agent's sample interval")
	f.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to run")
	f.DurationVar(&cfg.Warmup, "warmup", 0, "start of the run left out of the summary")
	f.DurationVar(&cfg.Measure, "measure", 0, "length of the summary's window after the warm-up (0: to the end)")
	f.DurationVar(&cfg.Ramp, "ramp", 5*time.Second, "spread of the streams' first connects")
	f.IntVar(&cfg.StreamsPerConn, "streams-per-conn", 500, "streams sharing one client connection")
	f.StringVar(&cfg.IDPrefix, "id-prefix", "lg", "instance ids are i-<prefix><hex index>")
	return cmd
}

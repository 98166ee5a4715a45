package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Main is shoal-loadgen's command line; it returns the exit code. The flags
// are the ones `shoal-agent loadgen` had, so deploy/bench/ingest.sh only
// changed the binary it runs. The summary goes to stdout as one key=value
// line for scripts, progress to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) int {
	cmd := NewCommand(stderr)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "shoal-loadgen:", err)
		return 1
	}
	return 0
}

// NewCommand builds the command with its flags bound to DefaultConfig's
// fields; progress lines go to progress.
func NewCommand(progress io.Writer) *cobra.Command {
	cfg := DefaultConfig()
	cmd := &cobra.Command{
		Use:           "shoal-loadgen",
		Short:         "Simulate N agents streaming samples to a coordinator cluster (benchmark tool)",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Progress = progress
			sum, err := Run(cmd.Context(), cfg)
			if err != nil {
				return fmt.Errorf("loadgen: %w", err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), sum)
			return err
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Coordinators, "coordinator", cfg.Coordinators, "coordinator rpc addresses (comma-separated or repeated); streams are spread over them")
	f.StringVar(&cfg.Fleet, "fleet", cfg.Fleet, "fleet every simulated agent joins")
	f.IntVar(&cfg.Agents, "agents", cfg.Agents, "simulated agents (one Connect stream each)")
	f.IntVar(&cfg.Metrics, "metrics", cfg.Metrics, "metrics per sample (cpu, mem, load1, net_rx, net_tx, disk, then custom_N)")
	f.DurationVar(&cfg.Interval, "interval", cfg.Interval, "each agent's sample interval")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to run")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "start of the run left out of the summary")
	f.DurationVar(&cfg.Measure, "measure", cfg.Measure, "length of the summary's window after the warm-up (0: to the end)")
	f.DurationVar(&cfg.Ramp, "ramp", cfg.Ramp, "spread of the streams' first connects")
	f.IntVar(&cfg.StreamsPerConn, "streams-per-conn", cfg.StreamsPerConn, "streams sharing one client connection")
	f.StringVar(&cfg.IDPrefix, "id-prefix", cfg.IDPrefix, "instance ids are i-<prefix><hex index>; lower-case hex")
	f.StringVar(&cfg.CACert, "ca-cert", cfg.CACert, "CA bundle that verifies the coordinators; turns on mutual TLS with one agent certificate and one connection per simulated agent")
	f.StringVar(&cfg.CAKey, "ca-key", cfg.CAKey, "the CA's key: the generator signs each simulated agent's ECDSA P-256 certificate itself (benchmarks only)")
	f.StringVar(&cfg.Cluster, "cluster", cfg.Cluster, "cluster name the certificates carry")
	return cmd
}

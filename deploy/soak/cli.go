package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// Main is shoal-soak's entry point; it returns the exit status: 0 after a
// run without failed requests, 1 otherwise. When ctx ends (Ctrl-C) it stops
// everything it started before returning.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg := DefaultConfig()
	cfg.Out = stdout
	cmd := &cobra.Command{
		Use:   "shoal-soak",
		Short: "run the whole system under demo-like load with spikes for a long time and report what grows (what `make soak` runs)",
		Long: `shoal-soak brings the system up on the local cloud as the demo does (mutual TLS,
enrollment and tokens on), drives baseline load through shoal-lb with a spike
every --spike-every, and samples every process's RSS, open fds and
goroutines every --sample-every. It writes soak-report/report.json and
report.txt: each process's least-squares slope per hour after the warm-up, and
the requests that failed. SOAK_DURATION (a Go duration) sets --duration.
It exits 1 when any request failed.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := cfg
			if !cmd.Flags().Changed("duration") {
				var err error
				if c, err = FromEnv(c, getenv); err != nil {
					return err
				}
			}
			if c.BinDir == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bin dir: %w", err)
				}
				c.BinDir = filepath.Dir(exe)
			}
			_, err := Run(cmd.Context(), c)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.BinDir, "bin", "", "directory with the binaries (default: this program's)")
	f.StringVar(&cfg.ReportDir, "report-dir", cfg.ReportDir, "where report.json and report.txt go")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the load runs (SOAK_DURATION)")
	f.DurationVar(&cfg.WarmUp, "warm-up", cfg.WarmUp, "left out of the slopes")
	f.DurationVar(&cfg.SampleEvery, "sample-every", cfg.SampleEvery, "sampling period")
	f.IntVar(&cfg.BaselineRPS, "baseline-rps", cfg.BaselineRPS, "offered load between spikes")
	f.IntVar(&cfg.SpikeRPS, "spike-rps", cfg.SpikeRPS, "offered load during a spike")
	f.DurationVar(&cfg.SpikeEvery, "spike-every", cfg.SpikeEvery, "distance between spike starts")
	f.DurationVar(&cfg.SpikeFor, "spike-for", cfg.SpikeFor, "length of a spike")
	f.BoolVar(&cfg.KeepDir, "keep", false, "keep the sandbox's data and every process's log")
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "shoal-soak:", err)
		if errors.Is(err, ErrConfig) {
			return 2
		}
		return 1
	}
	return 0
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/deploy/internal/demoapp"
)

// Main runs shoal-demoapp with args and returns the exit code. When ctx
// ends (main cancels it on SIGINT and SIGTERM) the server drains in-flight
// requests for up to --shutdown-timeout and exits 0. The SDK reads
// AWS_EC2_METADATA_SERVICE_ENDPOINT itself; getenv is there so every Shoal
// binary's Main has one shape.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "shoal-demoapp:", err)
		return 1
	}
	return 0
}

func newRootCmd() *cobra.Command {
	cfg := demoapp.DefaultConfig()
	var logLevel string
	cmd := &cobra.Command{
		Use:   "shoal-demoapp",
		Short: "Demo workload: HTTP and gRPC with a modelled per-instance capacity",
		Long: `shoal-demoapp serves HTTP/1.1, h2c and gRPC (shoal.demo.v1.GreeterService and
grpc.health.v1) on one port. Every answer names the instance (X-Shoal-Instance).
It serves at most --capacity requests/s, queues up to --queue more, and exports
demoapp_utilization (0-100) at /metrics for shoal-agent to scrape.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("log-level (%q): %w", logLevel, err)
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			cfg.Logger = logger
			if err := cfg.Validate(); err != nil {
				return err
			}
			ident, err := demoapp.ResolveInstanceID(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if ident.IMDSErr != nil {
				logger.Warn("instance metadata gave no instance id; answering with the hostname", "id", ident.ID, "err", ident.IMDSErr)
			} else {
				logger.Info("instance id", "id", ident.ID, "source", ident.Source)
			}
			srv, err := demoapp.New(cfg, ident.ID)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen (%s): %w", cfg.Listen, err)
			}
			err = srv.Serve(cmd.Context(), ln)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address serving HTTP/1.1, h2c and gRPC")
	f.StringVar(&cfg.InstanceID, "instance-id", cfg.InstanceID, "instance id in answers (default: from IMDS, else the hostname)")
	f.StringVar(&cfg.IMDSEndpoint, "imds-endpoint", cfg.IMDSEndpoint, "instance metadata endpoint (default: AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254)")
	f.DurationVar(&cfg.IMDSTimeout, "imds-timeout", cfg.IMDSTimeout, "how long to wait for IMDS before falling back to the hostname")
	f.Float64Var(&cfg.Capacity, "capacity", cfg.Capacity, "most requests per second this instance serves")
	f.IntVar(&cfg.QueueSize, "queue", cfg.QueueSize, "requests that may wait for capacity; more are rejected with 503 / RESOURCE_EXHAUSTED")
	f.DurationVar(&cfg.Work, "work", cfg.Work, "real CPU burnt per request (at most 1/capacity)")
	f.DurationVar(&cfg.UtilWindow, "util-window", cfg.UtilWindow, "window over which demoapp_utilization is measured")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight requests may take to finish after SIGTERM")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

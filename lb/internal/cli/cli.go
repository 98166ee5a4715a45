package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

// Main runs shoal-lb with args (without the program name) until ctx ends
// or the command finishes, and returns the exit code. getenv reads the
// environment (os.Getenv in the binary; tests pass their own).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if err := run(ctx, args, stdout, stderr, getenv); err != nil {
		if !errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "shoal-lb:", err)
		}
		return 1
	}
	return 0
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	root := &cobra.Command{
		Use:           "shoal-lb",
		Short:         "Shoal's L7 load balancer for HTTP/1.1, h2 and gRPC",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var logLevel string
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
			return fmt.Errorf("log-level (%q): %w", logLevel, err)
		}
		slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})))
		return nil
	}
	root.AddCommand(newServeCmd(getenv), newLoadtestCmd())
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

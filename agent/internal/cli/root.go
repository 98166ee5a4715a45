package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Main runs the command line and returns the process exit code. The agent
// stops cleanly (exit 0) when ctx ends: main cancels it on SIGINT and
// SIGTERM, which is how systemd stops the agent. The agent reads no
// environment variables; getenv is there so every Shoal binary's Main has
// one shape.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) int {
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "shoal-agent:", err)
		return 1
	}
	return 0
}

// NewRoot builds the command tree. The root runs the agent itself, with the
// same flags as `run`.
func NewRoot() *cobra.Command {
	o := defaultOptions()
	root := &cobra.Command{
		Use:           "shoal-agent",
		Short:         "Stream this instance's per-second metrics to the Shoal coordinator",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cmd.ErrOrStderr(), o) },
	}
	o.bind(root)
	root.AddCommand(newRunCmd())
	return root
}

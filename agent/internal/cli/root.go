package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "shoal-agent:", err)
		return 1
	}
	return 0
}

// NewRoot builds the command tree. The root runs the agent itself, with the
// same flags as `run`.
func NewRoot() *cobra.Command {
	var o options
	root := &cobra.Command{
		Use:           "shoal-agent",
		Short:         "Stream this instance's per-second metrics to the Shoal coordinator",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), o) },
	}
	o.bind(root)
	root.AddCommand(newRunCmd(), newLoadgenCmd())
	return root
}

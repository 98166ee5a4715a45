package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

// Main runs the command line and returns the process exit code. `serve`
// runs until ctx ends (main cancels it on SIGINT and SIGTERM), then
// terminates every instance's process group before it returns. The local
// cloud reads no environment variables; getenv is there so every Shoal
// binary's Main has one shape.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) int {
	root := &cobra.Command{
		Use:          "shoal-localcloud",
		Short:        "AWS-compatible local cloud for Shoal tests and demos (never for real AWS)",
		SilenceUsage: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(), newInterruptCmd())
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return 1
	}
	return 0
}

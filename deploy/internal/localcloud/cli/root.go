package cli

import (
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Run executes the command line and returns the process exit code.
func Run(args []string) int { return run(args, os.Stdout, os.Stderr) }

func run(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:          "shoal-localcloud",
		Short:        "AWS-compatible local cloud for Shoal tests and demos (never for real AWS)",
		SilenceUsage: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd())
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		return 1
	}
	return 0
}

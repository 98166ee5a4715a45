package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/simulate"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// DefaultAddress is where operator commands look for a node.
const DefaultAddress = "127.0.0.1:7400"

// globals are the flags every command takes.
type globals struct {
	address string
	output  string
	stale   bool
	timeout time.Duration
}

var g globals

// Root returns the command tree. Add a command with
// cli.Root().AddCommand(...) before Execute, or use Run.
func Root() *cobra.Command {
	g = globals{}
	root := &cobra.Command{
		Use:           "shoal-coordinator",
		Short:         "Shoal coordinator node and operator CLI",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.output != "table" && g.output != "json" {
				return fmt.Errorf("output (%q): must be table or json", g.output)
			}
			return nil
		},
	}
	addr := os.Getenv("SHOAL_ADDR")
	if addr == "" {
		addr = DefaultAddress
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.address, "address", addr, "gRPC address of any coordinator node (env SHOAL_ADDR)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	pf.BoolVar(&g.stale, "stale", false, "read from the node asked instead of the leader (may lag)")
	pf.DurationVar(&g.timeout, "timeout", 15*time.Second, "how long a command may take")
	root.AddCommand(
		serveCmd(), statusCmd(), raftCmd(), fleetCmd(), pauseCmd(), resumeCmd(),
		snapshotCmd(), instancesCmd(), policyCmd(), decisionsCmd(), scaleCmd(), benchRaftCmd(),
		explainCmd(), alarmsCmd(), metricsCmd(), topCmd(), simulate.NewCommand(),
	)
	return root
}

// Run executes the command line and returns the exit code. Errors print as
// one line on stderr.
func Run(args []string) int {
	root := Root()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error: "+errorLine(err))
		return 1
	}
	return 0
}

// errorLine turns an error, usually a gRPC status, into one line.
func errorLine(err error) string {
	msg := err.Error()
	if s, ok := status.FromError(err); ok {
		msg = s.Message()
		if s.Code() == codes.DeadlineExceeded {
			msg = fmt.Sprintf("no answer from %s within %s", g.address, g.timeout)
		}
	}
	return strings.ReplaceAll(strings.TrimSpace(msg), "\n", "; ")
}

// client dials --address; the caller closes the connection.
func client() (shoalv1.ControlServiceClient, *grpc.ClientConn, error) {
	cc, err := rpc.Dial(g.address)
	if err != nil {
		return nil, nil, fmt.Errorf("address (%q): %w", g.address, err)
	}
	return shoalv1.NewControlServiceClient(cc), cc, nil
}

// call runs fn with a client and a context bounded by --timeout.
func call(cmd *cobra.Command, fn func(ctx context.Context, c shoalv1.ControlServiceClient) error) error {
	c, cc, err := client()
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	defer cancel()
	up := rpc.Ready(ctx, cc)
	return reachable(up, fn(ctx, c))
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows with aligned columns; the first row is the header.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// exactArgs is cobra.ExactArgs with an error that names what is missing.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return fmt.Errorf("%s: required (usage: %s)", names[len(args)], cmd.UseLine())
		}
		if len(args) > len(names) {
			return fmt.Errorf("unexpected argument %q (usage: %s)", args[len(names)], cmd.UseLine())
		}
		return nil
	}
}

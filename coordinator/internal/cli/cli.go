package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// DefaultAddress is where operator commands look for a node.
const DefaultAddress = "127.0.0.1:7400"

// env is what one run of the CLI works with: what the process gives it
// (tests pass their own) and the flags every command takes. Nothing of it is
// global, so runs do not share state.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	address string
	output  string
	stale   bool
	timeout time.Duration
	creds
}

// newRoot returns the command tree.
func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "shoal-coordinator",
		Short:         "Shoal coordinator node and operator CLI",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if e.output != "table" && e.output != "json" {
				return fmt.Errorf("output (%q): must be table or json", e.output)
			}
			return nil
		},
	}
	addr := e.getenv("SHOAL_ADDR")
	if addr == "" {
		addr = DefaultAddress
	}
	pf := root.PersistentFlags()
	pf.StringVar(&e.address, "address", addr, "gRPC address of any coordinator node (env SHOAL_ADDR)")
	pf.StringVarP(&e.output, "output", "o", "table", "output format: table or json")
	pf.BoolVar(&e.stale, "stale", false, "read from the node asked instead of the leader (may lag)")
	pf.DurationVar(&e.timeout, "timeout", 15*time.Second, "how long a command may take")
	e.creds.register(root, e.getenv)
	root.AddCommand(
		serveCmd(e), statusCmd(e), raftCmd(e), fleetCmd(e), pauseCmd(e), resumeCmd(e),
		snapshotCmd(e), instancesCmd(e), policyCmd(e), decisionsCmd(e), scaleCmd(e),
		explainCmd(e), alarmsCmd(e), metricsCmd(e), topCmd(e), simulateCmd(e), tlsCmd(e),
		aclCmd(e),
	)
	return root
}

// Main executes the command line args (without the program name) and
// returns the exit code. ctx ends `serve` and bounds every command; errors
// print as one line on stderr; getenv reads SHOAL_ADDR and the credentials
// (SHOAL_CACERT, SHOAL_CLIENT_CERT, SHOAL_CLIENT_KEY, SHOAL_TOKEN).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error: "+e.errorLine(err))
		return exitCode(err)
	}
	return 0
}

// errorLine turns an error, usually a gRPC status, into one line.
func (e *env) errorLine(err error) string {
	msg := err.Error()
	if s, ok := status.FromError(err); ok {
		msg = s.Message()
		if s.Code() == codes.DeadlineExceeded {
			msg = fmt.Sprintf("no answer from %s within %s", e.address, e.timeout)
		}
	}
	return strings.ReplaceAll(strings.TrimSpace(msg), "\n", "; ")
}

// dial connects to --address with the credential flags; the caller closes
// the connection.
func (e *env) dial() (*grpc.ClientConn, error) {
	opts, err := e.creds.dialOptions()
	if err != nil {
		return nil, err
	}
	cc, err := rpc.Dial(e.address, opts...)
	if err != nil {
		return nil, fmt.Errorf("address (%q): %w", e.address, err)
	}
	return cc, nil
}

// client dials --address; the caller closes the connection.
func (e *env) client() (shoalv1.ControlServiceClient, *grpc.ClientConn, error) {
	cc, err := e.dial()
	if err != nil {
		return nil, nil, err
	}
	return shoalv1.NewControlServiceClient(cc), cc, nil
}

// call runs fn with a client and a context bounded by --timeout.
func (e *env) call(cmd *cobra.Command, fn func(ctx context.Context, c shoalv1.ControlServiceClient) error) error {
	return e.callConn(cmd, func(ctx context.Context, cc *grpc.ClientConn) error {
		return fn(ctx, shoalv1.NewControlServiceClient(cc))
	})
}

// callACL is call for ACLService.
func (e *env) callACL(cmd *cobra.Command, fn func(ctx context.Context, c shoalv1.ACLServiceClient) error) error {
	return e.callConn(cmd, func(ctx context.Context, cc *grpc.ClientConn) error {
		return fn(ctx, shoalv1.NewACLServiceClient(cc))
	})
}

func (e *env) callConn(cmd *cobra.Command, fn func(ctx context.Context, cc *grpc.ClientConn) error) error {
	cc, err := e.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), e.timeout)
	defer cancel()
	up := rpc.Ready(ctx, cc)
	return e.reachable(up, fn(ctx, cc))
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

package enrollbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// Main is shoal-enrollbench's command line; it returns the exit code.
//
//	shoal-enrollbench proxy --listen ADDR --upstream URL
//	shoal-enrollbench setup --cloud URL --group G --instances N
//	shoal-enrollbench run --cloud URL --counts URL --coordinator A,B,C --ca-cert F --fleet F --group G --instances N
//
// run prints one key=value summary line on stdout.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) int {
	root := &cobra.Command{Use: "shoal-enrollbench", Short: "Enrollment benchmark driver (deploy/bench/enroll.sh)", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(proxyCmd(), setupCmd(), runCmd())
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "shoal-enrollbench:", err)
		return 1
	}
	return 0
}

func proxyCmd() *cobra.Command {
	var listen, upstream string
	cmd := &cobra.Command{Use: "proxy", Short: "count AWS calls on their way to the local cloud; counts at " + CountsPath, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := url.Parse(upstream)
			if err != nil || u.Scheme == "" || u.Host == "" {
				return fmt.Errorf("upstream (%q): must be a URL like http://127.0.0.1:4566", upstream)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen (%q): %w", listen, err)
			}
			srv := &http.Server{Handler: NewCounter(u), ReadHeaderTimeout: 5 * time.Second}
			go func() {
				<-cmd.Context().Done()
				_ = srv.Close()
			}()
			fmt.Fprintln(cmd.OutOrStdout(), "proxy listening on", ln.Addr())
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address the coordinators' AWS_ENDPOINT_URL points at")
	cmd.Flags().StringVar(&upstream, "upstream", "", "the local cloud's URL")
	return cmd
}

func setupCmd() *cobra.Command {
	var cloud, group string
	var n int
	var timeout time.Duration
	cmd := &cobra.Command{Use: "setup", Short: "create a group of N process-less instances on the local cloud and wait until they run", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cloud == "" || group == "" || n < 1 || n > maxInstances {
				return fmt.Errorf("cloud and group are required and instances (%d) must be 1 to %d", n, maxInstances)
			}
			return Setup(cmd.Context(), cloud, group, n, timeout)
		}}
	f := cmd.Flags()
	f.StringVar(&cloud, "cloud", "", "the local cloud's URL")
	f.StringVar(&group, "group", "", "Auto Scaling group (and launch template) name")
	f.IntVar(&n, "instances", 0, "instances in the group")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long the instances may take to run")
	return cmd
}

func runCmd() *cobra.Command {
	cfg := DefaultConfig()
	cmd := &cobra.Command{Use: "run", Short: "enroll one agent per running instance of the group, all at once, and stream", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sum, err := Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			for _, e := range sum.FirstErrs {
				fmt.Fprintln(cmd.ErrOrStderr(), "agent failed:", e)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), sum)
			return err
		}}
	f := cmd.Flags()
	f.StringVar(&cfg.Cloud, "cloud", "", "the local cloud's URL (instances and their IMDS endpoints)")
	f.StringVar(&cfg.Counts, "counts", "", "the counting proxy's counts URL (http://ADDR"+CountsPath+")")
	f.StringSliceVar(&cfg.Coordinators, "coordinator", nil, "coordinator addresses serving AgentService; agents are spread over them")
	f.StringVar(&cfg.CACert, "ca-cert", "", "CA bundle that verifies the coordinators")
	f.StringVar(&cfg.Cluster, "cluster", cfg.Cluster, "cluster name in the certificates")
	f.StringVar(&cfg.Fleet, "fleet", "", "fleet the agents stream to")
	f.StringVar(&cfg.Group, "group", "", "Auto Scaling group whose instances enroll")
	f.IntVar(&cfg.Instances, "instances", 0, "agents (one per instance)")
	f.DurationVar(&cfg.CallTimeout, "call-timeout", cfg.CallTimeout, "bound of one Enroll or Connect attempt")
	f.DurationVar(&cfg.Backoff, "backoff", cfg.Backoff, "wait before retrying an attempt that may pass later")
	f.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound of the whole run")
	return cmd
}

package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud"
)

func newServeCmd() *cobra.Command {
	cfg := localcloud.DefaultConfig()
	var logLevel string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve Auto Scaling, EC2 and CloudWatch on one address; instances run as local processes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("log-level (%q): %w", logLevel, err)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			if cfg.InstanceLogDir != "" {
				if err := os.MkdirAll(cfg.InstanceLogDir, 0o755); err != nil {
					return fmt.Errorf("instance-log-dir: %w", err)
				}
			}
			srv, err := localcloud.NewServer(cfg)
			if err != nil {
				return err
			}
			if err := srv.Start(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "shoal-localcloud listening on %s (AWS_ENDPOINT_URL=%s)\n", srv.URL(), srv.URL())
			<-cmd.Context().Done()
			return srv.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address of the AWS endpoint and the /_localcloud/ test hooks")
	f.DurationVar(&cfg.BootDelay, "boot-delay", cfg.BootDelay, "time an instance stays pending before it is running/InService")
	f.DurationVar(&cfg.WarmBootDelay, "warm-boot-delay", cfg.WarmBootDelay, "time an instance taken from a warm pool stays pending before it is running/InService")
	f.StringVar(&cfg.StateFile, "state-file", cfg.StateFile, "persist groups, launch templates, images and alarms here across restarts")
	f.DurationVar(&cfg.AlarmInterval, "alarm-interval", cfg.AlarmInterval, "how often alarms are evaluated (at most 10s)")
	f.DurationVar(&cfg.TerminateGrace, "terminate-grace", cfg.TerminateGrace, "wait between SIGTERM and SIGKILL when an instance terminates")
	f.DurationVar(&cfg.LaunchRetry, "launch-retry", cfg.LaunchRetry, "wait after a failed group launch before retrying")
	f.StringVar(&cfg.InstanceIPPrefix, "instance-ip-prefix", cfg.InstanceIPPrefix, "loopback /24 (three octets) instance addresses come from")
	f.StringVar(&cfg.InstanceLogDir, "instance-log-dir", cfg.InstanceLogDir, "write each instance's output to <dir>/<instance-id>.log")
	f.StringVar(&cfg.IIDCertOut, "iid-cert-out", cfg.IIDCertOut, "write the PEM certificate that verifies instance identity signatures here (a coordinator's --iid-trust file)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

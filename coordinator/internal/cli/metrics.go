package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/spf13/cobra"

	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func metricsCmd(e *env) *cobra.Command {
	var (
		metric, stat, cluster, instance string
		since, period                   time.Duration
		width                           int
	)
	cmd := &cobra.Command{
		Use:   "metrics FLEET [--metric cpu] [--since 15m]",
		Short: "read a fleet's series back from CloudWatch (GetMetricData): a table and a sparkline",
		Args:  exactArgs("FLEET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if since <= 0 {
				return fmt.Errorf("since (%v): must be > 0", since)
			}
			var group string
			if err := e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				r, err := c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: args[0], Stale: e.stale})
				if err != nil {
					return err
				}
				group = r.Fleet.Asg
				return nil
			}); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), e.timeout)
			defer cancel()
			cfg, err := awscloud.LoadConfig(ctx, awscloud.DefaultConfig())
			if err != nil {
				return err
			}
			now := time.Now()
			rd := publish.NewReader(cloudwatch.NewFromConfig(cfg), cluster)
			pts, err := rd.Series(ctx, publish.Query{
				Group: group, Metric: metric, Stat: stat, Start: now.Add(-since), End: now, Period: period, InstanceID: instance,
			})
			if err != nil {
				return err
			}
			if e.output == "json" {
				out := make([]view.Point, 0, len(pts))
				for _, p := range pts {
					out = append(out, view.Point{T: p.T, V: p.V})
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			if err := publish.WriteSeries(cmd.OutOrStdout(), metric, stat, pts, width); err != nil {
				return err
			}
			// A gap the cluster accounted for says so under the series.
			lost, err := rd.LostPeriods(ctx, now.Add(-since), now, period)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "metrics: reading the lost-period record: %v\n", err)
				return nil
			}
			return publish.WriteLost(cmd.OutOrStdout(), lost)
		},
	}
	f := cmd.Flags()
	f.StringVar(&metric, "metric", "cpu", "Shoal metric name (cpu, mem, requests_per_target, ...) or a custom metric")
	f.StringVar(&stat, "stat", "Average", "Average, Sum, SampleCount, Minimum or Maximum")
	f.DurationVar(&since, "since", 15*time.Minute, "how far back to read")
	f.DurationVar(&period, "period", 10*time.Second, "step between points")
	f.StringVar(&cluster, "cluster-name", publish.DefaultConfig().Cluster, "the cluster's --cluster-name (its ShoalCluster dimension)")
	f.StringVar(&instance, "instance", "", "read the per-instance series of this instance (when the fleet publishes them)")
	f.IntVar(&width, "width", 60, "sparkline width")
	return cmd
}

package cli

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/spf13/cobra"

	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
	"github.com/shoal-dev/shoal/coordinator/internal/simulate"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// simulateCmd is the simulator with --from-cloudwatch: the fleet's group
// and policy metric come from the cluster, the history from CloudWatch.
func simulateCmd(e *env) *cobra.Command {
	var cluster string
	cmd := simulate.NewCommandWith(func(ctx context.Context, fleet string, since time.Duration) (string, []simulate.HistoryPoint, error) {
		c, cc, err := e.client()
		if err != nil {
			return "", nil, err
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(ctx, e.timeout)
		defer cancel()
		var f *shoalv1.Fleet
		if err := e.reachable(rpc.Ready(ctx, cc), func() error {
			r, err := c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: fleet, Stale: e.stale})
			if err == nil {
				f = r.Fleet
			}
			return err
		}()); err != nil {
			return "", nil, err
		}
		metric := policyMetric(f.GetPolicy())
		if metric == "" {
			return "", nil, errors.New("the fleet's policy tracks no metric to rebuild demand from")
		}
		cfg, err := awscloud.LoadConfig(ctx, awscloud.DefaultConfig())
		if err != nil {
			return "", nil, err
		}
		samples, err := publish.NewReader(cloudwatch.NewFromConfig(cfg), cluster).History(ctx, f.Asg, metric, since, time.Now())
		if err != nil {
			return "", nil, err
		}
		pts := make([]simulate.HistoryPoint, len(samples))
		for i, s := range samples {
			pts[i] = simulate.HistoryPoint{T: s.T, Step: s.Step, Avg: s.Avg, Count: s.Count}
		}
		return metric, pts, nil
	})
	cmd.Flags().StringVar(&cluster, "cluster-name", publish.DefaultConfig().Cluster, "with --from-cloudwatch: the cluster's --cluster-name (its ShoalCluster dimension)")
	return cmd
}

// policyMetric is the metric demand is rebuilt from: the first target
// tracking entry's, else the first step policy's.
func policyMetric(p *shoalv1.ScalingPolicy) string {
	switch {
	case len(p.GetTargetTracking()) > 0:
		return p.TargetTracking[0].Metric
	case len(p.GetStepScaling()) > 0:
		return p.StepScaling[0].Metric
	}
	return ""
}

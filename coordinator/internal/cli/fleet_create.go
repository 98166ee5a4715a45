package cli

import (
	"context"

	"github.com/spf13/cobra"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func fleetCreateCmd(e *env) *cobra.Command {
	f := &shoalv1.Fleet{}
	cmd := &cobra.Command{
		Use:   "create NAME --asg ASG --min N --max N [--desired N] [--app-port PORT]",
		Short: "create a fleet (the group is not touched and need not exist yet)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.Name = args[0]
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				resp, err := c.CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: f})
				if err != nil {
					return err
				}
				return e.printFleet(cmd.OutOrStdout(), resp.Fleet)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Asg, "asg", "", "EC2 Auto Scaling group name")
	fl.Int32Var(&f.Min, "min", 0, "fewest instances Shoal asks for")
	fl.Int32Var(&f.Max, "max", 0, "most instances Shoal asks for")
	fl.Int32Var(&f.Desired, "desired", 0, "starting desired capacity (default: min)")
	fl.Int32Var(&f.AppPort, "app-port", 0, "port the application listens on")
	fl.StringArrayVar(&f.AlarmActions, "alarm-action", nil, "CloudWatch alarm action ARN (repeatable)")
	fl.BoolVar(&f.PublishPerInstance, "publish-per-instance", false, "publish per-instance CloudWatch series too")
	_ = cmd.MarkFlagRequired("asg")
	_ = cmd.MarkFlagRequired("max")
	return cmd
}

package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func fleetUpdateCmd(e *env) *cobra.Command {
	var (
		asg                     string
		min, max, desired, port int32
		actions                 []string
		clearActions, perInst   bool
	)
	cmd := &cobra.Command{
		Use:   "update NAME [--asg ASG] [--min N] [--max N] [--desired N] [--app-port PORT] [--alarm-action ARN ...]",
		Short: "change the given fields of a fleet",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			req := &shoalv1.UpdateFleetRequest{Name: args[0]}
			if fl.Changed("asg") {
				req.Asg = &asg
			}
			if fl.Changed("min") {
				req.Min = &min
			}
			if fl.Changed("max") {
				req.Max = &max
			}
			if fl.Changed("desired") {
				req.Desired = &desired
			}
			if fl.Changed("app-port") {
				req.AppPort = &port
			}
			if fl.Changed("alarm-action") || clearActions {
				if fl.Changed("alarm-action") && clearActions {
					return errors.New("alarm-action and clear-alarm-actions: give one, not both")
				}
				req.SetAlarmActions, req.AlarmActions = true, actions
			}
			if fl.Changed("publish-per-instance") {
				req.PublishPerInstance = &perInst
			}
			if req.Asg == nil && req.Min == nil && req.Max == nil && req.Desired == nil && req.AppPort == nil && !req.SetAlarmActions && req.PublishPerInstance == nil {
				return errors.New("nothing to change: give at least one of --asg, --min, --max, --desired, --app-port, --alarm-action, --clear-alarm-actions, --publish-per-instance")
			}
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				resp, err := c.UpdateFleet(ctx, req)
				if err != nil {
					return err
				}
				return e.printFleet(cmd.OutOrStdout(), resp.Fleet)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&asg, "asg", "", "EC2 Auto Scaling group name")
	fl.Int32Var(&min, "min", 0, "fewest instances Shoal asks for")
	fl.Int32Var(&max, "max", 0, "most instances Shoal asks for")
	fl.Int32Var(&desired, "desired", 0, "desired capacity")
	fl.Int32Var(&port, "app-port", 0, "port the application listens on")
	fl.StringArrayVar(&actions, "alarm-action", nil, "CloudWatch alarm action ARN (repeatable; replaces the list)")
	fl.BoolVar(&clearActions, "clear-alarm-actions", false, "remove every alarm action")
	fl.BoolVar(&perInst, "publish-per-instance", false, "publish per-instance CloudWatch series too")
	return cmd
}

package cli

import (
	"context"
	"errors"
	"sort"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

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
			f := &shoalv1.Fleet{Name: args[0], Asg: asg, Min: min, Max: max, Desired: desired, AppPort: port, AlarmActions: actions, PublishPerInstance: perInst}
			var paths []string
			for flag, path := range map[string]string{"asg": "asg", "min": "min", "max": "max", "desired": "desired", "app-port": "app_port", "publish-per-instance": "publish_per_instance"} {
				if fl.Changed(flag) {
					paths = append(paths, path)
				}
			}
			if fl.Changed("alarm-action") || clearActions {
				if fl.Changed("alarm-action") && clearActions {
					return errors.New("alarm-action and clear-alarm-actions: give one, not both")
				}
				paths = append(paths, "alarm_actions")
			}
			if len(paths) == 0 {
				return errors.New("nothing to change: give at least one of --asg, --min, --max, --desired, --app-port, --alarm-action, --clear-alarm-actions, --publish-per-instance")
			}
			sort.Strings(paths)
			req := &shoalv1.UpdateFleetRequest{Fleet: f, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}
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

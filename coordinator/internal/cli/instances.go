package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func instancesCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "instances [FLEET]",
		Short: "list the instance registry (JSON: an array)",
		Args:  cobraMaxOne,
		RunE: func(cmd *cobra.Command, args []string) error {
			fleet := ""
			if len(args) == 1 {
				fleet = args[0]
			}
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				resp, err := c.ListInstances(ctx, &shoalv1.ListInstancesRequest{Fleet: fleet, Stale: e.stale})
				if err != nil {
					return err
				}
				out := make([]view.Instance, 0, len(resp.Instances))
				for _, in := range resp.Instances {
					out = append(out, view.InstanceOf(in))
				}
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), out)
				}
				rows := [][]string{{"ID", "FLEET", "STATE", "PRIVATE_IP", "AZ", "READY", "FLAG"}}
				for _, in := range out {
					rows = append(rows, []string{in.ID, in.Fleet, in.State, in.PrivateIP, in.AvailabilityZone, strconv.FormatBool(in.Ready), in.Flag})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
}

func cobraMaxOne(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return exactArgs("FLEET")(cmd, args)
	}
	return nil
}

package cli

import (
	"context"

	"github.com/spf13/cobra"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func fleetGetCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "show one fleet",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				var resp *shoalv1.GetFleetResponse
				err := retryRead(ctx, c, e.timeout, func(ctx context.Context) (err error) {
					resp, err = c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: args[0], Stale: e.stale})
					return err
				})
				if err != nil {
					return err
				}
				return e.printFleet(cmd.OutOrStdout(), resp.Fleet, resp.LaunchDelays...)
			})
		},
	}
}

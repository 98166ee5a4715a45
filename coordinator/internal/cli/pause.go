package cli

import (
	"context"

	"github.com/spf13/cobra"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func pauseCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "pause NAME",
		Short: "stop scaling a fleet until resumed",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				resp, err := c.PauseFleet(ctx, &shoalv1.PauseFleetRequest{Fleet: args[0]})
				if err != nil {
					return err
				}
				return e.printFleet(cmd.OutOrStdout(), resp.Fleet)
			})
		},
	}
}

package cli

import (
	"context"

	"github.com/spf13/cobra"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func resumeCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "resume NAME",
		Short: "resume scaling a paused fleet",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				resp, err := c.ResumeFleet(ctx, &shoalv1.ResumeFleetRequest{Fleet: args[0]})
				if err != nil {
					return err
				}
				return e.printFleet(cmd.OutOrStdout(), resp.Fleet)
			})
		},
	}
}

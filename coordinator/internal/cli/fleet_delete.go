package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func fleetDeleteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "delete a fleet (the group is not touched)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				if _, err := c.DeleteFleet(ctx, &shoalv1.DeleteFleetRequest{Fleet: args[0]}); err != nil {
					return err
				}
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), map[string]string{"deleted": args[0]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted fleet %s\n", args[0])
				return nil
			})
		},
	}
}

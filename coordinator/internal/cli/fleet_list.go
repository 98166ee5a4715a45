package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func fleetListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "list fleets (JSON: an array)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				resp, err := c.ListFleets(ctx, &shoalv1.ListFleetsRequest{Stale: e.stale})
				if err != nil {
					return err
				}
				if e.output == "json" {
					out := make([]view.Fleet, 0, len(resp.Fleets))
					for _, f := range resp.Fleets {
						out = append(out, view.FleetOf(f))
					}
					return printJSON(cmd.OutOrStdout(), out)
				}
				return table(cmd.OutOrStdout(), fleetRows(resp.Fleets))
			})
		},
	}
}

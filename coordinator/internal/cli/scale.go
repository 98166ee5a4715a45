package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func scaleCmd(e *env) *cobra.Command {
	var (
		desired int32
		reason  string
	)
	cmd := &cobra.Command{
		Use:   "scale FLEET --desired N [--reason TEXT]",
		Short: "commit a manual scaling decision (within min and max)",
		Args:  exactArgs("FLEET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				resp, err := c.ScaleFleet(ctx, &shoalv1.ScaleFleetRequest{Fleet: args[0], Desired: desired, Reason: reason})
				if err != nil {
					return err
				}
				d := view.DecisionOf(resp.Decision)
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), d)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "decision %d: %s %d → %d (%s)\n", d.ID, d.Fleet, d.From, d.To, d.Status)
				return nil
			})
		},
	}
	cmd.Flags().Int32Var(&desired, "desired", 0, "the capacity to ask for")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the decision history")
	_ = cmd.MarkFlagRequired("desired")
	return cmd
}

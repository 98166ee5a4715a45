package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func alarmsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "alarms [FLEET]",
		Short: "the CloudWatch alarms Shoal keeps, with state, reason and last change (JSON: an array)",
		Args:  cobraMaxOne,
		RunE: func(cmd *cobra.Command, args []string) error {
			fleet := ""
			if len(args) == 1 {
				fleet = args[0]
			}
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				r, err := c.ListAlarms(ctx, &shoalv1.ListAlarmsRequest{Fleet: fleet})
				if err != nil {
					return err
				}
				out := view.AlarmsOf(r.Alarms)
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), out)
				}
				rows := [][]string{{"NAME", "STATE", "METRIC", "THRESHOLD", "LAST_CHANGE", "REASON"}}
				for _, a := range out {
					rows = append(rows, []string{a.Name, a.State, a.Metric, fmt.Sprintf("%s %g", a.Comparison, a.Threshold), a.LastChange, a.Reason})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
}

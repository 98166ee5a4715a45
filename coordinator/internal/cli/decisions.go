package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func decisionsCmd(e *env) *cobra.Command {
	var limit int32
	cmd := &cobra.Command{
		Use:   "decisions FLEET [--limit N]",
		Short: "list a fleet's scaling decisions, newest last (JSON: an array)",
		Args:  exactArgs("FLEET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return fmt.Errorf("limit (%d) must be >= 0", limit)
			}
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				var resp *shoalv1.ListDecisionsResponse
				err := retryRead(ctx, c, e.timeout, func(ctx context.Context) (err error) {
					resp, err = c.ListDecisions(ctx, &shoalv1.ListDecisionsRequest{Fleet: args[0], Limit: limit, Stale: e.stale})
					return err
				})
				if err != nil {
					return err
				}
				out := make([]view.Decision, 0, len(resp.Decisions))
				for _, d := range resp.Decisions {
					out = append(out, view.DecisionOf(d))
				}
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), out)
				}
				rows := [][]string{{"ID", "AT", "FROM", "TO", "STATUS", "SOURCE", "REASON", "ERROR"}}
				for _, d := range out {
					e := d.Error
					if d.ErrorClass != "" {
						e = d.ErrorClass + ": " + e
					}
					rows = append(rows, []string{fmt.Sprint(d.ID), d.At, itoa(d.From), itoa(d.To), d.Status, d.Source, d.Reason, e})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
	cmd.Flags().Int32Var(&limit, "limit", 0, "only the newest N (0: all kept)")
	return cmd
}

package cli

import (
	"context"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func explainCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "explain FLEET",
		Short: "what the scaling engine would do now, and why, with the numbers",
		Args:  exactArgs("FLEET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				r, err := c.ExplainFleet(ctx, &shoalv1.ExplainFleetRequest{Fleet: args[0]})
				if err != nil {
					return err
				}
				v := view.ExplainOf(r)
				w := cmd.OutOrStdout()
				if e.output == "json" {
					return printJSON(w, v)
				}
				fmt.Fprintf(w, "fleet %s: current %d, recommended %d\n", v.Fleet, v.Current, v.Recommended)
				if v.Reason != "" {
					fmt.Fprintf(w, "reason: %s\n", v.Reason)
				}
				if v.Blocked != "" {
					fmt.Fprintf(w, "not acting: %s\n", v.Blocked)
				}
				for _, d := range v.Details {
					fmt.Fprintf(w, "  %s\n", d)
				}
				keys := make([]string, 0, len(v.Inputs))
				for k := range v.Inputs {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				rows := [][]string{{"INPUT", "VALUE"}}
				for _, k := range keys {
					rows = append(rows, []string{k, fmt.Sprintf("%.4g", v.Inputs[k])})
				}
				return table(w, rows)
			})
		},
	}
}

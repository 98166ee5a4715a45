package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func instancesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
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
					rows = append(rows, []string{in.ID, in.Fleet, in.State, in.PrivateIP, in.AvailabilityZone, strconv.FormatBool(in.Ready), flagText(in)})
				}
				return table(cmd.OutOrStdout(), rows)
			})
		},
	}
	cmd.AddCommand(resetIdentityCmd(e))
	return cmd
}

func resetIdentityCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "reset-identity ID",
		Short: "forget an instance's enrollment, so its next enrollment counts as a first one (admin)",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				if _, err := c.ResetInstanceIdentity(ctx, &shoalv1.ResetInstanceIdentityRequest{InstanceId: args[0]}); err != nil {
					return err
				}
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), map[string]string{"reset": args[0]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "reset the identity of %s: its next enrollment is accepted as a first one\n", args[0])
				return nil
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

// flagText is the FLAG column: the registry's flags (warm, at_risk), why
// the instance is in its state, and the live flag.
func flagText(in view.Instance) string {
	var parts []string
	if in.Warm {
		parts = append(parts, "warm")
	}
	if in.AtRisk {
		parts = append(parts, "at_risk")
	}
	for _, p := range []string{in.StateReason, in.Flag} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}

package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/bootstrap"
	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func fleetDeleteCmd(e *env) *cobra.Command {
	var purge bool
	spec := bootstrap.PurgeSpec{GroupTimeout: 10 * time.Minute, Poll: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "delete NAME [--purge]",
		Short: "delete a fleet (the group is not touched); with --purge also what fleet bootstrap made: group, launch template, images and their snapshots",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Fleet = args[0]
			// A bad flag, or AWS settings the purge cannot run with (no
			// region), must not cost the fleet first.
			var cl *awscloud.Cloud
			if purge {
				if err := spec.ValidateTimeout(); err != nil {
					return err
				}
				var err error
				if cl, _, err = awscloud.Open(cmd.Context(), awscloud.DefaultConfig()); err != nil {
					return fmt.Errorf("--purge: %w", err)
				}
			}
			err := e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				if purge && spec.ASG == "" {
					// The group the fleet names, before the fleet is gone.
					resp, err := c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: args[0]})
					switch {
					case status.Code(err) == codes.NotFound:
						// A purge run again after the fleet went: spec
						// validation below asks for --asg.
					case err != nil:
						return err
					default:
						spec.ASG = resp.Fleet.GetAsg()
					}
				}
				if purge && spec.ASG != "" {
					// A group that is not this fleet's to purge keeps the
					// fleet too: nothing is deleted.
					if err := bootstrap.CheckGroup(ctx, cl, spec); err != nil {
						return err
					}
				}
				_, err := c.DeleteFleet(ctx, &shoalv1.DeleteFleetRequest{Fleet: args[0]})
				if purge && status.Code(err) == codes.NotFound {
					return nil // a purge run again after the fleet went
				}
				return err
			})
			if err != nil {
				return err
			}
			if !purge {
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), map[string]string{"deleted": args[0]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted fleet %s\n", args[0])
				return nil
			}
			if err := spec.Validate(); err != nil {
				return err
			}
			// The AWS calls run here, with the operator's credentials (the
			// operator role), never through the coordinators.
			ctx, cancel := context.WithTimeout(cmd.Context(), spec.GroupTimeout+time.Minute)
			defer cancel()
			// Progress (each deletion as it happens) on stderr; JSON output
			// is the result alone.
			var progress io.Writer = cmd.ErrOrStderr()
			if e.output == "json" {
				progress = io.Discard
			}
			items, err := bootstrap.Purge(ctx, cl, spec, progress)
			if err != nil {
				return fmt.Errorf("purge (fleet %s deleted; run again to finish): %w", args[0], err)
			}
			out := []view.BootstrapItem{{Kind: "fleet", ID: args[0], Note: "deleted"}}
			for _, it := range items {
				out = append(out, view.BootstrapItem{Kind: it.Kind, ID: it.ID, Note: it.Note})
			}
			if e.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			rows := [][]string{{"KIND", "ID", "NOTE"}}
			for _, it := range out {
				rows = append(rows, []string{it.Kind, it.ID, it.Note})
			}
			return table(cmd.OutOrStdout(), rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&purge, "purge", false, "also delete the fleet's group (its instances terminate), launch template, and every image tagged shoal:fleet=NAME with its snapshots, with your AWS credentials (the operator role)")
	fl.StringVar(&spec.ASG, "asg", "", "group to purge (default: the fleet's)")
	fl.StringVar(&spec.Template, "launch-template", "", "launch template to purge (default: the group's)")
	fl.DurationVar(&spec.GroupTimeout, "purge-timeout", spec.GroupTimeout, "longest wait for the group's instances to terminate")
	return cmd
}

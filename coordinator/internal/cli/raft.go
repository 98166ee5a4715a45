package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func raftCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "raft", Short: "inspect or change raft membership"}
	list := &cobra.Command{
		Use:   "list-peers",
		Short: "list the raft configuration",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				resp, err := c.ListPeers(ctx, &shoalv1.ListPeersRequest{})
				if err != nil {
					return err
				}
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), view.NodesOf(resp.Peers))
				}
				return nodeTable(cmd.OutOrStdout(), view.NodesOf(resp.Peers))
			})
		},
	}
	var id string
	remove := &cobra.Command{
		Use:   "remove-peer --id ID",
		Short: "remove a server from the raft configuration",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return fmt.Errorf("id: required")
			}
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				if _, err := c.RemovePeer(ctx, &shoalv1.RemovePeerRequest{Id: id}); err != nil {
					return err
				}
				if e.output == "json" {
					return printJSON(cmd.OutOrStdout(), map[string]string{"removed": id})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", id)
				return nil
			})
		},
	}
	remove.Flags().StringVar(&id, "id", "", "node id to remove")
	cmd.AddCommand(list, remove)
	return cmd
}

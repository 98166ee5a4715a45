package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func statusCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "show the leader, the members and the applied index",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				st, err := c.GetStatus(ctx, &shoalv1.GetStatusRequest{Stale: e.stale})
				if err != nil {
					return err
				}
				v := view.StatusOf(st)
				w := cmd.OutOrStdout()
				if e.output == "json" {
					return printJSON(w, v)
				}
				fmt.Fprintf(w, "leader: %s  term: %d  applied: %d  commit: %d  answered by: %s\n", v.LeaderID, v.Term, v.AppliedIndex, v.CommitIndex, v.NodeID)
				if v.Insecure {
					fmt.Fprintln(w, "insecure: true  (no TLS and no ACLs: anyone who reaches the node can run every command)")
				}
				fmt.Fprintln(w)
				return nodeTable(w, v.Nodes)
			})
		},
	}
}

func nodeTable(w interface{ Write([]byte) (int, error) }, nodes []view.Node) error {
	rows := [][]string{{"ID", "ROLE", "VOTER", "RAFT", "RPC"}}
	for _, n := range nodes {
		rows = append(rows, []string{n.ID, n.Role, strconv.FormatBool(n.Voter), n.RaftAddr, n.RPCAddr})
	}
	return table(w, rows)
}

package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
				st, err := statusWaiting(ctx, c, e.stale)
				if err != nil {
					return err
				}
				v := view.StatusOf(st)
				w := cmd.OutOrStdout()
				if e.output == "json" {
					if err := printJSON(w, v); err != nil {
						return err
					}
					return noLeaderAnswer(v)
				}
				if v.NoLeader != "" {
					fmt.Fprintf(w, "no leader (%s)  term: %d  applied: %d  commit: %d  answered by: %s\n\n", v.NoLeader, v.Term, v.AppliedIndex, v.CommitIndex, v.NodeID)
					if err := nodeTable(w, v.Nodes); err != nil {
						return err
					}
					return noLeaderAnswer(v)
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

// statusWaiting asks for the status until the node names a leader or ctx
// is nearly out; then the node's own no-leader answer is the result.
func statusWaiting(ctx context.Context, c shoalv1.ControlServiceClient, stale bool) (*shoalv1.GetStatusResponse, error) {
	var last *shoalv1.GetStatusResponse
	for {
		st, err := c.GetStatus(ctx, &shoalv1.GetStatusRequest{Stale: stale})
		switch {
		case err != nil && last != nil && (ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded):
			// Held to the deadline (the node's copy of it may end the
			// call first): the no-leader answer already had stands.
			return last, nil
		case err != nil:
			return nil, err
		case st.NoLeader == "":
			return st, nil
		}
		last = st
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 2*readRetryEvery {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return last, nil
		case <-time.After(readRetryEvery):
		}
	}
}

// noLeaderAnswer is the error (exit status 2) of a status the node had to
// answer without a leader; nil otherwise.
func noLeaderAnswer(v view.Status) error {
	if v.NoLeader == "" {
		return nil
	}
	return &noLeaderError{msg: "no leader (" + v.NoLeader + "); the members above are as " + v.NodeID + " sees them"}
}

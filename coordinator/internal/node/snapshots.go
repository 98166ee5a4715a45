package node

import (
	"context"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/backup"
)

// runSnapshots writes this node's state to --snapshot-dir every
// --snapshot-interval until ctx ends. Every node writes its own: a follower
// may lag the leader by the last few entries, which is the price of not
// needing a leader (or quorum) to take a backup.
func (n *Node) runSnapshots(ctx context.Context) {
	w, err := backup.New(n.cfg.Snapshots, n.cfg.Cluster.NodeID, n.raft.FSM().Save, time.Now, n.log.With("component", "snapshots"))
	if err != nil {
		n.log.Error("scheduled snapshots off", "err", err)
		return
	}
	w.Run(ctx)
}

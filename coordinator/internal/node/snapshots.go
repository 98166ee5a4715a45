package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/coordinator/internal/backup"
)

// newSnapshots makes the writer of this node's state to --snapshot-dir, or
// nil when the flag is empty. A directory it cannot create fails the start,
// rather than leave a node running without the backups it was told to
// write. Every node writes its own: a follower may lag the leader by the
// last few entries, which is the price of not needing a leader (or quorum)
// to take a backup.
func (n *Node) newSnapshots(reg prometheus.Registerer) (*backup.Writer, error) {
	if n.cfg.Snapshots.Dir == "" {
		return nil, nil
	}
	w, err := backup.New(n.cfg.Snapshots, n.cfg.Cluster.NodeID, n.raft.FSM().Save, time.Now, n.log.With("component", "snapshots"))
	if err != nil {
		return nil, err
	}
	return w, w.Register(reg)
}

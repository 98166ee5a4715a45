//go:build multiprocess

// Package replace runs what deploy/README.md tells an operator to do when a
// coordinator's instance is replaced, with real shoal-coordinator processes
// on 127.0.0.0/8, secure as production runs (mTLS, tokens):
//
//   - three fresh servers started with the same --bootstrap-expect 3 and a
//     retry-join list form one cluster;
//   - each node in turn is stopped and a fresh process started on the same
//     data directory (the EBS volume) at a new address (a new 127.0.0.x
//     and port, as a new instance's new private IP): the cluster keeps its
//     state and a leader throughout, and the new process catches up;
//   - a node back with an empty data directory (a lost volume) rejoins as
//     a follower and never bootstraps a second cluster;
//   - the restore drill: a scheduled snapshot file (--snapshot-dir) taken
//     back with `snapshot restore` on a freshly formed cluster.
package replace

// Package backup writes a coordinator's state to files on a schedule
// (serve --snapshot-dir, --snapshot-interval), so losing every node and
// every data volume at once is recoverable: each file is what `snapshot
// save` writes, and `snapshot restore FILE` on a fresh cluster takes it
// back. A timer outside the process (deploy/systemd/shoal-snapshot-upload)
// copies the files off the machine.
//
// It never reads raft's own snapshot store and never writes anything but
// its own files in Dir: a half-written file is never visible under its
// final name.
package backup

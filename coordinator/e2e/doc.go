//go:build multiprocess

// Package e2e runs real shoal-coordinator processes on 127.0.0.1: failover
// after kill -9, catch-up after restart, durability across a full restart,
// and a porcupine linearizability check of concurrent writes through a
// leader kill. It finds binaries in $SHOAL_BIN and must never leave a
// process behind or reach beyond loopback.
package e2e

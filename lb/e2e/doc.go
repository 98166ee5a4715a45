//go:build multiprocess

// Package e2e runs the real shoal-lb binary (serve, loadtest) in front of
// bench-backend processes (deploy/bench/cmd/bench-backend), all on
// 127.0.0.1. It finds both binaries in $SHOAL_BIN.
//
// It must never reach beyond 127.0.0.0/8, run unbounded load, or leave a
// process behind: every process is in its own group, killed at test end.
package e2e

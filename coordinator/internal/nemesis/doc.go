// Package nemesis holds the fault hooks the chaos harness (deploy/chaos)
// drives inside a coordinator: a dial map that sends every node-to-node
// connection through the harness's per-link TCP proxies (SHOAL_DIAL_MAP), a
// redirect map that rewrites the leader addresses the node hands to agents
// (SHOAL_REDIRECT_MAP), and a raft-wal file layer that fails writes with
// ENOSPC or flips bytes on read while a control file says so
// (SHOAL_DISK_FAULT_FILE).
//
// Like package failpoint, the hooks act only in binaries built with
// `-tags failpoints`: in every other build each function returns its input
// unchanged and the environment is never read, so a production node cannot
// be partitioned, redirected or given a failing disk by a stray variable.
package nemesis

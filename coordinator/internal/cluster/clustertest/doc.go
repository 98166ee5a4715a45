// Package clustertest runs coordinator clusters in memory for tests, in the
// manner of hashicorp/raft's MakeCluster: every node on raft.InmemTransport
// with in-memory stores, its ControlService on a bufconn listener, node 0
// bootstrapping and the others joining through node 0's API. The cluster,
// server and CLI tests share it, so a change to how nodes start or join is
// made once.
//
// Nothing in it touches a real socket unless Options.TCP is set, so a
// cluster can run inside a testing/synctest bubble: elections, leases and
// every wait then run on the bubble's fake clock, which makes timing
// assertions exact and a loaded machine unable to flap the leadership.
//
// It must never be imported by non-test code, and never wait without a
// deadline.
package clustertest

// Package clustertest runs coordinator clusters in memory for tests, in the
// manner of hashicorp/raft's MakeCluster: every node on raft.InmemTransport
// with in-memory stores, its ControlService on a bufconn listener, node 0
// bootstrapping and the others joining through node 0's API. The cluster
// and server tests share it, so a change to how nodes start or join is made
// once.
//
// It must never be imported by non-test code, and never wait without a
// deadline.
package clustertest

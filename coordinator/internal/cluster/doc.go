// Package cluster wires the coordinator's FSM into hashicorp/raft: TCP
// transport, a durable log store, file snapshots, bootstrap and join,
// forwarding of writes from followers to the leader, leader-checked reads,
// leadership notifications, graceful leadership transfer and raft metrics.
//
// It must never interpret commands beyond stamping the leader's time into
// them, and never retry a write whose outcome is unknown in a way that could
// apply it twice after the caller was told it failed.
package cluster

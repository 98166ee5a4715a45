// Package cluster wires the coordinator's FSM into hashicorp/raft: TCP
// transport, a durable log store, file snapshots, bootstrap and join,
// forwarding of writes from followers to the leader, leader-checked reads,
// leadership notifications, graceful leadership transfer and raft metrics.
// The durable stores are wrapped so that every log entry carries a CRC32C,
// the log's acknowledged end and each snapshot's meta.json are recorded,
// and damage or a store that cannot write is reported on Node.Fatal.
//
// It must never interpret commands beyond stamping the leader's time into
// them, and never retry a write whose outcome is unknown in a way that could
// apply it twice after the caller was told it failed. It must never keep
// serving from storage that failed a check: the node stops and is rebuilt
// from its peers.
package cluster

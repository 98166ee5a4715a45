// Package node is the coordinator's composition root: it owns one node's
// life. New listens, opens raft and builds every service (ingestion and the
// LB feed on every node; the scaler, the CloudWatch publisher and the alarm
// reconciler for when the node leads); Run serves until its context ends and
// then stops everything in order.
//
// Start order: listen first, so a port clash fails before raft touches the
// data dir. Stop order: the leader's loops, then raft (a leader hands over
// leadership) while gRPC still serves so peers can finish forwarding, then
// gRPC, then HTTP.
//
// The package holds wiring and adapters only: decisions are decide's,
// actions the scaler's, periods and alarms publish's, backend sets feed's,
// state the FSM's. Nothing here is global; every setting is a Config field.
package node

// Package engine assembles what a coordinator node runs beside raft:
// ingestion and the LB feed on every node, and, while the node leads, the
// scaler, the CloudWatch publisher and the alarm reconciler. It holds the
// adapters between them (registry over the FSM, live metrics for the
// scaler, backend sets for the feed) and no logic of its own: decisions are
// decide's, actions the scaler's, and state the FSM's.
package engine

// Package ingest is the coordinator's side of AgentService: it holds agent
// streams on any node, forwards what followers hear to the leader over one
// Forward stream per follower, and keeps on the leader a ring buffer per
// instance and the fleet aggregates the scaler reads. It also carries drain
// commands from the leader to whichever node holds the agent's stream.
//
// It must never put a sample into the raft log: only an instance's
// registration, state changes and leave go through the Registry, and only
// when they change. It depends on the cluster only through the small Cluster
// and Registry interfaces defined here, and on fsm only for the instance id
// and address rules, so nothing streams that the registry would refuse.
// Refusals never echo what another agent sent (its start time and address
// are what tell two agents apart), and one Forward stream may introduce only
// a bounded number of new instance ids.
package ingest

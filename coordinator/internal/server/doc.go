// Package server is the coordinator's network front: the gRPC
// ControlService and ACLService on the one --rpc-addr port (package node registers
// AgentService and BackendService on the same *grpc.Server), and /metrics
// and /healthz on --http-addr. What is not in the FSM (live metrics, the
// scaler's reasoning, alarms) comes from the Live view given in Config.
//
// It turns requests into FSM commands and errors into gRPC status codes whose
// messages name the field and the reason; where a code alone is ambiguous
// (not leader or conflict) the status also carries an apierr reason, which
// clients act on instead of the text. It must never change state except
// through raft (cluster.Node.Apply), and never build a gRPC server or client
// outside proto/rpc. A call it passes to the leader carries the verified
// caller (authz.ForwardContext); a token's secret never leaves the node it
// was made on except in the response.
package server

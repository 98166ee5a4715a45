package view

import shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"

// Node is the JSON form of shoalv1.Node.
type Node struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	RPCAddr  string `json:"rpc_addr"`
	// AgentAddr is set when the node has an agent-only listener.
	AgentAddr string `json:"agent_addr,omitempty"`
	Role      string `json:"role"`
	Voter     bool   `json:"voter"`
	// UnreachableSince is set by a leader for a peer whose heartbeats
	// fail: when it last heard from it.
	UnreachableSince string `json:"unreachable_since,omitempty"`
}

// Status is the JSON form of shoalv1.GetStatusResponse, as `status -o json`
// prints it.
type Status struct {
	LeaderID     string `json:"leader_id"`
	Nodes        []Node `json:"nodes"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	Term         uint64 `json:"term"`
	NodeID       string `json:"node_id"`
	// Insecure is true when the answering node runs with --insecure.
	Insecure bool `json:"insecure"`
	// NoLeader is set when the node asked found no leader and answered
	// from its own view: why, in words.
	NoLeader string `json:"no_leader,omitempty"`
	// LastLeaderID is the newest leader the answering node knew of.
	LastLeaderID string `json:"last_leader_id,omitempty"`
}

// NodesOf converts proto nodes; the result is never nil, so JSON prints [].
func NodesOf(ns []*shoalv1.Node) []Node {
	out := make([]Node, 0, len(ns))
	for _, n := range ns {
		out = append(out, Node{ID: n.Id, RaftAddr: n.RaftAddr, RPCAddr: n.RpcAddr, AgentAddr: n.AgentAddr, Role: NodeRoleWord(n.Role), Voter: n.Voter, UnreachableSince: Time(n.UnreachableSince)})
	}
	return out
}

// StatusOf converts a status response.
func StatusOf(s *shoalv1.GetStatusResponse) Status {
	return Status{
		LeaderID: s.LeaderId, Nodes: NodesOf(s.Nodes), AppliedIndex: s.AppliedIndex,
		CommitIndex: s.CommitIndex, Term: s.Term, NodeID: s.NodeId, Insecure: s.Insecure,
		NoLeader: s.NoLeader, LastLeaderID: s.LastLeaderId,
	}
}

package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// clusterService serves ClusterService: the calls servers make to each
// other. The authorizer admits only server certificates to it; ingest owns
// the agent-forwarding stream.
type clusterService struct {
	clusterv1.UnimplementedClusterServiceServer
	node    *cluster.Node
	forward func(clusterv1.ClusterService_ForwardAgentsServer) error
}

// JoinCluster adds a node as a voter, through the leader. With TLS on, a
// server may join only as the node its certificate names, so it can replace
// its own entry (restarted with a new address) and never anyone else's.
func (c *clusterService) JoinCluster(ctx context.Context, req *clusterv1.JoinClusterRequest) (*clusterv1.JoinClusterResponse, error) {
	if err := joinsAsItself(ctx, req.GetNodeId(), c.isMember); err != nil {
		return nil, err
	}
	id, err := c.node.Join(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &clusterv1.JoinClusterResponse{LeaderId: id}, nil
}

// isMember reports whether id is a server of the raft configuration.
func (c *clusterService) isMember(id string) bool {
	peers, err := c.node.Peers()
	if err != nil {
		return false
	}
	for _, p := range peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

// joinsAsItself refuses a join whose node id is not the caller's own. A
// follower passing a join on to the leader presents its own certificate,
// so the leader trusts a forwarded join as the follower checked it, but
// only from a member: the forwarded mark is the caller's word, and a server
// certificate for a node outside the cluster must not use it to join as
// another node, or over a member's entry.
func joinsAsItself(ctx context.Context, nodeID string, member func(string) bool) error {
	id, ok, err := tlsconf.PeerIdentity(ctx)
	switch {
	case err != nil:
		return status.Error(codes.Unauthenticated, err.Error())
	case !ok: // --insecure: no identities to compare
		return nil
	case id.Role != tlsconf.RoleServer:
		return status.Error(codes.PermissionDenied, fmt.Sprintf("%s may not join: only a server certificate joins", id))
	case cluster.IsForwarded(ctx) && id.Name != nodeID:
		if !member(id.Name) {
			return status.Error(codes.PermissionDenied, fmt.Sprintf("%s passes on a join for node %q but is not a member of the cluster; a server joins only as the node its certificate names", id, nodeID))
		}
		return nil
	case id.Name != nodeID:
		return status.Error(codes.PermissionDenied, fmt.Sprintf("%s may not join as node %q: a server joins only as the node its certificate names", id, nodeID))
	}
	return nil
}

// DescribeNode tells a server, member or not, who this node is and whether
// it is in a cluster: a fresh node under --bootstrap-expect has no
// membership yet, so the authorizer's server-certificate check is the gate.
func (c *clusterService) DescribeNode(_ context.Context, _ *clusterv1.DescribeNodeRequest) (*clusterv1.DescribeNodeResponse, error) {
	return c.node.Describe(), nil
}

// ApplyCommand is a follower's write forwarded to this node; it is applied
// only if this node leads.
func (c *clusterService) ApplyCommand(ctx context.Context, req *clusterv1.ApplyCommandRequest) (*clusterv1.ApplyCommandResponse, error) {
	if err := c.fromMember(ctx, "ApplyCommand"); err != nil {
		return nil, err
	}
	r, idx, err := c.node.ApplyLocal(req.Command)
	if err != nil {
		return nil, toStatus(err)
	}
	return &clusterv1.ApplyCommandResponse{Index: idx, Result: fsm.EncodeResult(r)}, nil
}

// ForwardAgents is a follower's stream of the agents it holds.
func (c *clusterService) ForwardAgents(st clusterv1.ClusterService_ForwardAgentsServer) error {
	if c.forward == nil {
		return status.Error(codes.Unimplemented, "this node does not take forwarded agents")
	}
	if err := c.fromMember(st.Context(), "ForwardAgents"); err != nil {
		return err
	}
	return c.forward(st)
}

// fromMember refuses a server certificate that names no member of the raft
// configuration: a certificate the CA issued for a node that never joined,
// or one that was removed, must not write to the log or speak for agents.
// Without TLS (--insecure) there is no identity to check.
func (c *clusterService) fromMember(ctx context.Context, call string) error {
	id, ok, err := tlsconf.PeerIdentity(ctx)
	switch {
	case err != nil:
		return status.Error(codes.Unauthenticated, err.Error())
	case !ok:
		return nil
	case id.Role != tlsconf.RoleServer:
		return status.Error(codes.PermissionDenied, fmt.Sprintf("%s may not call %s: servers only", id, call))
	case !c.isMember(id.Name):
		return status.Error(codes.PermissionDenied, fmt.Sprintf("%s may not call %s: node %q is not a member of the cluster", id, call, id.Name))
	}
	return nil
}

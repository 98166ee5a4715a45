package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/apierr"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// noLeaderStatus answers GetStatus from this node's own view when the
// leader could not be reached. An operator runs `status` exactly when the
// leader is dead; the error of the forwarded call would blame the node
// asked ("cannot reach n2: dial tcp <old leader>") instead of saying that
// the cluster has no leader. ok is false for any other error, and for a
// call another node forwarded (it answers for the leader, not for itself).
func (s *Server) noLeaderStatus(ctx context.Context, req *shoalv1.GetStatusRequest, err error) (*shoalv1.GetStatusResponse, bool) {
	if req.Stale || cluster.IsForwarded(ctx) || !leaderUnavailable(err) {
		return nil, false
	}
	nodes, nerr := s.nodes()
	if nerr != nil {
		return nil, false
	}
	r := s.node.Raft()
	last := s.node.LastLeaderID()
	return &shoalv1.GetStatusResponse{
		Nodes: nodes, AppliedIndex: r.AppliedIndex(), NodeId: s.node.NodeID(), Term: r.CurrentTerm(),
		CommitIndex: r.CommitIndex(), Insecure: s.cfg.Insecure, LastLeaderId: last, NoLeader: NoLeaderWords(last),
	}, true
}

// NoLeaderWords is the reason a node gives when it has no leader to ask.
func NoLeaderWords(lastLeader string) string {
	if lastLeader == "" {
		return "election in progress; no leader known yet"
	}
	return fmt.Sprintf("election in progress; last leader %s, unreachable", lastLeader)
}

// leaderUnavailable reports whether err says the leader could not be
// reached or there is none, as opposed to a refusal or a bad request.
func leaderUnavailable(err error) bool {
	if errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrNotLeader) {
		return true
	}
	if r := apierr.Reason(err); r == apierr.NoLeader || r == apierr.NotLeader {
		return true
	}
	return false
}

// leaderDown marks a forwarded read's failure as NO_LEADER when the
// connection to the leader is not up: the caller's node answered, and the
// leader it forwarded to is what is missing. Without this, the dial error
// of a dead leader reached the CLI as if the node asked were unreachable.
// A leader's own UNAVAILABLE ("not evaluated yet") passes unchanged.
func (s *Server) leaderDown(cc grpc.ClientConnInterface, err error) error {
	if status.Code(err) != codes.Unavailable || apierr.Reason(err) != "" {
		return err
	}
	if c, ok := cc.(*grpc.ClientConn); !ok || c.GetState() == connectivity.Ready {
		return err
	}
	return apierr.Error(codes.Unavailable, apierr.NoLeader, fmt.Sprintf("leader %s unreachable from %s: %s", s.node.LastLeaderID(), s.node.NodeID(), status.Convert(err).Message()))
}

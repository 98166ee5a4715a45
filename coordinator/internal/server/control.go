package server

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/coordinator/internal/authz"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

var _ shoalv1.ControlServiceServer = (*Server)(nil)

// read serves a read locally when stale is set or this node leads (after a
// read barrier), and otherwise asks the leader's ControlService.
func (s *Server) read(ctx context.Context, stale bool, local func() error, remote func(context.Context, shoalv1.ControlServiceClient) error) error {
	return s.readVia(ctx, stale, local, func(ctx context.Context, cc grpc.ClientConnInterface) error {
		return remote(ctx, shoalv1.NewControlServiceClient(cc))
	})
}

// readVia is read for any service: remote gets a connection to the leader
// and a context that names the original caller, so the leader authorizes
// and logs the call as that caller's. A forwarded read that lands on a
// non-leader is refused rather than passed on again.
func (s *Server) readVia(ctx context.Context, stale bool, local func() error, remote func(context.Context, grpc.ClientConnInterface) error) error {
	if stale {
		return toStatus(local())
	}
	if s.node.IsLeader() {
		err := s.node.ReadBarrier(ctx)
		if err == nil {
			return toStatus(local())
		}
		if !errors.Is(err, cluster.ErrNotLeader) {
			return toStatus(err)
		}
	}
	if cluster.IsForwarded(ctx) {
		return toStatus(cluster.ErrNotLeader)
	}
	cc, err := s.node.LeaderConn(ctx)
	if err != nil {
		return toStatus(err)
	}
	return s.leaderDown(cc, remote(forwardContext(ctx), cc))
}

// forwardContext marks a call this node passes to the leader: forwarded
// (never passed on again) and stamped with the verified caller.
func forwardContext(ctx context.Context) context.Context {
	return cluster.WithForwarded(authz.ForwardContext(ctx))
}

// apply commits a command (forwarded to the leader if need be) and turns a
// rejection into a status error.
func (s *Server) apply(ctx context.Context, c fsm.Command) (*fsm.Result, uint64, error) {
	r, idx, err := s.node.Apply(ctx, c.Encode())
	if err != nil {
		return nil, 0, toStatus(err)
	}
	if err := r.Error(); err != nil {
		return nil, 0, toStatus(err)
	}
	return r, idx, nil
}

// GetStatus reports the leader, the members with their roles, and indexes.
func (s *Server) GetStatus(ctx context.Context, req *shoalv1.GetStatusRequest) (*shoalv1.GetStatusResponse, error) {
	if s.node.LeaderID() == "" {
		// No leader to wait for: say so at once; the CLI asks again.
		if local, ok := s.noLeaderStatus(ctx, req, cluster.ErrNoLeader); ok {
			return local, nil
		}
	}
	var out *shoalv1.GetStatusResponse
	err := s.read(ctx, req.Stale, func() error {
		nodes, err := s.nodes()
		if err != nil {
			return err
		}
		r := s.node.Raft()
		out = &shoalv1.GetStatusResponse{
			LeaderId: s.node.LeaderID(), Nodes: nodes, AppliedIndex: r.AppliedIndex(),
			NodeId: s.node.NodeID(), Term: r.CurrentTerm(), CommitIndex: r.CommitIndex(),
			Insecure: s.cfg.Insecure,
		}
		return nil
	}, func(ctx context.Context, c shoalv1.ControlServiceClient) (err error) {
		out, err = c.GetStatus(ctx, req)
		return err
	})
	if err != nil {
		if local, ok := s.noLeaderStatus(ctx, req, err); ok {
			return local, nil
		}
	}
	return out, err
}

func (s *Server) nodes() ([]*shoalv1.Node, error) {
	peers, err := s.node.Peers()
	if err != nil {
		return nil, err
	}
	leader, self, iLead := s.node.LeaderID(), s.node.NodeID(), s.node.IsLeader()
	var out []*shoalv1.Node
	for _, p := range peers {
		role := shoalv1.NodeRole_NODE_ROLE_FOLLOWER
		switch {
		case p.ID == self:
			role = roleOf(s.node.Raft().State())
		case p.ID == leader:
			role = shoalv1.NodeRole_NODE_ROLE_LEADER
		case iLead && s.node.Unreachable(p.ID):
			// The leader's heartbeats to it fail: it cannot be reached.
			role = shoalv1.NodeRole_NODE_ROLE_UNKNOWN
		}
		n := &shoalv1.Node{Id: p.ID, RaftAddr: p.RaftAddr, RpcAddr: p.RPCAddr, AgentAddr: p.AgentAddr, Role: role, Voter: p.Voter}
		if t, ok := s.node.UnreachableSince(p.ID); ok && iLead && p.ID != self {
			n.UnreachableSince = timestamppb.New(t)
		}
		out = append(out, n)
	}
	return out, nil
}

func roleOf(st raft.RaftState) shoalv1.NodeRole {
	switch st {
	case raft.Leader:
		return shoalv1.NodeRole_NODE_ROLE_LEADER
	case raft.Candidate:
		return shoalv1.NodeRole_NODE_ROLE_CANDIDATE
	case raft.Follower:
		return shoalv1.NodeRole_NODE_ROLE_FOLLOWER
	}
	return shoalv1.NodeRole_NODE_ROLE_UNKNOWN
}

// ListPeers lists the raft configuration.
func (s *Server) ListPeers(ctx context.Context, req *shoalv1.ListPeersRequest) (*shoalv1.ListPeersResponse, error) {
	var out *shoalv1.ListPeersResponse
	err := s.read(ctx, false, func() error {
		nodes, err := s.nodes()
		out = &shoalv1.ListPeersResponse{Peers: nodes}
		return err
	}, func(ctx context.Context, c shoalv1.ControlServiceClient) (err error) {
		out, err = c.ListPeers(ctx, req)
		return err
	})
	return out, err
}

// RemovePeer removes a server; a follower passes the call to the leader.
func (s *Server) RemovePeer(ctx context.Context, req *shoalv1.RemovePeerRequest) (*shoalv1.RemovePeerResponse, error) {
	s.audit(ctx, "RemovePeer", "id", req.Id)
	if req.Id == "" {
		return nil, status.Error(codes.InvalidArgument, "id: required")
	}
	if s.node.IsLeader() || cluster.IsForwarded(ctx) {
		if err := s.node.RemovePeer(req.Id); err != nil {
			return nil, toStatus(err)
		}
		return &shoalv1.RemovePeerResponse{}, nil
	}
	c, err := s.node.LeaderClient(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return c.RemovePeer(forwardContext(ctx), req)
}

// CreateFleet creates a fleet; it does not touch the group.
func (s *Server) CreateFleet(ctx context.Context, req *shoalv1.CreateFleetRequest) (*shoalv1.CreateFleetResponse, error) {
	f := req.GetFleet()
	s.audit(ctx, "CreateFleet", "fleet", f.GetName())
	if f == nil {
		return nil, status.Error(codes.InvalidArgument, "fleet: required")
	}
	if f.Policy != nil {
		if err := s.cfg.ValidatePolicy(f.Policy, f.Min, f.Max); err != nil {
			return nil, toStatus(err)
		}
	}
	r, _, err := s.apply(ctx, fsm.CreateFleet(f))
	if err != nil {
		return nil, err
	}
	return &shoalv1.CreateFleetResponse{Fleet: r.Fleet}, nil
}

// GetFleet returns one fleet.
func (s *Server) GetFleet(ctx context.Context, req *shoalv1.GetFleetRequest) (*shoalv1.GetFleetResponse, error) {
	var out *shoalv1.GetFleetResponse
	err := s.read(ctx, req.Stale, func() error {
		f, err := s.node.FSM().Fleet(req.Fleet)
		s.withGroupStatus(f)
		out = &shoalv1.GetFleetResponse{Fleet: f}
		// Launch delays come from the replicated samples: a follower's
		// stale read has them too, as of its log.
		if err == nil && s.live != nil {
			out.LaunchDelays = s.live.LaunchDelays(f.Name)
		}
		return err
	}, func(ctx context.Context, c shoalv1.ControlServiceClient) (err error) {
		out, err = c.GetFleet(ctx, req)
		return err
	})
	return out, err
}

// ListFleets returns every fleet, by name.
func (s *Server) ListFleets(ctx context.Context, req *shoalv1.ListFleetsRequest) (*shoalv1.ListFleetsResponse, error) {
	var out *shoalv1.ListFleetsResponse
	err := s.read(ctx, req.Stale, func() error {
		fs := s.node.FSM().Fleets()
		s.withGroupStatus(fs...)
		out = &shoalv1.ListFleetsResponse{Fleets: fs}
		return nil
	}, func(ctx context.Context, c shoalv1.ControlServiceClient) (err error) {
		out, err = c.ListFleets(ctx, req)
		return err
	})
	return out, err
}

// UpdateFleet changes the fields that update_mask names.
func (s *Server) UpdateFleet(ctx context.Context, req *shoalv1.UpdateFleetRequest) (*shoalv1.UpdateFleetResponse, error) {
	s.audit(ctx, "UpdateFleet", "fleet", req.GetFleet().GetName())
	r, _, err := s.apply(ctx, fsm.UpdateFleet(req))
	if err != nil {
		return nil, err
	}
	return &shoalv1.UpdateFleetResponse{Fleet: r.Fleet}, nil
}

// DeleteFleet removes a fleet with its registry entries and history.
func (s *Server) DeleteFleet(ctx context.Context, req *shoalv1.DeleteFleetRequest) (*shoalv1.DeleteFleetResponse, error) {
	s.audit(ctx, "DeleteFleet", "fleet", req.Fleet)
	if _, _, err := s.apply(ctx, fsm.DeleteFleet(req.Fleet)); err != nil {
		return nil, err
	}
	return &shoalv1.DeleteFleetResponse{}, nil
}

// PauseFleet stops the engine from acting on a fleet.
func (s *Server) PauseFleet(ctx context.Context, req *shoalv1.PauseFleetRequest) (*shoalv1.PauseFleetResponse, error) {
	s.audit(ctx, "PauseFleet", "fleet", req.Fleet)
	r, _, err := s.apply(ctx, fsm.PauseFleet(req.Fleet, true))
	if err != nil {
		return nil, err
	}
	return &shoalv1.PauseFleetResponse{Fleet: r.Fleet}, nil
}

// ResumeFleet lets the engine act on a fleet again.
func (s *Server) ResumeFleet(ctx context.Context, req *shoalv1.ResumeFleetRequest) (*shoalv1.ResumeFleetResponse, error) {
	s.audit(ctx, "ResumeFleet", "fleet", req.Fleet)
	r, _, err := s.apply(ctx, fsm.PauseFleet(req.Fleet, false))
	if err != nil {
		return nil, err
	}
	return &shoalv1.ResumeFleetResponse{Fleet: r.Fleet}, nil
}

// SaveSnapshot streams the FSM state in chunks.
func (s *Server) SaveSnapshot(req *shoalv1.SaveSnapshotRequest, stream grpc.ServerStreamingServer[shoalv1.SaveSnapshotResponse]) error {
	ctx := stream.Context()
	return s.read(ctx, req.Stale, func() error {
		data := s.node.FSM().Save()
		for off := 0; off < len(data); off += s.cfg.SnapshotChunk {
			end := min(off+s.cfg.SnapshotChunk, len(data))
			if err := stream.Send(&shoalv1.SaveSnapshotResponse{Chunk: data[off:end]}); err != nil {
				return err
			}
		}
		return nil
	}, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
		in, err := c.SaveSnapshot(ctx, req)
		if err != nil {
			return err
		}
		for {
			m, err := in.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := stream.Send(m); err != nil {
				return err
			}
		}
	})
}

// RestoreSnapshot replaces the state, through raft, with a saved snapshot.
func (s *Server) RestoreSnapshot(stream grpc.ClientStreamingServer[shoalv1.RestoreSnapshotRequest, shoalv1.RestoreSnapshotResponse]) error {
	s.audit(stream.Context(), "RestoreSnapshot")
	var buf bytes.Buffer
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if buf.Len()+len(m.Chunk) > s.cfg.MaxSnapshotBytes {
			return status.Errorf(codes.InvalidArgument, "snapshot: larger than %d bytes", s.cfg.MaxSnapshotBytes)
		}
		buf.Write(m.Chunk)
	}
	if buf.Len() == 0 {
		return status.Error(codes.InvalidArgument, "snapshot: empty")
	}
	_, idx, err := s.apply(stream.Context(), fsm.Restore(buf.Bytes()))
	if err != nil {
		return err
	}
	return stream.SendAndClose(&shoalv1.RestoreSnapshotResponse{Index: idx})
}

// SetPolicy validates and stores a fleet's scaling policy.
func (s *Server) SetPolicy(ctx context.Context, req *shoalv1.SetPolicyRequest) (*shoalv1.SetPolicyResponse, error) {
	s.audit(ctx, "SetPolicy", "fleet", req.Fleet)
	if req.Policy == nil {
		return nil, status.Error(codes.InvalidArgument, "policy: required")
	}
	f, err := s.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: req.Fleet})
	if err != nil {
		return nil, err
	}
	if err := s.cfg.ValidatePolicy(req.Policy, f.Fleet.Min, f.Fleet.Max); err != nil {
		return nil, toStatus(err)
	}
	r, _, err := s.apply(ctx, fsm.SetPolicy(req.Fleet, req.Policy))
	if err != nil {
		return nil, err
	}
	return &shoalv1.SetPolicyResponse{Fleet: r.Fleet}, nil
}

// GetPolicy returns a fleet's scaling policy (empty when it has none).
func (s *Server) GetPolicy(ctx context.Context, req *shoalv1.GetPolicyRequest) (*shoalv1.GetPolicyResponse, error) {
	f, err := s.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: req.Fleet, Stale: req.Stale})
	if err != nil {
		return nil, err
	}
	return &shoalv1.GetPolicyResponse{Policy: f.Fleet.Policy}, nil
}

// ListDecisions returns a fleet's decision history, oldest first.
func (s *Server) ListDecisions(ctx context.Context, req *shoalv1.ListDecisionsRequest) (*shoalv1.ListDecisionsResponse, error) {
	if req.Limit < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "limit (%d) must be >= 0", req.Limit)
	}
	var out *shoalv1.ListDecisionsResponse
	err := s.read(ctx, req.Stale, func() error {
		ds, err := s.node.FSM().Decisions(req.Fleet, int(req.Limit))
		out = &shoalv1.ListDecisionsResponse{Decisions: ds}
		return err
	}, func(ctx context.Context, c shoalv1.ControlServiceClient) (err error) {
		out, err = c.ListDecisions(ctx, req)
		return err
	})
	return out, err
}

// ScaleFleet commits a manual pending decision, naming the caller as its
// actor; the scaler acts on it.
func (s *Server) ScaleFleet(ctx context.Context, req *shoalv1.ScaleFleetRequest) (*shoalv1.ScaleFleetResponse, error) {
	s.audit(ctx, "ScaleFleet", "fleet", req.Fleet, "desired", req.Desired)
	if req.Desired < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "desired (%d) must be >= 0", req.Desired)
	}
	f, err := s.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: req.Fleet})
	if err != nil {
		return nil, err
	}
	reason := req.Reason
	if reason == "" {
		reason = "manual scale"
	}
	r, _, err := s.apply(ctx, fsm.CreateDecision(&shoalv1.Decision{
		Fleet: req.Fleet, PreviousCapacity: f.Fleet.Desired, Capacity: req.Desired, Reason: reason, Source: fsm.SourceManual,
		Actor: actorOf(ctx),
	}))
	if err != nil {
		return nil, err
	}
	return &shoalv1.ScaleFleetResponse{Decision: r.Decision}, nil
}

package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Live is the leader's view of what is not in the FSM: agents' latest
// metrics, the scaler's reasoning, CloudWatch's alarms. The node passes it
// in Config; without one the API serves the registry alone.
type Live interface {
	Instances(fleet string) ([]*shoalv1.Instance, error)
	Explain(fleet string) (*shoalv1.ExplainFleetResponse, error)
	Alarms(ctx context.Context, fleet string) ([]*shoalv1.Alarm, error)
	GroupStatus(fleet string) string
	// LaunchDelays are the launch delays learned for fleet, from the
	// replicated samples (any node has them, as of its log).
	LaunchDelays(fleet string) []*shoalv1.LaunchDelay
}

func (s *Server) withGroupStatus(fs ...*shoalv1.Fleet) {
	if s.live == nil || !s.node.IsLeader() {
		return
	}
	for _, f := range fs {
		if f != nil {
			f.GroupStatus = s.live.GroupStatus(f.Name)
		}
	}
}

// ListInstances lists the registry; on the leader, with each instance's
// live metrics, readiness, report age and flags.
func (s *Server) ListInstances(ctx context.Context, req *shoalv1.ListInstancesRequest) (*shoalv1.ListInstancesResponse, error) {
	var out *shoalv1.ListInstancesResponse
	err := s.read(ctx, req.Stale, func() error {
		if req.Fleet != "" {
			if _, err := s.node.FSM().Fleet(req.Fleet); err != nil {
				return err
			}
		}
		if s.live != nil && s.node.IsLeader() {
			ins, err := s.live.Instances(req.Fleet)
			if err != nil {
				return err
			}
			out = &shoalv1.ListInstancesResponse{Instances: ins}
			return nil
		}
		out = &shoalv1.ListInstancesResponse{Instances: s.node.FSM().Instances(req.Fleet)}
		return nil
	}, func(ctx context.Context, c shoalv1.ControlServiceClient) (err error) {
		out, err = c.ListInstances(ctx, req)
		return err
	})
	return out, err
}

// ExplainFleet says what the leader's scaler would do now and why.
func (s *Server) ExplainFleet(ctx context.Context, req *shoalv1.ExplainFleetRequest) (*shoalv1.ExplainFleetResponse, error) {
	var out *shoalv1.ExplainFleetResponse
	err := s.read(ctx, false, func() error {
		if _, err := s.node.FSM().Fleet(req.Fleet); err != nil {
			return err
		}
		if s.live == nil {
			return status.Error(codes.Unimplemented, "explain: this node runs no scaling engine")
		}
		var err error
		out, err = s.live.Explain(req.Fleet)
		if err != nil {
			return status.Error(codes.Unavailable, err.Error())
		}
		return nil
	}, func(ctx context.Context, c shoalv1.ControlServiceClient) (err error) {
		out, err = c.ExplainFleet(ctx, req)
		return err
	})
	return out, err
}

// ListAlarms shows the CloudWatch alarms the leader keeps.
func (s *Server) ListAlarms(ctx context.Context, req *shoalv1.ListAlarmsRequest) (*shoalv1.ListAlarmsResponse, error) {
	var out *shoalv1.ListAlarmsResponse
	err := s.read(ctx, false, func() error {
		if req.Fleet != "" {
			if _, err := s.node.FSM().Fleet(req.Fleet); err != nil {
				return err
			}
		}
		if s.live == nil {
			return status.Error(codes.Unimplemented, "alarms: this node runs no CloudWatch publisher")
		}
		as, err := s.live.Alarms(ctx, req.Fleet)
		if err != nil {
			return status.Error(codes.Unavailable, "alarms: "+err.Error())
		}
		out = &shoalv1.ListAlarmsResponse{Alarms: as}
		return nil
	}, func(ctx context.Context, c shoalv1.ControlServiceClient) (err error) {
		out, err = c.ListAlarms(ctx, req)
		return err
	})
	return out, err
}

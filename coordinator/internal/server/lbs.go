package server

import (
	"context"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// ListLoadBalancers lists the LBs connected to the leader with their last
// reports. LB streams end on the leader, so a follower asks it; a --stale
// read on a follower lists none.
func (s *Server) ListLoadBalancers(ctx context.Context, req *shoalv1.ListLoadBalancersRequest) (*shoalv1.ListLoadBalancersResponse, error) {
	var out *shoalv1.ListLoadBalancersResponse
	err := s.read(ctx, false, func() error {
		out = &shoalv1.ListLoadBalancersResponse{}
		if s.cfg.LoadBalancers == nil {
			return nil
		}
		names := []string{req.Fleet}
		if req.Fleet == "" {
			names = names[:0]
			for _, f := range s.node.FSM().Fleets() {
				names = append(names, f.Name)
			}
		} else if _, err := s.node.FSM().Fleet(req.Fleet); err != nil {
			return err
		}
		for _, n := range names {
			out.LoadBalancers = append(out.LoadBalancers, s.cfg.LoadBalancers(n)...)
		}
		return nil
	}, func(ctx context.Context, c shoalv1.ControlServiceClient) (err error) {
		out, err = c.ListLoadBalancers(ctx, req)
		return err
	})
	return out, err
}

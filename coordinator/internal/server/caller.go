package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/authz"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// ActorInsecure is the actor of a call no authorizer verified: the node
// runs with --insecure, so nobody can say who asked.
const ActorInsecure = "insecure"

// actorOf names who made the call ctx belongs to, for Decision.actor: the
// token's name, or the certificate's when the caller used no token.
func actorOf(ctx context.Context) string {
	c, ok := authz.CallerFrom(ctx)
	if !ok {
		return ActorInsecure
	}
	if a := c.Actor(); a != "" {
		return a
	}
	// A verified caller always has a certificate name; this is a bug guard,
	// not a path a real call takes.
	return "unknown"
}

// audit logs a mutating call. The authorizer already logs every operate
// and admin call it allows, with the token and the certificate; so only a
// call it did not see (--insecure) is logged here, and each call once.
func (s *Server) audit(ctx context.Context, method string, kv ...any) {
	if _, ok := authz.CallerFrom(ctx); ok {
		return
	}
	s.log.Info("call", append([]any{"method", method, "actor", ActorInsecure}, kv...)...)
}

// ResetInstanceIdentity forgets an instance's enrollment record, so its
// next enrollment counts as a first one.
func (s *Server) ResetInstanceIdentity(ctx context.Context, req *shoalv1.ResetInstanceIdentityRequest) (*shoalv1.ResetInstanceIdentityResponse, error) {
	s.audit(ctx, "ResetInstanceIdentity", "instance", req.InstanceId)
	if req.InstanceId == "" {
		return nil, status.Error(codes.InvalidArgument, "instance_id: required")
	}
	if _, _, err := s.apply(ctx, fsm.IdentityReset(req.InstanceId)); err != nil {
		return nil, err
	}
	return &shoalv1.ResetInstanceIdentityResponse{}, nil
}

package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// aclService serves ACLService. A token's secret is made here, on the node
// the operator called, travels to raft only as its hash, and is returned
// once, in the response.
type aclService struct {
	shoalv1.UnimplementedACLServiceServer
	s *Server
}

var _ shoalv1.ACLServiceServer = (*aclService)(nil)

// BootstrapACL makes the cluster's first admin token; the FSM accepts it
// once per cluster.
func (a *aclService) BootstrapACL(ctx context.Context, _ *shoalv1.BootstrapACLRequest) (*shoalv1.BootstrapACLResponse, error) {
	a.s.audit(ctx, "BootstrapACL")
	secret, spec, err := acl.Generate(acl.BootstrapName, acl.PolicyAdmin, 0)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if _, _, err := a.s.apply(ctx, fsm.ACLBootstrap(spec)); err != nil {
		return nil, err
	}
	t, err := a.created(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &shoalv1.BootstrapACLResponse{Token: t, Secret: secret}, nil
}

// CreateToken makes a token with a policy and an optional time to live.
func (a *aclService) CreateToken(ctx context.Context, req *shoalv1.CreateTokenRequest) (*shoalv1.CreateTokenResponse, error) {
	a.s.audit(ctx, "CreateToken", "name", req.Name)
	if err := acl.CheckName(req.Name); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	p, err := policyOf(req.Policy)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ttl, err := ttlOf(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	secret, spec, err := acl.Generate(req.Name, p, ttl)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if _, _, err := a.s.apply(ctx, fsm.TokenCreate(spec)); err != nil {
		return nil, err
	}
	t, err := a.created(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &shoalv1.CreateTokenResponse{Token: t, Secret: secret}, nil
}

// ListTokens lists every token without its secret (raft has only hashes).
func (a *aclService) ListTokens(ctx context.Context, req *shoalv1.ListTokensRequest) (*shoalv1.ListTokensResponse, error) {
	var out *shoalv1.ListTokensResponse
	err := a.s.readVia(ctx, false, func() error {
		ts := a.s.node.FSM().Tokens()
		out = &shoalv1.ListTokensResponse{Tokens: make([]*shoalv1.Token, 0, len(ts))}
		for _, t := range ts {
			out.Tokens = append(out.Tokens, tokenProto(t))
		}
		return nil
	}, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		out, err = shoalv1.NewACLServiceClient(cc).ListTokens(ctx, req)
		return err
	})
	return out, err
}

// DeleteToken removes a token by accessor id; its secret stops working at
// once. The FSM refuses to delete the last admin token.
func (a *aclService) DeleteToken(ctx context.Context, req *shoalv1.DeleteTokenRequest) (*shoalv1.DeleteTokenResponse, error) {
	a.s.audit(ctx, "DeleteToken", "accessor_id", req.AccessorId)
	if req.AccessorId == "" {
		return nil, status.Error(codes.InvalidArgument, "accessor_id: required")
	}
	if _, _, err := a.s.apply(ctx, fsm.TokenDelete(req.AccessorId)); err != nil {
		return nil, err
	}
	return &shoalv1.DeleteTokenResponse{}, nil
}

// created returns the token just committed as the FSM stored it, with the
// leader's creation and expiry times. A follower's own FSM may not have
// applied it yet, so it is read like any other read: from the leader.
func (a *aclService) created(ctx context.Context, spec acl.Spec) (*shoalv1.Token, error) {
	var out *shoalv1.Token
	err := a.s.readVia(ctx, false, func() error {
		t, ok := a.s.node.FSM().Token(spec.AccessorID)
		if !ok {
			return fmt.Errorf("%w: token %q: deleted right after it was made", fsm.ErrNotFound, spec.Name)
		}
		out = tokenProto(t)
		return nil
	}, func(ctx context.Context, cc grpc.ClientConnInterface) error {
		r, err := shoalv1.NewACLServiceClient(cc).ListTokens(ctx, &shoalv1.ListTokensRequest{})
		if err != nil {
			return err
		}
		for _, t := range r.Tokens {
			if t.AccessorId == spec.AccessorID {
				out = t
				return nil
			}
		}
		return status.Errorf(codes.NotFound, "token %q: deleted right after it was made", spec.Name)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func tokenProto(t acl.Token) *shoalv1.Token {
	out := &shoalv1.Token{AccessorId: t.AccessorID, Name: t.Name, Policy: policyProto(t.Policy), CreateTime: timestamppb.New(t.CreatedAt)}
	if !t.ExpiresAt.IsZero() {
		out.ExpireTime = timestamppb.New(t.ExpiresAt)
	}
	return out
}

func policyProto(p acl.Policy) shoalv1.TokenPolicy {
	switch p {
	case acl.PolicyRead:
		return shoalv1.TokenPolicy_TOKEN_POLICY_READ
	case acl.PolicyOperate:
		return shoalv1.TokenPolicy_TOKEN_POLICY_OPERATE
	case acl.PolicyAdmin:
		return shoalv1.TokenPolicy_TOKEN_POLICY_ADMIN
	}
	return shoalv1.TokenPolicy_TOKEN_POLICY_UNSPECIFIED
}

func policyOf(p shoalv1.TokenPolicy) (acl.Policy, error) {
	switch p {
	case shoalv1.TokenPolicy_TOKEN_POLICY_READ:
		return acl.PolicyRead, nil
	case shoalv1.TokenPolicy_TOKEN_POLICY_OPERATE:
		return acl.PolicyOperate, nil
	case shoalv1.TokenPolicy_TOKEN_POLICY_ADMIN:
		return acl.PolicyAdmin, nil
	case shoalv1.TokenPolicy_TOKEN_POLICY_UNSPECIFIED:
		return "", fmt.Errorf("policy: required (read, operate or admin)")
	}
	return "", fmt.Errorf("policy (%d): must be read, operate or admin", p)
}

// ttlOf reads the request's TTL: unset or zero means no expiry.
func ttlOf(req *shoalv1.CreateTokenRequest) (time.Duration, error) {
	if req.Ttl == nil {
		return 0, nil
	}
	if err := req.Ttl.CheckValid(); err != nil {
		return 0, fmt.Errorf("ttl: %v", err)
	}
	d := req.Ttl.AsDuration()
	switch {
	case d < 0:
		return 0, fmt.Errorf("ttl (%s): must not be negative (0 means no expiry)", d)
	case d > 0 && d < acl.MinTTL:
		return 0, fmt.Errorf("ttl (%s): shorter than %s (0 means no expiry)", d, acl.MinTTL)
	case d > acl.MaxTTL:
		return 0, fmt.Errorf("ttl (%s): longer than %s", d, acl.MaxTTL)
	}
	return d, nil
}

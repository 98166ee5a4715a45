package authz

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// AuthorizeBearer decides a call of fullMethod that reaches the node
// without a client certificate but with an operator's token: the
// operator console, served over server-authenticated TLS on --http-addr.
// via is the serving node's own server identity; the caller it returns
// names the token, so the actor of a decision and the authorizer's log
// line are the token's as for the CLI. authorization is the request's
// Authorization header ("Bearer <token>"), "" when it had none. The same
// token rules, policy levels and refusal counters apply as for gRPC.
func (a *Authorizer) AuthorizeBearer(ctx context.Context, via tlsconf.Identity, fullMethod, authorization string) (context.Context, error) {
	if a.cfg.Insecure {
		return ctx, nil
	}
	cls, level := classify(fullMethod)
	short := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	if cls != classToken {
		return nil, a.deny(refusal{ReasonWrongRole, codes.PermissionDenied, fullMethod + ": not an operator method"})
	}
	md := metadata.MD{}
	if authorization != "" {
		md.Set(rpc.AuthorizationKey, authorization)
	}
	c, level, r := a.checkToken(metadata.NewIncomingContext(ctx, md), via, fullMethod, short, level)
	if r != nil {
		return nil, a.deny(*r)
	}
	if level == acl.PolicyOperate || level == acl.PolicyAdmin {
		a.log.Info("authorized", "method", fullMethod, "token", c.TokenName, "identity", idString(c.Identity), "via", "console")
	}
	return WithCaller(ctx, c), nil
}

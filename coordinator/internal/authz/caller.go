package authz

import (
	"context"
	"fmt"
	"net/url"

	"google.golang.org/grpc/metadata"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// The metadata a follower stamps on a call it forwards to the leader, naming
// the caller it verified. The leader believes it only from a server
// certificate.
const (
	CallerKey      = "x-shoal-caller"       // the caller's SPIFFE id
	TokenNameKey   = "x-shoal-token-name"   // the name of the token it used
	TokenPolicyKey = "x-shoal-token-policy" // that token's policy
)

// Caller is who made a call, as verified.
type Caller struct {
	// Identity is the caller's certificate identity; zero for an Enroll
	// call without a certificate.
	Identity tlsconf.Identity
	// TokenName and Policy are the operator's token; empty for callers
	// that need none (servers, agents, LBs, calls before ACL bootstrap).
	TokenName string
	Policy    acl.Policy
	// Via is the server that forwarded the call, zero when it came
	// directly.
	Via tlsconf.Identity
}

// Actor names the caller for Decision.actor and logs: the token's name
// when there is one, else the certificate's name.
func (c Caller) Actor() string {
	if c.TokenName != "" {
		return c.TokenName
	}
	return c.Identity.Name
}

type callerKey struct{}

// WithCaller returns ctx carrying c. The interceptors call it; tests of
// handlers may too.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the verified caller of the call ctx belongs to. ok is
// false when the authorizer did not run or runs in insecure mode.
func CallerFrom(ctx context.Context) (c Caller, ok bool) {
	c, ok = ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// ForwardContext returns ctx with outgoing metadata that names the
// verified caller of the incoming call ctx belongs to, for a follower that
// forwards the call to the leader over its own server connection. Any
// stamp or token already in the outgoing metadata is replaced or dropped:
// the leader needs only the stamp, and the secret stays on this node.
// Without a verified caller (insecure mode) it only drops them.
func ForwardContext(ctx context.Context) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	for _, k := range []string{CallerKey, TokenNameKey, TokenPolicyKey, rpc.AuthorizationKey} {
		md.Delete(k)
	}
	if c, ok := CallerFrom(ctx); ok {
		if c.Identity != (tlsconf.Identity{}) {
			md.Set(CallerKey, c.Identity.String())
		}
		if c.TokenName != "" {
			md.Set(TokenNameKey, c.TokenName)
			md.Set(TokenPolicyKey, string(c.Policy))
		}
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// forwarded reads the stamp a server put on a call. ok is false when
// there is none. Every value must be there once and well formed: a server
// that sends anything else has a bug, and its call is refused.
func forwarded(md metadata.MD, cluster string) (c Caller, ok bool, err error) {
	ids, names, policies := md.Get(CallerKey), md.Get(TokenNameKey), md.Get(TokenPolicyKey)
	if len(ids) == 0 && len(names) == 0 && len(policies) == 0 {
		return Caller{}, false, nil
	}
	if len(ids) != 1 || len(names) > 1 || len(policies) != len(names) {
		return Caller{}, false, fmt.Errorf("forwarded caller: %s once, with %s and %s together or not at all", CallerKey, TokenNameKey, TokenPolicyKey)
	}
	u, err := url.Parse(ids[0])
	if err != nil {
		return Caller{}, false, fmt.Errorf("forwarded caller: %s: %w", CallerKey, err)
	}
	if c.Identity, err = tlsconf.ParseURI(u); err != nil {
		return Caller{}, false, fmt.Errorf("forwarded caller: %w", err)
	}
	if c.Identity.Cluster != cluster {
		return Caller{}, false, fmt.Errorf("forwarded caller: %s is not of cluster %q", c.Identity, cluster)
	}
	if len(names) == 1 {
		if err := acl.CheckName(names[0]); err != nil {
			return Caller{}, false, fmt.Errorf("forwarded caller: %s: %w", TokenNameKey, err)
		}
		p, err := acl.ParsePolicy(policies[0])
		if err != nil {
			return Caller{}, false, fmt.Errorf("forwarded caller: %s: %w", TokenPolicyKey, err)
		}
		c.TokenName, c.Policy = names[0], p
	}
	return c, true, nil
}

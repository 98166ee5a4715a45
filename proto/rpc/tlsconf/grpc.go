package tlsconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// ServerOption is the gRPC server option for a ServerConfig; pass it to
// rpc.NewServer.
func ServerOption(cfg *tls.Config) grpc.ServerOption {
	return grpc.Creds(credentials.NewTLS(cfg))
}

// DialOption is the gRPC dial option for a ClientConfig; pass it to
// rpc.Dial, where it replaces the insecure default.
func DialOption(cfg *tls.Config) grpc.DialOption {
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
}

// PeerIdentity is the identity of the caller of a gRPC call. ok is false
// when the call did not come over TLS with a client certificate. The
// handshake has verified the certificate: a ServerConfig refuses any it
// cannot verify.
func PeerIdentity(ctx context.Context) (id Identity, ok bool, err error) {
	p, found := peer.FromContext(ctx)
	if !found {
		return Identity{}, false, nil
	}
	info, isTLS := p.AuthInfo.(credentials.TLSInfo)
	if !isTLS || len(info.State.PeerCertificates) == 0 {
		return Identity{}, false, nil
	}
	id, err = ParseIdentity(info.State.PeerCertificates[0])
	if err != nil {
		return Identity{}, false, err
	}
	return id, true, nil
}

// RequireRole returns nil when the caller's certificate has one of roles,
// Unauthenticated when there is no usable certificate, and PermissionDenied
// when its role is not one of roles. Each message is one line naming the
// caller and the reason.
func RequireRole(ctx context.Context, roles ...Role) error {
	id, ok, err := PeerIdentity(ctx)
	switch {
	case err != nil:
		return status.Error(codes.Unauthenticated, err.Error())
	case !ok:
		return status.Error(codes.Unauthenticated, "a client certificate is required")
	case !slices.Contains(roles, id.Role):
		return status.Error(codes.PermissionDenied, fmt.Sprintf("%s: role %s may not call this; allowed: %s", id, id.Role, roleList(roles)))
	}
	return nil
}

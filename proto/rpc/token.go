package rpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// The metadata that carries an operator's token: "authorization: Bearer
// <secret>", as RFC 6750 puts it in an HTTP header.
const (
	AuthorizationKey = "authorization"
	BearerPrefix     = "Bearer "
)

// TokenCredentials sends an ACL token with every call. The zero Secret
// sends nothing, so the server can say which token is missing.
type TokenCredentials struct {
	Secret string
	// Insecure lets the token travel over a plaintext connection: only for
	// a cluster run with --insecure, where nothing is secret anyway.
	Insecure bool
}

var _ credentials.PerRPCCredentials = TokenCredentials{}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c TokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if c.Secret == "" {
		return nil, nil
	}
	return map[string]string{AuthorizationKey: BearerPrefix + c.Secret}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: a
// token is a password, so gRPC refuses to send it in the clear unless
// Insecure is set.
func (c TokenCredentials) RequireTransportSecurity() bool { return !c.Insecure }

// WithToken is the dial option that sends secret with every call; see
// TokenCredentials for insecure.
func WithToken(secret string, insecure bool) grpc.DialOption {
	return grpc.WithPerRPCCredentials(TokenCredentials{Secret: secret, Insecure: insecure})
}

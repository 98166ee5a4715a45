package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// callerCtx is an incoming call from a certificate naming uri, marked as
// forwarded or not. The handshake verified the chain; only the SAN matters.
func callerCtx(uri string, forwarded bool) context.Context {
	u, err := url.Parse(uri)
	if err != nil {
		panic(err)
	}
	cert := &x509.Certificate{URIs: []*url.URL{u}}
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{
		State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}},
	}})
	if forwarded {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("x-shoal-forwarded", "1"))
	}
	return ctx
}

func TestJoinsAsItself(t *testing.T) {
	members := map[string]bool{"n1": true, "n2": true, "n3": true}
	member := func(id string) bool { return members[id] }
	for _, tc := range []struct {
		name      string
		caller    string
		forwarded bool
		nodeID    string
		code      codes.Code
	}{
		{"a new server joins as itself", "spiffe://shoal/server/n4", false, "n4", codes.OK},
		{"a member rejoins as itself", "spiffe://shoal/server/n2", false, "n2", codes.OK},
		{"a member passes on another node's join", "spiffe://shoal/server/n2", true, "n4", codes.OK},
		{"a non-member joins as a member", "spiffe://shoal/server/n4", false, "n2", codes.PermissionDenied},
		{"a non-member joins as a new id", "spiffe://shoal/server/n4", false, "n9", codes.PermissionDenied},
		{"a non-member claims to pass on a member's join", "spiffe://shoal/server/n4", true, "n2", codes.PermissionDenied},
		{"a non-member claims to pass on a new id's join", "spiffe://shoal/server/n4", true, "n9", codes.PermissionDenied},
		{"a forwarded join as itself", "spiffe://shoal/server/n4", true, "n4", codes.OK},
		{"an operator certificate", "spiffe://shoal/operator/n2", false, "n2", codes.PermissionDenied},
		{"an agent certificate marked forwarded", "spiffe://shoal/agent/n2", true, "n9", codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := joinsAsItself(callerCtx(tc.caller, tc.forwarded), tc.nodeID, member)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("got %v (%v), want %v", got, err, tc.code)
			}
		})
	}
	t.Run("insecure: no identities to compare", func(t *testing.T) {
		if err := joinsAsItself(context.Background(), "n9", member); err != nil {
			t.Fatal(err)
		}
	})
}

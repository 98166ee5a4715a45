package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/proto/rpc"
)

func TestRequireRole(t *testing.T) {
	ca := newTestCA(t, "ca")
	withCert := func(uri string) context.Context {
		c, _ := ca.leaf(t, leafOpts{uris: []string{uri}})
		blk, _ := pem.Decode(c)
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return peer.NewContext(t.Context(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}}})
	}
	tests := []struct {
		name  string
		ctx   context.Context
		roles []Role
		code  codes.Code
		msg   string
	}{
		{"allowed", withCert("spiffe://shoal/operator/alice"), []Role{RoleOperator}, codes.OK, ""},
		{"one of several", withCert("spiffe://shoal/lb/lb1"), []Role{RoleServer, RoleLB}, codes.OK, ""},
		{"wrong role", withCert("spiffe://shoal/agent/i-1"), []Role{RoleOperator, RoleServer}, codes.PermissionDenied, "spiffe://shoal/agent/i-1: role agent may not call this; allowed: operator, server"},
		{"no peer", t.Context(), []Role{RoleOperator}, codes.Unauthenticated, "a client certificate is required"},
		{"not TLS", peer.NewContext(t.Context(), &peer.Peer{}), []Role{RoleOperator}, codes.Unauthenticated, "a client certificate is required"},
		{"TLS without a certificate", peer.NewContext(t.Context(), &peer.Peer{AuthInfo: credentials.TLSInfo{}}), []Role{RoleOperator}, codes.Unauthenticated, "a client certificate is required"},
		{"malformed identity", withCert("spiffe://shoal/root/x"), []Role{RoleOperator}, codes.Unauthenticated, `role ("root")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RequireRole(tt.ctx, tt.roles...)
			s := status.Convert(err)
			if s.Code() != tt.code || !strings.Contains(s.Message(), tt.msg) || strings.Contains(s.Message(), "\n") {
				t.Fatalf("RequireRole = %v, want %v %q", err, tt.code, tt.msg)
			}
		})
	}
}

// TestGRPC runs grpc-go's own TLS credentials over loopback with these
// configs: the handshake, the caller's identity in the handler's context,
// and a refused server.
func TestGRPC(t *testing.T) {
	ca := newTestCA(t, "ca")
	srvSrc := source(t, ca, ca.pem, "spiffe://shoal/server/n1")
	serverCfg, err := ServerConfig(srvSrc, ServerOptions{AllowNoClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan Identity, 10)
	// Check is for operators only; Watch's handler is not reached here.
	authz := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if id, ok, _ := PeerIdentity(ctx); ok {
			seen <- id
		}
		if err := RequireRole(ctx, RoleOperator); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
	serve := func(cfg *tls.Config) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := rpc.NewServer(ServerOption(cfg), grpc.UnaryInterceptor(authz))
		healthpb.RegisterHealthServer(srv, health.NewServer())
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		return lis.Addr().String()
	}
	addr := serve(serverCfg)
	check := func(addr string, client *Source) error {
		conn, err := rpc.Dial(addr, DialOption(ClientConfig(client)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}

	if err := check(addr, source(t, ca, ca.pem, "spiffe://shoal/operator/alice")); err != nil {
		t.Fatalf("operator: %v", err)
	}
	if id := <-seen; id != (Identity{"shoal", RoleOperator, "alice"}) {
		t.Fatalf("handler saw %v", id)
	}
	err = check(addr, source(t, ca, ca.pem, "spiffe://shoal/agent/i-1"))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "role agent may not call this") {
		t.Fatalf("agent: %v, want PermissionDenied", err)
	}
	<-seen
	if err := check(addr, source(t, ca, ca.pem, "")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no certificate: %v, want Unauthenticated", err)
	}

	// A server whose certificate is an lb's is refused by the client.
	lbCert, lbKey := ca.leaf(t, leafOpts{uris: []string{"spiffe://shoal/lb/lb1"}})
	pair, err := tls.X509KeyPair(lbCert, lbKey)
	if err != nil {
		t.Fatal(err)
	}
	fake := serve(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAnyClientCert})
	err = check(fake, source(t, ca, ca.pem, "spiffe://shoal/operator/alice"))
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "has role lb, want server") {
		t.Fatalf("lb as server: %v, want Unavailable naming the role", err)
	}
	select {
	case id := <-seen:
		t.Fatalf("a call reached the fake server's handler as %v", id)
	default:
	}
}

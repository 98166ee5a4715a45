package rpc

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

func TestTokenCredentials(t *testing.T) {
	md, err := TokenCredentials{Secret: "shoal_abc"}.GetRequestMetadata(t.Context())
	if err != nil || len(md) != 1 || md["authorization"] != "Bearer shoal_abc" {
		t.Fatalf("metadata = %v, %v", md, err)
	}
	if md, _ := (TokenCredentials{}).GetRequestMetadata(t.Context()); len(md) != 0 {
		t.Fatalf("no secret sent %v", md)
	}
	if !(TokenCredentials{Secret: "x"}).RequireTransportSecurity() || (TokenCredentials{Secret: "x", Insecure: true}).RequireTransportSecurity() {
		t.Fatal("RequireTransportSecurity is not !Insecure")
	}
}

// TestTokenOverPlaintext: gRPC itself refuses to send a secure token over
// the plaintext connection of rpc.Dial, and sends an insecure one.
func TestTokenOverPlaintext(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []string, 1)
	srv := NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		got <- md.Get("authorization")
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	call := func(insecure bool) error {
		conn, err := Dial(lis.Addr().String(), WithToken("shoal_abc", insecure))
		if err != nil {
			return err // grpc refuses the combination at dial
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := call(false); err == nil || !strings.Contains(err.Error(), "transport level security") {
		t.Fatalf("secure token over plaintext: %v", err)
	}
	if err := call(true); err != nil {
		t.Fatal(err)
	}
	if v := <-got; len(v) != 1 || v[0] != "Bearer shoal_abc" {
		t.Fatalf("server saw authorization %q", v)
	}
}

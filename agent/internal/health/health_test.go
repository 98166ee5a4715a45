package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	"github.com/shoal-dev/shoal/proto/rpc"
)

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	cases := []struct {
		name      string
		url       string
		ready     bool
		reasonHas string
	}{
		{"2xx is ready", srv.URL + "/ok", true, ""},
		{"503 is not", srv.URL + "/down", false, "503"},
		{"unreachable is not", "http://127.0.0.1:1/x", false, "127.0.0.1:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			r := HTTP{URL: tc.url}.Check(ctx)
			if r.Ready != tc.ready || !strings.Contains(r.Reason, tc.reasonHas) {
				t.Errorf("Check = %+v, want ready %v reason containing %q", r, tc.ready, tc.reasonHas)
			}
		})
	}
}

func TestGRPC(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	srv := rpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	dialer := grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })

	cases := []struct {
		name   string
		status healthpb.HealthCheckResponse_ServingStatus
		ready  bool
	}{
		{"serving", healthpb.HealthCheckResponse_SERVING, true},
		{"not serving", healthpb.HealthCheckResponse_NOT_SERVING, false},
	}
	g := &GRPC{Addr: "bufnet", DialOptions: []grpc.DialOption{dialer}}
	defer g.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs.SetServingStatus("", tc.status)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			r := g.Check(ctx)
			if r.Ready != tc.ready {
				t.Errorf("Check = %+v, want ready %v", r, tc.ready)
			}
			if !r.Ready && !strings.Contains(r.Reason, "NOT_SERVING") {
				t.Errorf("reason %q does not name the status", r.Reason)
			}
		})
	}
}

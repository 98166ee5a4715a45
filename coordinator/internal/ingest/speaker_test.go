package ingest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// TestConnectSpeaksOnlyForItsCertificate runs Connect over real mutual TLS
// on loopback: an agent certificate streams for its own instance only.
func TestConnectSpeaksOnlyForItsCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA(pki.CARequest{Cluster: "shoal", Validity: pki.DefaultCAValidity})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	source := func(role tlsconf.Role, name string) *tlsconf.Source {
		t.Helper()
		c, k, err := ca.Issue(pki.LeafRequest{Identity: tlsconf.Identity{Cluster: "shoal", Role: role, Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		cf, kf := filepath.Join(dir, string(role)+"-"+name+".pem"), filepath.Join(dir, string(role)+"-"+name+"-key.pem")
		if err := os.WriteFile(cf, c, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(kf, k, 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := tlsconf.NewSource(tlsconf.Config{Cluster: "shoal", CAFile: caFile, CertFile: cf, KeyFile: kf})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	scfg, err := tlsconf.ServerConfig(source(tlsconf.RoleServer, "n1"), tlsconf.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	svc, err := New(testConfig(), &fakeCluster{id: "n1", leader: true}, reg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(tlsconf.ServerOption(scfg))
	svc.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	const mine, other = "i-0000000000000000a", "i-0000000000000000b"
	connectAs := func(src *tlsconf.Source, id string) error {
		t.Helper()
		conn, err := rpc.Dial(lis.Addr().String(), tlsconf.DialOption(tlsconf.ClientConfig(src)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := shoalv1.NewAgentServiceClient(conn).Connect(ctx)
		if err != nil {
			return err
		}
		if err := st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Hello{Hello: hello(id, 100)}}); err != nil {
			return err
		}
		m, err := st.Recv()
		if err == nil && m.GetWelcome() == nil {
			t.Fatalf("first answer %v, want a welcome", m)
		}
		return err
	}
	agent := source(tlsconf.RoleAgent, mine)
	rejected := func() float64 { return testutil.ToFloat64(svc.m.streamRejected.WithLabelValues(reasonWrongIdentity)) }

	err = connectAs(agent, other)
	if s, _ := status.FromError(err); s.Code() != codes.PermissionDenied || s.Message() != "agent certificate for "+mine+" may not speak for "+other {
		t.Fatalf("agent %s speaking for %s: %v", mine, other, err)
	}
	if rejected() != 1 {
		t.Fatalf("wrong_identity counted %v, want 1", rejected())
	}
	svc.mu.Lock()
	n := len(svc.store.byID)
	svc.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d instances entered the store after refusals", n)
	}
	err = connectAs(source(tlsconf.RoleLB, "lb1"), mine)
	if s, _ := status.FromError(err); s.Code() != codes.PermissionDenied || !strings.Contains(s.Message(), "lb certificate may not speak for instance "+mine) {
		t.Fatalf("an lb certificate streaming as an agent: %v", err)
	}
	if err := connectAs(agent, mine); err != nil {
		t.Fatalf("agent streaming for itself: %v", err)
	}
	if rejected() != 2 {
		t.Fatalf("wrong_identity counted %v, want 2", rejected())
	}
}

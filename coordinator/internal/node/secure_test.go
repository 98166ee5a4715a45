package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// testPKI writes a CA and certificates for the given identities into a
// temp dir; files[role/name] = [cert, key].
type testPKI struct {
	dir, caFile, caKey string
	ca                 *pki.CA
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := pki.NewCA(pki.CARequest{Cluster: "shoal", Validity: 10 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{dir: t.TempDir(), ca: ca}
	p.caFile, p.caKey = filepath.Join(p.dir, "ca.pem"), filepath.Join(p.dir, "ca-key.pem")
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.caFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.caKey, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *testPKI) issue(t *testing.T, role tlsconf.Role, name string) (certFile, keyFile string) {
	t.Helper()
	c, k, err := p.ca.Issue(pki.LeafRequest{Identity: tlsconf.Identity{Cluster: "shoal", Role: role, Name: name}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, string(role)+"-"+name+".pem"), filepath.Join(p.dir, string(role)+"-"+name+"-key.pem")
	if err := os.WriteFile(certFile, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// dial is a client of addr presenting role/name's certificate, or none when
// role is empty.
func (p *testPKI) dial(t *testing.T, addr string, role tlsconf.Role, name string) *grpcClients {
	t.Helper()
	cfg := tlsconf.Config{CAFile: p.caFile, Cluster: "shoal"}
	if role != "" {
		cfg.CertFile, cfg.KeyFile = p.issue(t, role, name)
	}
	src, err := tlsconf.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := rpc.Dial(addr, tlsconf.DialOption(tlsconf.ClientConfig(src)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return &grpcClients{control: shoalv1.NewControlServiceClient(cc), cluster: clusterv1.NewClusterServiceClient(cc), agent: shoalv1.NewAgentServiceClient(cc)}
}

type grpcClients struct {
	control shoalv1.ControlServiceClient
	cluster clusterv1.ClusterServiceClient
	agent   shoalv1.AgentServiceClient
}

// TestSecureNodeAsksWhoCalls runs a node with mutual TLS and an agent
// port, and checks each port refuses the callers it must.
func TestSecureNodeAsksWhoCalls(t *testing.T) {
	p := newTestPKI(t)
	c := testConfig(t)
	c.Security.Insecure = false
	c.Security.TLS.CAFile = p.caFile
	c.Security.TLS.CertFile, c.Security.TLS.KeyFile = p.issue(t, tlsconf.RoleServer, "n1")
	c.AgentAddr = freeAddr(t)
	n, err := New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30s")
		}
	}()
	op := p.dial(t, c.RPCAddr, tlsconf.RoleOperator, "alice")
	waitCtx, stop := context.WithTimeout(t.Context(), 20*time.Second)
	defer stop()
	for {
		st, err := op.control.GetStatus(waitCtx, &shoalv1.GetStatusRequest{})
		if err == nil && st.LeaderId == "n1" {
			if st.Insecure {
				t.Fatal("status says insecure on a TLS node")
			}
			break
		}
		if waitCtx.Err() != nil {
			t.Fatalf("no leader over mTLS within 20s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := func(what string, err error, code codes.Code, msg string) {
		t.Helper()
		if s, _ := status.FromError(err); s.Code() != code || !strings.Contains(s.Message(), msg) {
			t.Errorf("%s: %v, want %v containing %q", what, err, code, msg)
		}
	}
	_, err = op.control.ScaleFleet(ctx, &shoalv1.ScaleFleetRequest{Fleet: "web", Desired: 3})
	want("operator without a token scales", err, codes.PermissionDenied, "")
	_, err = op.cluster.ApplyCommand(ctx, &clusterv1.ApplyCommandRequest{Command: []byte(`{"op":"delete_fleet"}`)})
	want("operator sends a raw FSM command", err, codes.PermissionDenied, "")
	_, err = op.cluster.JoinCluster(ctx, &clusterv1.JoinClusterRequest{NodeId: "n9", RaftAddr: "127.0.0.1:1", RpcAddr: "127.0.0.1:2"})
	want("operator joins a voter", err, codes.PermissionDenied, "")
	stranger := p.dial(t, c.RPCAddr, tlsconf.RoleServer, "n9")
	_, err = stranger.cluster.JoinCluster(ctx, &clusterv1.JoinClusterRequest{NodeId: "n7", RaftAddr: "127.0.0.1:1", RpcAddr: "127.0.0.1:2"})
	want("a server joins as another node", err, codes.PermissionDenied, "joins only as the node its certificate names")
	_, err = stranger.cluster.ApplyCommand(ctx, &clusterv1.ApplyCommandRequest{Command: []byte(`{"op":"delete_fleet"}`)})
	want("a server certificate of no member sends a raw FSM command", err, codes.PermissionDenied, `node "n9" is not a member`)
	fs, err := stranger.cluster.ForwardAgents(ctx)
	if err == nil {
		_ = fs.Send(&clusterv1.ForwardAgentsRequest{Msg: &clusterv1.ForwardAgentsRequest_Hello{Hello: &clusterv1.FollowerHello{NodeId: "n9"}}})
		_, err = fs.Recv()
	}
	want("a server certificate of no member forwards agents", err, codes.PermissionDenied, `node "n9" is not a member`)
	self := p.dial(t, c.RPCAddr, tlsconf.RoleServer, "n1")
	fs, err = self.cluster.ForwardAgents(ctx)
	if err == nil {
		_ = fs.Send(&clusterv1.ForwardAgentsRequest{Msg: &clusterv1.ForwardAgentsRequest_Hello{Hello: &clusterv1.FollowerHello{NodeId: "n2"}}})
		_, err = fs.Recv()
	}
	want("a member forwards agents as another node", err, codes.PermissionDenied, `may not forward as node "n2"`)
	anon := p.dial(t, c.RPCAddr, "", "")
	_, err = anon.control.GetStatus(ctx, &shoalv1.GetStatusRequest{})
	want("no client certificate", err, codes.Unauthenticated, "")
	_, err = anon.agent.Enroll(ctx, &shoalv1.EnrollRequest{})
	want("enrollment on a node without --iid-trust", err, codes.FailedPrecondition, "enrollment is off on this node")

	// The agent port serves AgentService only.
	onAgentPort := p.dial(t, c.AgentAddr, tlsconf.RoleOperator, "bob")
	_, err = onAgentPort.control.GetStatus(ctx, &shoalv1.GetStatusRequest{})
	want("ControlService on the agent port", err, codes.Unimplemented, "")

	// Plaintext is refused at the handshake.
	plain, err := rpc.Dial(c.RPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if _, err := shoalv1.NewControlServiceClient(plain).GetStatus(pctx, &shoalv1.GetStatusRequest{}); err == nil {
		t.Error("a plaintext client got an answer from a TLS node")
	}
}

package enroll

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// agentService serves a Service as AgentService, as the node composes it.
type agentService struct {
	shoalv1.UnimplementedAgentServiceServer
	svc *Service
}

func (a agentService) Enroll(ctx context.Context, r *shoalv1.EnrollRequest) (*shoalv1.EnrollResponse, error) {
	return a.svc.Enroll(ctx, r)
}

func (a agentService) RenewCertificate(ctx context.Context, r *shoalv1.RenewCertificateRequest) (*shoalv1.RenewCertificateResponse, error) {
	return a.svc.RenewCertificate(ctx, r)
}

type rpcWorld struct {
	*world
	ca     *pki.CA
	addr   string
	dir    string
	mu     sync.Mutex
	commit func(ctx context.Context, c fsm.Command) error // replaces the default when set
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newRPCWorld serves a Service on 127.0.0.1 over TLS that asks for, but
// does not require, a client certificate (the agents' listener).
func newRPCWorld(t *testing.T) *rpcWorld {
	t.Helper()
	w := &rpcWorld{world: newWorld(t, time.Now()), dir: t.TempDir()}
	var err error
	w.ca, err = pki.NewCA(pki.CARequest{Cluster: "shoal", Validity: pki.DefaultCAValidity})
	if err != nil {
		t.Fatal(err)
	}
	is, err := NewIssuer(w.ca, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := w.ca.Issue(pki.LeafRequest{Identity: tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleServer, Name: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	src, err := tlsconf.NewSource(tlsconf.Config{Cluster: "shoal", CAFile: writeFile(t, w.dir, "ca.pem", w.ca.CertPEM()),
		CertFile: writeFile(t, w.dir, "server.pem", certPEM), KeyFile: writeFile(t, w.dir, "server-key.pem", keyPEM)})
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := tlsconf.ServerConfig(src, tlsconf.ServerOptions{AllowNoClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(ServiceDeps{Verifier: w.v, Issuer: is, CACertsPEM: w.ca.CertPEM(), Denied: w.v.denied,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Commit: func(ctx context.Context, c fsm.Command) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.commit != nil {
				return w.commit(ctx, c)
			}
			return w.apply(c)
		}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(tlsconf.ServerOption(scfg))
	shoalv1.RegisterAgentServiceServer(srv, agentService{svc: svc})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	w.addr = lis.Addr().String()
	return w
}

func (w *rpcWorld) apply(c fsm.Command) error {
	b, err := fsm.Stamp(c.Encode(), time.Now())
	if err != nil {
		return err
	}
	return w.fsm.ApplyBytes(w.fsm.LastApplied()+1, b).Error()
}

// client dials the service from local address from (empty: any), with the
// certificate and key files given, or none.
func (w *rpcWorld) client(t *testing.T, from, cert, key string) shoalv1.AgentServiceClient {
	t.Helper()
	src, err := tlsconf.NewSource(tlsconf.Config{Cluster: "shoal", CAFile: filepath.Join(w.dir, "ca.pem"), CertFile: cert, KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := rpc.Dial(w.addr, tlsconf.DialOption(tlsconf.ClientConfig(src)),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return shoalv1.NewAgentServiceClient(conn)
}

func (w *rpcWorld) request(t *testing.T, nonce []byte) (*shoalv1.EnrollRequest, []byte) {
	t.Helper()
	key, csr := testCSR(t)
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	d := doc(t, nil)
	return &shoalv1.EnrollRequest{IdentityDocument: d, IdentitySignature: w.east.sign(t, d), Csr: csr, Nonce: nonce}, keyPEM
}

func wantStatus(t *testing.T, err error, code codes.Code, has string) {
	t.Helper()
	s, _ := status.FromError(err)
	if s.Code() != code || !strings.Contains(s.Message(), has) || strings.Contains(s.Message(), "\n") {
		t.Fatalf("err = %v, want %s with one line containing %q", err, code, has)
	}
}

func TestServiceEnroll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := newRPCWorld(t)
	agent := w.client(t, testIP, "", "")

	// From another address than the document's: ip_mismatch, nothing recorded.
	req, _ := w.request(t, nonceA)
	_, err := w.client(t, "127.0.0.1", "", "").Enroll(ctx, req)
	wantStatus(t, err, codes.PermissionDenied, "enrollment refused (ip_mismatch): the document's privateIp 127.100.0.7 is not this connection's address 127.0.0.1")
	if _, ok := w.fsm.Identity(testID); ok {
		t.Fatal("a refused enrollment was recorded")
	}

	// A CSR that does not verify: invalid, nothing recorded.
	bad, _ := w.request(t, nonceA)
	bad.Csr = []byte("junk")
	_, err = agent.Enroll(ctx, bad)
	wantStatus(t, err, codes.InvalidArgument, "csr")
	if _, ok := w.fsm.Identity(testID); ok {
		t.Fatal("an enrollment with a bad CSR was recorded")
	}

	// From the document's address, over TLS without a client certificate.
	resp, err := agent.Enroll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	leaf := parsePEMCert(t, resp.GetCertificateChain())
	if id, err := tlsconf.ParseIdentity(leaf); err != nil || id != (tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleAgent, Name: testID}) {
		t.Fatalf("issued identity %v, %v", id, err)
	}
	if !bytes.Equal(resp.GetCaCertificates(), w.ca.CertPEM()) || !resp.GetExpireTime().AsTime().Equal(leaf.NotAfter) {
		t.Fatalf("ca_certificates or expire_time wrong: %v vs %v", resp.GetExpireTime().AsTime(), leaf.NotAfter)
	}
	if rec, ok := w.fsm.Identity(testID); !ok || rec.NonceSHA256 != hexSHA(string(nonceA)) {
		t.Fatalf("recorded %+v, %v", rec, ok)
	}

	// A copy of the document with another nonce: already_enrolled.
	replay, _ := w.request(t, nonceB)
	_, err = agent.Enroll(ctx, replay)
	wantStatus(t, err, codes.PermissionDenied, "enrollment refused (already_enrolled): ")

	// The same agent with its nonce enrolls again (its answer was lost).
	again, _ := w.request(t, nonceA)
	if _, err := agent.Enroll(ctx, again); err != nil {
		t.Fatalf("re-enrollment with the first nonce: %v", err)
	}

	// A racing enrollment of the same id won the commit: already_enrolled.
	before := testutil.ToFloat64(w.v.denied.WithLabelValues(string(ReasonAlreadyEnrolled)))
	w.commit = func(_ context.Context, c fsm.Command) error {
		if err := w.apply(fsm.IdentityEnroll(fsm.Identity{InstanceID: testID, NonceSHA256: hexSHA("winner"), PendingTimeMS: testPending.Add(time.Hour).UnixMilli()})); err != nil {
			return err
		}
		return w.apply(c)
	}
	race, _ := w.request(t, nonceA)
	_, err = agent.Enroll(ctx, race)
	wantStatus(t, err, codes.PermissionDenied, "enrollment refused (already_enrolled): ")
	if got := testutil.ToFloat64(w.v.denied.WithLabelValues(string(ReasonAlreadyEnrolled))) - before; got != 1 {
		t.Fatalf("already_enrolled counted %v times, want 1", got)
	}

	// The commit path fails (no leader): Unavailable, to be retried.
	w.commit = func(context.Context, fsm.Command) error { return errors.New("no leader") }
	if err := w.apply(fsm.IdentityReset(testID)); err != nil {
		t.Fatal(err)
	}
	nl, _ := w.request(t, nonceA)
	_, err = agent.Enroll(ctx, nl)
	wantStatus(t, err, codes.Unavailable, "no leader")

	// AWS lookups fail: Unavailable.
	w.commit = nil
	w.lookup.mu.Lock()
	w.lookup.err = errors.New("throttled")
	w.lookup.mu.Unlock()
	_, err = agent.Enroll(ctx, nl)
	wantStatus(t, err, codes.Unavailable, "throttled")

	// Malformed input: InvalidArgument.
	_, err = agent.Enroll(ctx, &shoalv1.EnrollRequest{IdentityDocument: []byte("{}"), IdentitySignature: []byte("x"), Nonce: []byte("short")})
	wantStatus(t, err, codes.InvalidArgument, "nonce")
}

func TestServiceRenew(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := newRPCWorld(t)
	req, keyPEM := w.request(t, nonceA)
	resp, err := w.client(t, testIP, "", "").Enroll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	cert := writeFile(t, w.dir, "agent.pem", resp.GetCertificateChain())
	key := writeFile(t, w.dir, "agent-key.pem", keyPEM)

	// Over mTLS with the agent certificate, from any address.
	_, csr := testCSR(t)
	r, err := w.client(t, "127.0.0.1", cert, key).RenewCertificate(ctx, &shoalv1.RenewCertificateRequest{Csr: csr})
	if err != nil {
		t.Fatal(err)
	}
	leaf := parsePEMCert(t, r.GetCertificateChain())
	if id, _ := tlsconf.ParseIdentity(leaf); id.Name != testID || id.Role != tlsconf.RoleAgent {
		t.Fatalf("renewed identity %v", id)
	}
	if !r.GetExpireTime().AsTime().Equal(leaf.NotAfter) || !bytes.Equal(r.GetCaCertificates(), w.ca.CertPEM()) {
		t.Fatal("renewal response lacks its expiry or CA bundle")
	}

	// Without a client certificate: Unauthenticated.
	_, err = w.client(t, "", "", "").RenewCertificate(ctx, &shoalv1.RenewCertificateRequest{Csr: csr})
	wantStatus(t, err, codes.Unauthenticated, "client certificate is required")

	// An operator certificate: wrong_role, counted.
	opCert, opKey, err := w.ca.Issue(pki.LeafRequest{Identity: tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleOperator, Name: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	op := w.client(t, "", writeFile(t, w.dir, "op.pem", opCert), writeFile(t, w.dir, "op-key.pem", opKey))
	_, err = op.RenewCertificate(ctx, &shoalv1.RenewCertificateRequest{Csr: csr})
	wantStatus(t, err, codes.PermissionDenied, "renewal refused (wrong_role): ")
	if n := testutil.ToFloat64(w.v.denied.WithLabelValues(string(ReasonWrongRole))); n != 1 {
		t.Fatalf("wrong_role counted %v, want 1", n)
	}

	// A bad CSR from a real agent: InvalidArgument.
	_, err = w.client(t, "", cert, key).RenewCertificate(ctx, &shoalv1.RenewCertificateRequest{Csr: []byte("junk")})
	wantStatus(t, err, codes.InvalidArgument, "csr")
}

func TestNewServiceChecksDeps(t *testing.T) {
	w := newWorld(t, time.Now())
	ca, err := pki.NewCA(pki.CARequest{Cluster: "shoal", Validity: pki.DefaultCAValidity})
	if err != nil {
		t.Fatal(err)
	}
	is, _ := NewIssuer(ca, time.Hour, nil)
	commit := func(context.Context, fsm.Command) error { return nil }
	for name, d := range map[string]ServiceDeps{
		"no verifier": {Issuer: is, CACertsPEM: ca.CertPEM(), Commit: commit},
		"no issuer":   {Verifier: w.v, CACertsPEM: ca.CertPEM(), Commit: commit},
		"no commit":   {Verifier: w.v, Issuer: is, CACertsPEM: ca.CertPEM()},
		"no bundle":   {Verifier: w.v, Issuer: is, Commit: commit},
		"leaf in bundle": {Verifier: w.v, Issuer: is, Commit: commit, CACertsPEM: func() []byte {
			c, _, _ := ca.Issue(pki.LeafRequest{Identity: tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleServer, Name: "n1"}})
			return c
		}()},
	} {
		if _, err := NewService(d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewService(ServiceDeps{Verifier: w.v, Issuer: is, CACertsPEM: ca.CertPEM(), Commit: commit}); err != nil {
		t.Fatal(err)
	}
}

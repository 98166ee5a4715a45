package trust

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/agent/internal/enroll"
	"github.com/shoal-dev/shoal/agent/internal/identity"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

const (
	testID   = "i-0123456789abcdef0"
	privIP   = "127.0.0.2"
	lifetime = 3 * time.Hour
	wait     = 10 * time.Second // bound on every real-time wait
)

// testCA signs like the coordinator's CA: URI SAN identities.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	mu   sync.Mutex
	n    int64
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), n: 1}
}

func (ca *testCA) sign(pub any, role, name string, from, until time.Time, usage x509.ExtKeyUsage) ([]byte, error) {
	ca.mu.Lock()
	ca.n++
	serial := big.NewInt(ca.n)
	ca.mu.Unlock()
	tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: from, NotAfter: until, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, URIs: []*url.URL{{Scheme: "spiffe", Host: "shoal", Path: "/" + role + "/" + name}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// coordinator is a fake AgentService: it checks the caller's address
// against the document as the real one does, and issues certificates for
// lifetime from its issue time.
type coordinator struct {
	shoalv1.UnimplementedAgentServiceServer
	ca      *testCA
	dataDir string
	issueAt time.Time

	mu      sync.Mutex
	refuse  []error // answers to the next Enroll calls
	enrolls []netip.Addr
	renews  []netip.Addr
	renewer []tlsconf.Identity
	nonceOK []bool // the nonce was stored before the call
}

func peerIP(ctx context.Context) netip.Addr {
	p, _ := peer.FromContext(ctx)
	return p.Addr.(*net.TCPAddr).AddrPort().Addr()
}

func (c *coordinator) issue(csrPEM []byte, name string) ([]byte, error) {
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, status.Error(codes.InvalidArgument, "csr: not PEM")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		return nil, status.Error(codes.InvalidArgument, "csr: bad")
	}
	return c.ca.sign(csr.PublicKey, "agent", name, c.issueAt, c.issueAt.Add(lifetime), x509.ExtKeyUsageClientAuth)
}

func (c *coordinator) Enroll(ctx context.Context, r *shoalv1.EnrollRequest) (*shoalv1.EnrollResponse, error) {
	ip := peerIP(ctx)
	stored, _ := os.ReadFile(filepath.Join(c.dataDir, enroll.NonceFile))
	c.mu.Lock()
	c.enrolls = append(c.enrolls, ip)
	c.nonceOK = append(c.nonceOK, strings.TrimSpace(string(stored)) == hex.EncodeToString(r.GetNonce()))
	var refusal error
	if len(c.refuse) > 0 {
		refusal, c.refuse = c.refuse[0], c.refuse[1:]
	}
	c.mu.Unlock()
	if refusal != nil {
		return nil, refusal
	}
	doc, err := identity.ParseDocument(r.GetIdentityDocument())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if ip.String() != doc.PrivateIP {
		return nil, status.Errorf(codes.PermissionDenied, "enrollment refused (ip_mismatch): the document's privateIp %s is not this connection's address %s", doc.PrivateIP, ip)
	}
	chain, err := c.issue(r.GetCsr(), doc.InstanceID)
	if err != nil {
		return nil, err
	}
	return &shoalv1.EnrollResponse{CertificateChain: chain, CaCertificates: c.ca.pem}, nil
}

func (c *coordinator) RenewCertificate(ctx context.Context, r *shoalv1.RenewCertificateRequest) (*shoalv1.RenewCertificateResponse, error) {
	id, ok, err := tlsconf.PeerIdentity(ctx)
	if err != nil || !ok || id.Role != tlsconf.RoleAgent {
		return nil, status.Error(codes.Unauthenticated, "renewal refused: an agent certificate is required")
	}
	c.mu.Lock()
	c.renews = append(c.renews, peerIP(ctx))
	c.renewer = append(c.renewer, id)
	c.mu.Unlock()
	chain, err := c.issue(r.GetCsr(), id.Name)
	if err != nil {
		return nil, err
	}
	return &shoalv1.RenewCertificateResponse{CertificateChain: chain, CaCertificates: c.ca.pem}, nil
}

func (c *coordinator) counts() (enrolls, renews int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.enrolls), len(c.renews)
}

// fakeClock hands each wait to the test, which fires it.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan fakeWait
}

type fakeWait struct {
	d  time.Duration
	ch chan time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.waits <- fakeWait{d: d, ch: ch}
	return ch
}

// next returns the next wait the code under test asked for.
func (f *fakeClock) next(t *testing.T) fakeWait {
	t.Helper()
	select {
	case w := <-f.waits:
		return w
	case <-time.After(wait):
		t.Fatal("the client asked for no wait")
	}
	return fakeWait{}
}

// fire moves the clock by the wait and ends it.
func (f *fakeClock) fire(w fakeWait) {
	f.mu.Lock()
	f.now = f.now.Add(w.d)
	now := f.now
	f.mu.Unlock()
	w.ch <- now
}

type env struct {
	coord   *coordinator
	clock   *fakeClock
	cfg     Config
	dir     string
	metrics *Metrics
	ev      EvidenceFunc
}

// newEnv serves the fake coordinator on 127.0.0.1 over TLS that accepts
// callers with and without a certificate, as the agents' listener does.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t)
	skey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	scert, err := ca.sign(skey.Public(), "server", "n1", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(skey)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", ca.pem)
	src, err := tlsconf.NewSource(tlsconf.Config{Cluster: "shoal", CAFile: caFile, CertFile: write("server.pem", scert),
		KeyFile: write("server-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))})
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := tlsconf.ServerConfig(src, tlsconf.ServerOptions{AllowNoClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	// Issued certificates are valid in real time (the handshakes check
	// them so), and the fake clock starts a minute into their life.
	issueAt := time.Now().Add(-time.Minute).Truncate(time.Second)
	coord := &coordinator{ca: ca, dataDir: filepath.Join(dir, "data"), issueAt: issueAt}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(tlsconf.ServerOption(scfg))
	shoalv1.RegisterAgentServiceServer(srv, coord)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	clock := &fakeClock{now: issueAt.Add(time.Minute), waits: make(chan fakeWait, 16)}
	cfg := DefaultConfig()
	cfg.Addrs, cfg.CAFile, cfg.LocalIP = []string{lis.Addr().String()}, caFile, netip.MustParseAddr(privIP)
	cfg.Now, cfg.After, cfg.RPCTimeout = clock.Now, clock.After, wait
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m := NewMetrics(nil)
	cfg.Metrics = m
	doc := []byte(fmt.Sprintf(`{"instanceId": %q, "privateIp": %q, "region": "us-east-1", "accountId": "123456789012"}`, testID, privIP))
	ev := func(context.Context) (identity.Evidence, error) {
		p, err := identity.ParseDocument(doc)
		return identity.Evidence{Document: doc, Signature: []byte("c2ln"), Parsed: p}, err
	}
	return &env{coord: coord, clock: clock, cfg: cfg, dir: coord.dataDir, metrics: m, ev: ev}
}

func (e *env) client(t *testing.T) *Client {
	t.Helper()
	st, err := enroll.OpenStore(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(e.cfg, st, testID, e.ev)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFirstStartEnrollsAndRestartReuses(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if len(e.coord.enrolls) != 1 || e.coord.enrolls[0].String() != privIP || !e.coord.nonceOK[0] {
		t.Fatalf("enrollments from %v, nonce stored first %v; want one from %s with the nonce stored before the call", e.coord.enrolls, e.coord.nonceOK, privIP)
	}
	if id, ok := c.Source().Identity(); !ok || id.Name != testID || id.Role != tlsconf.RoleAgent {
		t.Fatalf("source identity %v %v", id, ok)
	}
	if st, err := os.Stat(filepath.Join(e.dir, enroll.CredentialsFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}
	if n := testutil.ToFloat64(e.metrics.enrollments.WithLabelValues(resultSuccess)); n != 1 {
		t.Fatalf("enrollments{success} = %v", n)
	}
	serial := certificateOf(c.Source()).SerialNumber

	// A restart uses what is stored.
	c2 := e.client(t)
	if err := c2.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.coord.counts(); n != 1 {
		t.Fatalf("restart enrolled again: %d enrollments", n)
	}
	if certificateOf(c2.Source()).SerialNumber.Cmp(serial) != 0 {
		t.Fatal("restart does not use the stored certificate")
	}
}

func TestRenewalAtTwoThirds(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	first := certificateOf(c.Source())
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	w := e.clock.next(t)
	due := first.NotBefore.Add(lifetime * 2 / 3)
	if want := due.Sub(e.clock.Now()); w.d != want {
		t.Fatalf("renewal scheduled in %s, want %s (two thirds of the life)", w.d, want)
	}
	if _, renews := e.coord.counts(); renews != 0 {
		t.Fatal("renewed before two thirds")
	}
	e.clock.fire(w)
	next := e.clock.next(t) // the wait for the following renewal
	e.coord.mu.Lock()
	renews, who := append([]netip.Addr(nil), e.coord.renews...), append([]tlsconf.Identity(nil), e.coord.renewer...)
	e.coord.mu.Unlock()
	if len(renews) != 1 || renews[0].String() != privIP || who[0].Name != testID {
		t.Fatalf("renewals from %v as %v, want one from %s as agent/%s", renews, who, privIP, testID)
	}
	renewed := certificateOf(c.Source())
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the Source still holds the old certificate")
	}
	st, err := enroll.OpenStore(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := st.Load()
	if err != nil || saved.Leaf().SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Fatalf("the renewed certificate is not stored: %v", err)
	}
	if want := renewed.NotBefore.Add(lifetime * 2 / 3).Sub(e.clock.Now()); next.d != want {
		t.Fatalf("next renewal in %s, want %s", next.d, want)
	}
	if n := testutil.ToFloat64(e.metrics.renewals.WithLabelValues(resultSuccess)); n != 1 {
		t.Fatalf("renewals{success} = %v", n)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not stop")
	}
}

func TestRefusalIsRetriedSlowly(t *testing.T) {
	e := newEnv(t)
	e.coord.refuse = []error{status.Error(codes.PermissionDenied, "enrollment refused (not_in_fleet): instance i-0123456789abcdef0 is in no Auto Scaling group")}
	c := e.client(t)
	done := make(chan error, 1)
	go func() { done <- c.Start(ctxT(t)) }()
	w := e.clock.next(t)
	if w.d != e.cfg.RefusedWait {
		t.Fatalf("after a refusal the client waits %s, want %s", w.d, e.cfg.RefusedWait)
	}
	if n := testutil.ToFloat64(e.metrics.enrollments.WithLabelValues("not_in_fleet")); n != 1 {
		t.Fatalf("enrollments{not_in_fleet} = %v", n)
	}
	e.clock.fire(w)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("no enrollment after the refusal")
	}
	if n, _ := e.coord.counts(); n != 2 || !bytes.Equal([]byte(fmt.Sprint(e.coord.nonceOK)), []byte("[true true]")) {
		t.Fatalf("%d enrollments, nonce stored first %v", n, e.coord.nonceOK)
	}
}

// TestUnboundAgentIsRefused: without binding to its private IP the agent
// reaches the coordinator from 127.0.0.1 and is refused with ip_mismatch.
func TestUnboundAgentIsRefused(t *testing.T) {
	e := newEnv(t)
	e.cfg.LocalIP = netip.Addr{}
	c := e.client(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	if w := e.clock.next(t); w.d != e.cfg.RefusedWait {
		t.Fatalf("wait %s after ip_mismatch, want %s", w.d, e.cfg.RefusedWait)
	}
	if n := testutil.ToFloat64(e.metrics.enrollments.WithLabelValues("ip_mismatch")); n != 1 {
		t.Fatalf("enrollments{ip_mismatch} = %v", n)
	}
	if e.coord.enrolls[0].String() != "127.0.0.1" {
		t.Fatalf("unbound agent came from %v", e.coord.enrolls[0])
	}
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "ip_mismatch") {
			t.Fatalf("Start = %v, want it to give up naming the refusal", err)
		}
	case <-time.After(wait):
		t.Fatal("Start did not stop")
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Addrs = []string{"127.0.0.1:7002"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no coordinator", func(c *Config) { c.Addrs = nil }, "coordinator:"},
		{"empty coordinator", func(c *Config) { c.Addrs = []string{""} }, "coordinator[0]"},
		{"no ca", func(c *Config) { c.CAFile = "" }, "ca-cert:"},
		{"bad backoff", func(c *Config) { c.MaxBackoff = 0 }, "backoff"},
		{"bad cluster", func(c *Config) { c.Cluster = "Shoal" }, "cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mut(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/test/bufconn"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// testCA writes a CA certificate and key under dir and returns them with a
// server certificate for node n1 of cluster "shoal".
func testCA(t *testing.T, dir string) (caFile, keyFile string, ca *x509.Certificate, server tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	if ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("spiffe://shoal/server/n1")
	st := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, URIs: []*url.URL{u}}
	sder, err := x509.CreateCertificate(rand.Reader, st, ca, srvKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return caFile, keyFile, ca, tls.Certificate{Certificate: [][]byte{sder}, PrivateKey: srvKey}
}

// TestRunMutualTLS: every simulated agent presents its own ECDSA P-256
// agent certificate naming its instance id, and each is verified by the
// server against the CA.
func TestRunMutualTLS(t *testing.T) {
	caFile, keyFile, ca, server := testCA(t, t.TempDir())
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srvTLS := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	f := &fakeNode{name: "a:1", mtls: true, hellos: map[string]int{}, batches: map[string]int{}}
	l := bufconn.Listen(1 << 20)
	srv := rpc.NewServer(grpc.Creds(credentials.NewTLS(srvTLS)))
	shoalv1.RegisterAgentServiceServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	const agents = 5
	cfg := DefaultConfig()
	cfg.Coordinators, cfg.Fleet, cfg.Agents, cfg.Interval = []string{"a:1"}, "web", agents, 100*time.Millisecond
	cfg.Duration, cfg.Ramp = time.Second, 10*time.Millisecond
	cfg.CACert, cfg.CAKey = caFile, keyFile
	cfg.DialOptions = []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) })}
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, bad := range f.bad {
		t.Error(bad)
	}
	if len(f.hellos) != agents || sum.Connects < agents || sum.Refused != 0 {
		t.Errorf("hellos from %d instances, summary %s; want all %d streaming over their own certificates", len(f.hellos), sum, agents)
	}
}

func TestAgentCertificate(t *testing.T) {
	caFile, keyFile, ca, _ := testCA(t, t.TempDir())
	a, err := loadAgentCA(caFile, keyFile, "shoal", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.issue("i-10ad00007")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	switch {
	case !ok || pub.Curve != elliptic.P256():
		t.Errorf("key %T, want ECDSA P-256", leaf.PublicKey)
	case len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://shoal/agent/i-10ad00007":
		t.Errorf("URIs %v", leaf.URIs)
	case leaf.NotAfter.Sub(leaf.NotBefore) > agentCertTTL:
		t.Errorf("lives %s, more than %s", leaf.NotAfter.Sub(leaf.NotBefore), agentCertTTL)
	}
	if _, err := a.issue("i-" + strings.Repeat("a", 200)); err == nil {
		t.Error("issued a certificate for an overlong name")
	}
	// A key that is not the bundle's CA's is refused up front.
	other, otherKey, _, _ := testCA(t, t.TempDir())
	_ = other
	if _, err := loadAgentCA(caFile, otherKey, "shoal", time.Now); err == nil || !strings.Contains(err.Error(), "no CA certificate") {
		t.Errorf("mismatched key: %v", err)
	}
	if _, err := loadAgentCA(filepath.Join(t.TempDir(), "missing.pem"), keyFile, "shoal", time.Now); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing bundle: %v", err)
	}
}

package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

func testCSR(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	evil, _ := url.Parse("spiffe://shoal/server/n1")
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "server n1"}, URIs: []*url.URL{evil}, DNSNames: []string{"coordinator"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func parsePEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("not PEM: %q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssueAndRenew(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ca, err := pki.NewCA(pki.CARequest{Cluster: "shoal", Validity: pki.DefaultCAValidity, Now: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	is, err := NewIssuer(ca, 6*time.Hour, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	key, csr := testCSR(t)
	certPEM, err := is.Issue(&Enrollment{Document: Document{InstanceID: testID}}, csr)
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEMCert(t, certPEM)
	id, err := tlsconf.ParseIdentity(c)
	if err != nil || id != (tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleAgent, Name: testID}) {
		t.Fatalf("identity = %v, %v; the CSR's names must be ignored", id, err)
	}
	if len(c.DNSNames) != 0 || !c.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatalf("certificate: dns %v, key of the CSR: %v", c.DNSNames, c.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()))
	}
	if life := c.NotAfter.Sub(c.NotBefore); life != 6*time.Hour {
		t.Fatalf("lifetime %s, want 6h", life)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca.Cert), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("issued certificate does not verify: %v", err)
	}

	// Renewal keeps the instance id of the peer's certificate.
	_, csr2 := testCSR(t)
	renewed, err := is.Renew(id, csr2)
	if err != nil {
		t.Fatal(err)
	}
	if id2, _ := tlsconf.ParseIdentity(parsePEMCert(t, renewed)); id2 != id {
		t.Fatalf("renewed identity = %v, want %v", id2, id)
	}
	for _, tc := range []struct {
		name string
		peer tlsconf.Identity
	}{
		{"operator", tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleOperator, Name: "alice"}},
		{"server", tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleServer, Name: "n1"}},
		{"other cluster", tlsconf.Identity{Cluster: "other", Role: tlsconf.RoleAgent, Name: testID}},
		{"agent not an instance", tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleAgent, Name: "laptop"}},
	} {
		if _, err := is.Renew(tc.peer, csr2); func() bool { r, ok := ReasonOf(err); return !ok || r != ReasonWrongRole }() {
			t.Errorf("renew as %s: %v, want wrong_role", tc.name, err)
		}
	}

	// The CSR is checked.
	blk, _ := pem.Decode(csr)
	blk.Bytes[len(blk.Bytes)-5] ^= 0xff
	for name, bad := range map[string][]byte{
		"tampered":  pem.EncodeToMemory(blk),
		"junk":      []byte("junk"),
		"empty":     nil,
		"too large": []byte(strings.Repeat("x", MaxCSRSize+1)),
	} {
		if _, err := is.Issue(&Enrollment{Document: Document{InstanceID: testID}}, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s CSR: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := NewIssuer(ca, 25*time.Hour, nil); err == nil {
		t.Error("a 25h agent certificate TTL was accepted")
	}
	if is24, err := NewIssuer(ca, DefaultConfig().AgentCertTTL, func() time.Time { return now }); err != nil {
		t.Fatal(err)
	} else if c, err := is24.Issue(&Enrollment{Document: Document{InstanceID: testID}}, csr2); err != nil || parsePEMCert(t, c).NotAfter.Sub(parsePEMCert(t, c).NotBefore) != 24*time.Hour {
		t.Fatalf("default lifetime: %v", err)
	}
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

type fakeSTS struct {
	account string
	err     error
	calls   int
}

func (f *fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	f.calls++
	return &sts.GetCallerIdentityOutput{Account: sdkaws.String(f.account)}, f.err
}

func TestResolveAccounts(t *testing.T) {
	ctx := context.Background()
	f := &fakeSTS{account: "111122223333"}
	if got, err := ResolveAccounts(ctx, []string{testAccount}, f); err != nil || len(got) != 1 || got[0] != testAccount || f.calls != 0 {
		t.Fatalf("configured: %v %v, sts calls %d", got, err, f.calls)
	}
	if got, err := ResolveAccounts(ctx, nil, f); err != nil || len(got) != 1 || got[0] != "111122223333" {
		t.Fatalf("from STS: %v %v", got, err)
	}
	if _, err := ResolveAccounts(ctx, nil, &fakeSTS{err: errors.New("no credentials")}); err == nil || !strings.Contains(err.Error(), "iid-accounts") {
		t.Fatalf("STS failure: %v", err)
	}
	if _, err := ResolveAccounts(ctx, nil, &fakeSTS{account: "abc"}); err == nil {
		t.Fatal("a malformed account was accepted")
	}
	if _, err := ResolveAccounts(ctx, nil, nil); err == nil {
		t.Fatal("no STS client and no accounts was accepted")
	}
}

func TestDeniedCounter(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	v := NewDeniedCounter()
	reg.MustRegister(v)
	if n := testutil.CollectAndCount(v, DeniedMetricName); n != len(Reasons) {
		t.Fatalf("%d series at start, want one per reason (%d)", n, len(Reasons))
	}
	v.WithLabelValues(string(ReasonIPMismatch)).Inc()
	if got := testutil.ToFloat64(v.WithLabelValues(string(ReasonIPMismatch))); got != 1 {
		t.Fatalf("ip_mismatch = %v", got)
	}
}

package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

func newCA(t *testing.T, cluster string) *CA {
	t.Helper()
	ca, err := NewCA(CARequest{Cluster: cluster, Validity: DefaultCAValidity})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func id(role tlsconf.Role, name string) tlsconf.Identity {
	return tlsconf.Identity{Cluster: "shoal", Role: role, Name: name}
}

func TestNewCA(t *testing.T) {
	ca := newCA(t, "shoal")
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v MaxPathLen=%d zero=%v", c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Error("CA cannot sign certificates")
	}
	if got := ca.Cluster(); got != "shoal" {
		t.Errorf("Cluster() = %q", got)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", c.PublicKey)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	for _, bad := range []CARequest{{Cluster: "", Validity: time.Hour}, {Cluster: "a/b", Validity: time.Hour}, {Cluster: "shoal", Validity: 0}} {
		if _, err := NewCA(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewCA(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestIssue(t *testing.T) {
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	ca2, err := NewCA(CARequest{Cluster: "shoal", Validity: DefaultCAValidity, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca2.Cert)
	certPEM, keyPEM, err := ca2.Issue(LeafRequest{
		Identity: id(tlsconf.RoleServer, "n1"),
		IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames: []string{"localhost", "n1.shoal.internal"},
		Now:      now,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := parseCert(t, certPEM)
	if got, err := tlsconf.ParseIdentity(c); err != nil || got != id(tlsconf.RoleServer, "n1") {
		t.Errorf("identity = %v, %v", got, err)
	}
	if len(c.IPAddresses) != 2 || len(c.DNSNames) != 2 || c.DNSNames[1] != "n1.shoal.internal" {
		t.Errorf("SANs: %v %v", c.IPAddresses, c.DNSNames)
	}
	if c.IsCA {
		t.Error("leaf is a CA")
	}
	if !c.NotBefore.Equal(now.Add(-ClockSkew)) || !c.NotAfter.Equal(now.Add(-ClockSkew).Add(DefaultValidity(tlsconf.RoleServer))) {
		t.Errorf("validity %s .. %s", c.NotBefore, c.NotAfter)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v", c.SerialNumber)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("verify for usage %v: %v", usage, err)
		}
	}
	// The key matches the certificate.
	if _, err := parseKey(keyPEM); err != nil {
		t.Fatal(err)
	}

	// A non-server certificate is a client only.
	certPEM, _, err = ca2.Issue(LeafRequest{Identity: id(tlsconf.RoleAgent, "i-0abc"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	c = parseCert(t, certPEM)
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("an agent certificate verifies for server auth")
	}
	if c.NotAfter.Sub(c.NotBefore) > MaxAgentValidity {
		t.Errorf("agent certificate lasts %s", c.NotAfter.Sub(c.NotBefore))
	}
}

func TestSerialsDiffer(t *testing.T) {
	ca := newCA(t, "shoal")
	seen := map[string]bool{ca.Cert.SerialNumber.String(): true}
	for range 20 {
		certPEM, _, err := ca.Issue(LeafRequest{Identity: id(tlsconf.RoleLB, "lb1")})
		if err != nil {
			t.Fatal(err)
		}
		s := parseCert(t, certPEM).SerialNumber
		if seen[s.String()] {
			t.Fatalf("serial %v repeated", s)
		}
		if s.BitLen() < 64 { // a 128-bit random number this short is a 2^-64 event
			t.Fatalf("serial %v too short to be 128 random bits", s)
		}
		seen[s.String()] = true
	}
}

func TestIssueRefuses(t *testing.T) {
	ca := newCA(t, "shoal")
	short, err := NewCA(CARequest{Cluster: "shoal", Validity: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ca   *CA
		req  LeafRequest
		want string
	}{
		{"agent over 24h", ca, LeafRequest{Identity: id(tlsconf.RoleAgent, "i-1"), Validity: 24*time.Hour + time.Second}, "agent certificate lasts 24h0m0s at most"},
		{"other cluster", ca, LeafRequest{Identity: tlsconf.Identity{Cluster: "prod", Role: tlsconf.RoleServer, Name: "n1"}}, `cluster ("prod"): this CA signs for cluster "shoal" only`},
		{"unknown role", ca, LeafRequest{Identity: tlsconf.Identity{Cluster: "shoal", Role: "admin", Name: "x"}}, `role ("admin")`},
		{"bad name", ca, LeafRequest{Identity: id(tlsconf.RoleServer, "n 1")}, `name ("n 1")`},
		{"negative validity", ca, LeafRequest{Identity: id(tlsconf.RoleServer, "n1"), Validity: -time.Hour}, "must be positive"},
		{"bad dns", ca, LeafRequest{Identity: id(tlsconf.RoleServer, "n1"), DNSNames: []string{"a..b"}}, `dns ("a..b")`},
		{"unspecified ip", ca, LeafRequest{Identity: id(tlsconf.RoleServer, "n1"), IPs: []net.IP{net.IPv4zero}}, "ip (0.0.0.0)"},
		{"outlives the CA", short, LeafRequest{Identity: id(tlsconf.RoleServer, "n1"), Validity: 72 * time.Hour}, "after the CA does"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.ca.Issue(tt.req)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
	// Exactly 24 h is allowed.
	if _, _, err := ca.Issue(LeafRequest{Identity: id(tlsconf.RoleAgent, "i-1"), Validity: MaxAgentValidity}); err != nil {
		t.Fatal(err)
	}
}

func csr(t *testing.T, tmpl *x509.CertificateRequest) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestIssueFromCSR(t *testing.T) {
	ca := newCA(t, "shoal")
	evil, _ := url.Parse("spiffe://shoal/server/n9")
	key, req := csr(t, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "server n9"},
		URIs:     []*url.URL{evil},
		DNSNames: []string{"coordinator.example"},
	})
	certPEM, err := ca.IssueFromCSR(req, LeafRequest{Identity: id(tlsconf.RoleAgent, "i-0abc"), IPs: []net.IP{net.ParseIP("10.0.0.7")}})
	if err != nil {
		t.Fatal(err)
	}
	c := parseCert(t, certPEM)
	if got, err := tlsconf.ParseIdentity(c); err != nil || got != id(tlsconf.RoleAgent, "i-0abc") {
		t.Errorf("identity = %v, %v; the CSR's URI must be ignored", got, err)
	}
	if len(c.DNSNames) != 0 || len(c.IPAddresses) != 1 || strings.Contains(c.Subject.CommonName, "n9") {
		t.Errorf("CSR names leaked: dns %v ip %v cn %q", c.DNSNames, c.IPAddresses, c.Subject.CommonName)
	}
	if !c.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("certificate is not for the CSR's key")
	}

	// A CSR whose signature does not match its key proves nothing.
	blk, _ := pem.Decode(req)
	parsed, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), blk.Bytes...)
	sig := parsed.Signature
	i := len(tampered) - len(sig) + len(sig)/2
	tampered[i] ^= 0xff
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered})
	if _, err := ca.IssueFromCSR(bad, LeafRequest{Identity: id(tlsconf.RoleAgent, "i-0abc")}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "csr") {
		t.Errorf("tampered CSR: err = %v", err)
	}
	if _, err := ca.IssueFromCSR([]byte("junk"), LeafRequest{Identity: id(tlsconf.RoleAgent, "i-0abc")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("junk CSR: err = %v", err)
	}
	// The request is still checked: 25 h for an agent is refused.
	if _, err := ca.IssueFromCSR(req, LeafRequest{Identity: id(tlsconf.RoleAgent, "i-0abc"), Validity: 25 * time.Hour}); !errors.Is(err, ErrInvalid) {
		t.Errorf("25h agent from CSR: err = %v", err)
	}
}

func TestWriteAndLoad(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "shoal")
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	out := []Output{{certFile, ca.CertPEM(), CertMode}, {keyFile, keyPEM, KeyMode}}
	if err := WriteFiles(false, out...); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{certFile: CertMode, keyFile: KeyMode} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	if err := WriteFiles(false, Output{filepath.Join(dir, "new.pem"), []byte("x"), CertMode}, out[1]); !errors.Is(err, ErrExists) {
		t.Fatalf("second write: %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.pem")); err == nil {
		t.Error("a refused write left a file behind")
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(true, out...); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(keyFile); st.Mode().Perm() != KeyMode {
		t.Errorf("forced key mode %v", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("temporary files left: %v", ents)
	}

	// A bundle (new CA first) still yields the CA matching the key.
	other := newCA(t, "shoal")
	bundle := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(bundle, append(other.CertPEM(), ca.CertPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCA(bundle, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Cert.Equal(ca.Cert) {
		t.Error("LoadCA picked the wrong certificate from the bundle")
	}
	otherCert := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(otherCert, other.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(otherCert, keyFile); err == nil || !strings.Contains(err.Error(), "no certificate matches the key") {
		t.Errorf("mismatched CA: %v", err)
	}
	if err := os.Chmod(keyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(certFile, keyFile); err == nil || !strings.Contains(err.Error(), "mode 0640 lets others read or write the CA key") {
		t.Errorf("group-readable CA key: %v", err)
	}
	if _, err := LoadCA(certFile, filepath.Join(dir, "missing.pem")); err == nil || !strings.HasPrefix(err.Error(), "ca-key") {
		t.Errorf("missing key: %v", err)
	}
}

// forge signs a leaf for spiffe://prod/server/n1 with ca's key, bypassing
// Issue's checks, as a stolen CA key would.
func forge(t *testing.T, ca *CA) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("spiffe://prod/server/n1")
	serial, _ := newSerial()
	tmpl := &x509.Certificate{
		SerialNumber: serial, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		URIs: []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestNameConstraint shows a CA's key cannot sign an identity of another
// cluster that a verifier accepts.
func TestNameConstraint(t *testing.T) {
	ca := newCA(t, "shoal")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	_, err := parseCert(t, forge(t, ca)).Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	var inv x509.CertificateInvalidError
	if !errors.As(err, &inv) || inv.Reason != x509.CANotAuthorizedForThisName {
		t.Fatalf("verify forged leaf: %v, want CANotAuthorizedForThisName", err)
	}
}

// TestOpenSSL checks issued certificates with a verifier we did not write.
func TestOpenSSL(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl not on PATH")
		}
		t.Skip("openssl not on PATH; install it to run this test")
	}
	dir := t.TempDir()
	ca, other := newCA(t, "shoal"), newCA(t, "shoal")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", ca.CertPEM())
	otherFile := write("other.pem", other.CertPEM())
	bundle := write("bundle.pem", append(other.CertPEM(), ca.CertPEM()...))
	serverPEM, serverKey, err := ca.Issue(LeafRequest{Identity: id(tlsconf.RoleServer, "n1"), IPs: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	agentPEM, _, err := ca.Issue(LeafRequest{Identity: id(tlsconf.RoleAgent, "i-0abc")})
	if err != nil {
		t.Fatal(err)
	}
	server, agent := write("server.pem", serverPEM), write("agent.pem", agentPEM)
	forged := write("forged.pem", forge(t, ca))
	keyFile := write("server-key.pem", serverKey)

	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
		want string // in openssl's output, if set
	}{
		{"server as sslserver", []string{"verify", "-CAfile", caFile, "-purpose", "sslserver", server}, true, ""},
		{"server as sslclient", []string{"verify", "-CAfile", caFile, "-purpose", "sslclient", server}, true, ""},
		{"agent as sslclient", []string{"verify", "-CAfile", caFile, "-purpose", "sslclient", agent}, true, ""},
		{"agent as sslserver", []string{"verify", "-CAfile", caFile, "-purpose", "sslserver", agent}, false, "unsuitable certificate purpose"},
		{"bundle", []string{"verify", "-CAfile", bundle, server}, true, ""},
		{"other CA", []string{"verify", "-CAfile", otherFile, server}, false, "unable to get local issuer certificate"},
		{"other cluster (name constraint)", []string{"verify", "-CAfile", caFile, forged}, false, "permitted subtree violation"},
	} {
		out, err := run(tc.args...)
		if tc.want != "" && !strings.Contains(out, tc.want) {
			t.Errorf("%s: openssl says %q, want %q", tc.name, out, tc.want)
		}
		if ok := err == nil && strings.Contains(out, ": OK"); ok != tc.ok {
			t.Errorf("%s: openssl %s: %v\n%s", tc.name, strings.Join(tc.args, " "), err, out)
		}
	}
	out, err := run("x509", "-noout", "-text", "-in", server)
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	for _, want := range []string{"URI:spiffe://shoal/server/n1", "IP Address:127.0.0.1", "DNS:localhost", "prime256v1", "CA:FALSE", "TLS Web Server Authentication", "TLS Web Client Authentication"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl x509 -text lacks %q:\n%s", want, out)
		}
	}
	out, err = run("x509", "-noout", "-text", "-in", caFile)
	if err != nil || !strings.Contains(out, "CA:TRUE, pathlen:0") || !strings.Contains(out, "URI:shoal") {
		t.Errorf("CA as openssl sees it (%v):\n%s", err, out)
	}
	// openssl reads the key and agrees it belongs to the certificate.
	pubCert, err1 := run("x509", "-noout", "-pubkey", "-in", server)
	pubKey, err2 := run("pkey", "-pubout", "-in", keyFile)
	if err1 != nil || err2 != nil || pubCert != pubKey {
		t.Errorf("key does not match certificate per openssl: %v %v\n%s\n%s", err1, err2, pubCert, pubKey)
	}
}

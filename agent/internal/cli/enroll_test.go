package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

type signer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (s *signer) sign(t *testing.T, pub any, role, name string, usage x509.ExtKeyUsage, serial int64) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		URIs: []*url.URL{{Scheme: "spiffe", Host: "shoal", Path: "/" + role + "/" + name}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.cert, pub, s.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// tlsCoord is a coordinator's agent listener: Enroll without a client
// certificate, Connect with an agent certificate.
type tlsCoord struct {
	shoalv1.UnimplementedAgentServiceServer
	t       *testing.T
	ca      *signer
	enrolls chan string // peer address of each Enroll
	hellos  chan string // "<peer ip> <certificate name> <hello instance id>"
}

func (c *tlsCoord) Enroll(ctx context.Context, r *shoalv1.EnrollRequest) (*shoalv1.EnrollResponse, error) {
	p, _ := peer.FromContext(ctx)
	c.enrolls <- p.Addr.(*net.TCPAddr).IP.String()
	blk, _ := pem.Decode(r.GetCsr())
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, err
	}
	return &shoalv1.EnrollResponse{CertificateChain: c.ca.sign(c.t, csr.PublicKey, "agent", "i-0abc", x509.ExtKeyUsageClientAuth, 3)}, nil
}

func (c *tlsCoord) Connect(st grpc.BidiStreamingServer[shoalv1.ConnectRequest, shoalv1.ConnectResponse]) error {
	m, err := st.Recv()
	if err != nil {
		return err
	}
	id, _, _ := tlsconf.PeerIdentity(st.Context())
	p, _ := peer.FromContext(st.Context())
	c.hellos <- p.Addr.(*net.TCPAddr).IP.String() + " " + id.Name + " " + m.GetHello().GetInstanceId()
	<-st.Context().Done()
	return nil
}

// TestRunEnrollsThenStreams runs the agent as on EC2: IMDS names the
// instance, its private IP and the coordinators; the agent enrolls over
// server-authenticated TLS from its private IP, then streams with the
// issued certificate.
func TestRunEnrollsThenStreams(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	ca := &signer{cert: caCert, key: caKey}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	sKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kder, _ := x509.MarshalPKCS8PrivateKey(sKey)
	src, err := tlsconf.NewSource(tlsconf.Config{Cluster: "shoal", CAFile: caFile,
		CertFile: write("s.pem", ca.sign(t, sKey.Public(), "server", "n1", x509.ExtKeyUsageServerAuth, 2)),
		KeyFile:  write("s-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))})
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := tlsconf.ServerConfig(src, tlsconf.ServerOptions{AllowNoClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	coord := &tlsCoord{t: t, ca: ca, enrolls: make(chan string, 4), hellos: make(chan string, 4)}
	srv := rpc.NewServer(tlsconf.ServerOption(scfg))
	shoalv1.RegisterAgentServiceServer(srv, coord)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	const doc = `{"instanceId": "i-0abc", "privateIp": "127.0.0.2", "region": "us-east-1", "accountId": "123456789012"}`
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/latest/api/token" {
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			_, _ = io.WriteString(w, "tok")
			return
		}
		v, ok := map[string]string{
			"/latest/meta-data/instance-id": "i-0abc", "/latest/meta-data/local-ipv4": "127.0.0.2",
			"/latest/meta-data/placement/availability-zone": "us-east-1a", "/latest/meta-data/ami-id": "ami-1",
			"/latest/meta-data/tags/instance/aws:autoscaling:groupName": "web-asg",
			"/latest/meta-data/tags/instance/shoal:coordinators":        lis.Addr().String(),
			"/latest/dynamic/instance-identity/document":                doc,
			"/latest/dynamic/instance-identity/signature":               "c2ln",
		}[r.URL.Path]
		if !ok || r.Header.Get("X-Aws-Ec2-Metadata-Token") != "tok" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, v)
	}))
	defer imds.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)

	root := NewRoot()
	root.SetArgs([]string{"--ca-cert", caFile, "--data-dir", filepath.Join(dir, "data"), "--interval", "100ms", "--log-level", "error"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("agent exited with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop")
		}
	}()
	select {
	case ip := <-coord.enrolls:
		if ip != "127.0.0.2" {
			t.Fatalf("enrolled from %s, want the private IP 127.0.0.2", ip)
		}
	case err := <-done:
		t.Fatalf("agent exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no enrollment")
	}
	select {
	case h := <-coord.hellos:
		if h != "127.0.0.2 i-0abc i-0abc" {
			t.Fatalf("stream: %q, want from 127.0.0.2 with the agent certificate of i-0abc", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no stream")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "data", "agent.pem")); err != nil || !strings.Contains(string(b), "PRIVATE KEY") {
		t.Fatalf("credentials not stored: %v", err)
	}
}

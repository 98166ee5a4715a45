//go:build multiprocess

package e2e

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/deploy/testkit"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// fakeTrust is the fake coordinator's side of enrollment: a CA made by the
// real `shoal-coordinator tls` commands, its server certificate, and an
// Enroll that signs whatever instance the document names. It checks no
// signature: the agent's side (evidence, CSR, key store, mTLS after) is
// what these tests run; the coordinator's checks have their own tests.
type fakeTrust struct {
	pki    *testkit.PKI
	server *tlsconf.Source
	caCert *x509.Certificate
	caKey  crypto.Signer
	// enrolls receives each enrollment: the instance and the TCP peer.
	enrolls chan enrollment
}

type enrollment struct {
	instance, peerIP string
}

func newFakeTrust(t *testing.T) *fakeTrust {
	t.Helper()
	p := testkit.NewPKI(t, testkit.Binary(t, "shoal-coordinator"))
	pair := testkit.ServerCert(t, p, "fake")
	cfg := tlsconf.DefaultConfig()
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = p.CACert, pair.Cert, pair.Key
	src, err := tlsconf.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTrust{pki: p, server: src, enrolls: make(chan enrollment, 8)}
	ft.caCert, ft.caKey = loadCA(t, p.CACert, p.CAKey)
	return ft
}

func loadCA(t *testing.T, certFile, keyFile string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	cb, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || kblk == nil {
		t.Fatal("CA files hold no PEM")
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		t.Fatalf("CA key is a %T, not a signer", key)
	}
	return cert, signer
}

// serverOption is mutual TLS with the fake's server certificate; a client
// without a certificate gets through the handshake, for Enroll only.
func (ft *fakeTrust) serverOption(t *testing.T) grpc.ServerOption {
	t.Helper()
	cfg, err := tlsconf.ServerConfig(ft.server, tlsconf.ServerOptions{AllowNoClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	return tlsconf.ServerOption(cfg)
}

// enroll signs req's CSR for the instance its document names.
func (ft *fakeTrust) enroll(ctx context.Context, req *shoalv1.EnrollRequest) (*shoalv1.EnrollResponse, error) {
	var doc struct {
		InstanceID string `json:"instanceId"`
	}
	if err := json.Unmarshal(req.GetIdentityDocument(), &doc); err != nil || doc.InstanceID == "" {
		return nil, status.Errorf(codes.InvalidArgument, "identity document: %v", err)
	}
	blk, _ := pem.Decode(req.GetCsr())
	if blk == nil {
		return nil, status.Error(codes.InvalidArgument, "csr: no PEM")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err == nil {
		err = csr.CheckSignature()
	}
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "csr: %v", err)
	}
	id := tlsconf.Identity{Cluster: tlsconf.DefaultCluster, Role: tlsconf.RoleAgent, Name: doc.InstanceID}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: doc.InstanceID},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URI()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ft.caCert, csr.PublicKey, ft.caKey)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "sign: %v", err)
	}
	var ip string
	if p, ok := peer.FromContext(ctx); ok {
		ip, _, _ = net.SplitHostPort(p.Addr.String())
	}
	select {
	case ft.enrolls <- enrollment{doc.InstanceID, ip}:
	default:
	}
	caPEM, err := os.ReadFile(ft.pki.CACert)
	if err != nil {
		return nil, err
	}
	return &shoalv1.EnrollResponse{
		CertificateChain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		CaCertificates:   caPEM,
		ExpireTime:       timestamppb.New(tmpl.NotAfter),
	}, nil
}

// requireAgent refuses a Connect without an agent certificate naming
// instance, as the real coordinator does.
func requireAgent(ctx context.Context, instance string) error {
	id, ok, err := tlsconf.PeerIdentity(ctx)
	switch {
	case err != nil:
		return status.Errorf(codes.Unauthenticated, "%v", err)
	case !ok:
		return status.Error(codes.Unauthenticated, "no client certificate")
	case id.Role != tlsconf.RoleAgent || (instance != "" && id.Name != instance):
		return status.Error(codes.PermissionDenied, fmt.Sprintf("%s may not speak for %s", id, instance))
	}
	return nil
}

// identityDocument is an EC2-like instance identity document and a
// signature (the fake checks none).
func identityDocument(instance, ip string) (doc, sig string) {
	b, _ := json.Marshal(map[string]string{
		"instanceId": instance, "privateIp": ip, "region": "us-east-1", "accountId": "123456789012",
		"availabilityZone": "us-east-1a", "imageId": "ami-e2e", "instanceType": "t3.micro",
		"pendingTime": time.Now().UTC().Format(time.RFC3339),
	})
	return string(b), "c2lnbmF0dXJl"
}

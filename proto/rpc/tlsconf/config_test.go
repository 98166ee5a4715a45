package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// handshake runs both sides over loopback TCP and returns each side's
// error, the server's view of the client's certificates, and the client's
// view of the server's. In TLS 1.3 the client finishes before the server
// has checked its certificate, so the client also reads once to learn the
// server's verdict.
func handshake(t testing.TB, server, client *tls.Config) (clientCerts, serverCerts []*x509.Certificate, serverErr, clientErr error) {
	t.Helper()
	// Not net.Pipe: it has no buffer, and TLS 1.3 has both sides write at
	// once (session tickets against an alert).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	b, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := tls.Server(a, server)
		serverErr = s.Handshake()
		if serverErr == nil {
			clientCerts = s.ConnectionState().PeerCertificates
			_, serverErr = s.Write([]byte{1})
		}
		s.Close()
	}()
	c := tls.Client(b, client)
	clientErr = c.Handshake()
	if clientErr == nil {
		serverCerts = c.ConnectionState().PeerCertificates
		_, clientErr = c.Read(make([]byte, 1))
	}
	c.Close()
	<-done
	return
}

func TestHandshake(t *testing.T) {
	ca, other := newTestCA(t, "ca"), newTestCA(t, "other")
	bundle := append(append([]byte(nil), ca.pem...), other.pem...)
	srv := source(t, ca, ca.pem, "spiffe://shoal/server/n1")
	raw := func(ca *testCA, o leafOpts) tls.Certificate {
		c, k := ca.leaf(t, o)
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	// rawClient presents any certificate and verifies nothing.
	rawClient := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: certs}
	}
	rawServer := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert}
	}
	serverCfg := func(o ServerOptions) *tls.Config {
		c, err := ServerConfig(srv, o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name          string
		server        *tls.Config
		client        *tls.Config
		serverRefuses string // substring of the server's error, "" = accepts
		clientRefuses string // substring of the client's error, "" = accepts
	}{
		{"agent client", serverCfg(ServerOptions{}), ClientConfig(source(t, ca, ca.pem, "spiffe://shoal/agent/i-1")), "", ""},
		{"lb client", serverCfg(ServerOptions{}), ClientConfig(source(t, ca, ca.pem, "spiffe://shoal/lb/lb1")), "", ""},
		{"operator client", serverCfg(ServerOptions{}), ClientConfig(source(t, ca, ca.pem, "spiffe://shoal/operator/alice")), "", ""},
		{"server client", serverCfg(ServerOptions{}), ClientConfig(source(t, ca, ca.pem, "spiffe://shoal/server/n2")), "", ""},
		{"servers only: agent", serverCfg(ServerOptions{PeerRoles: []Role{RoleServer}}), ClientConfig(source(t, ca, ca.pem, "spiffe://shoal/agent/i-1")), "has role agent, want server", "bad certificate"},
		{"servers only: server", serverCfg(ServerOptions{PeerRoles: []Role{RoleServer}}), ClientConfig(source(t, ca, ca.pem, "spiffe://shoal/server/n2")), "", ""},
		{"no client cert", serverCfg(ServerOptions{}), ClientConfig(source(t, ca, ca.pem, "")), "didn't provide a certificate", "certificate required"},
		{"no client cert, allowed", serverCfg(ServerOptions{AllowNoClientCert: true}), ClientConfig(source(t, ca, ca.pem, "")), "", ""},
		{"allowed but bad cert given", serverCfg(ServerOptions{AllowNoClientCert: true}), rawClient(raw(other, leafOpts{uris: []string{"spiffe://shoal/agent/i-1"}})), "unknown authority", "bad certificate"},
		{"client of another CA", serverCfg(ServerOptions{}), rawClient(raw(other, leafOpts{uris: []string{"spiffe://shoal/agent/i-1"}})), "unknown authority", "bad certificate"},
		{"client of another cluster", serverCfg(ServerOptions{}), rawClient(raw(ca, leafOpts{uris: []string{"spiffe://prod/agent/i-1"}})), `of cluster "prod", not "shoal"`, "bad certificate"},
		{"client expired", serverCfg(ServerOptions{}), rawClient(raw(ca, leafOpts{uris: []string{"spiffe://shoal/agent/i-1"}, notAfter: time.Now().Add(-time.Minute)})), "expired", "bad certificate"},
		{"client without client auth usage", serverCfg(ServerOptions{}), rawClient(raw(ca, leafOpts{uris: []string{"spiffe://shoal/agent/i-1"}, usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})), "incompatible key usage", "bad certificate"},
		{"client with two identities", serverCfg(ServerOptions{}), rawClient(raw(ca, leafOpts{uris: []string{"spiffe://shoal/agent/i-1", "spiffe://shoal/server/n9"}})), "exactly one URI SAN", "bad certificate"},
		{"TLS 1.2 client", serverCfg(ServerOptions{}), &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true}, "unsupported versions", "protocol version"},
		// An lb certificate, even one with server auth usage, is not a server.
		{"lb acting as server", rawServer(raw(ca, leafOpts{uris: []string{"spiffe://shoal/lb/lb1"}})), ClientConfig(source(t, ca, ca.pem, "spiffe://shoal/agent/i-1")), "", "has role lb, want server"},
		{"agent acting as server", rawServer(raw(ca, leafOpts{uris: []string{"spiffe://shoal/agent/i-2"}})), ClientConfig(source(t, ca, ca.pem, "spiffe://shoal/agent/i-1")), "", "has role agent, want server"},
		{"server of another CA", rawServer(raw(other, leafOpts{uris: []string{"spiffe://shoal/server/n1"}})), ClientConfig(source(t, ca, ca.pem, "spiffe://shoal/agent/i-1")), "", "unknown authority"},
		{"server of another cluster", rawServer(raw(other, leafOpts{uris: []string{"spiffe://prod/server/n1"}})), ClientConfig(source(t, ca, bundle, "spiffe://shoal/agent/i-1")), "", `of cluster "prod"`},
		{"server without server auth usage", rawServer(raw(ca, leafOpts{uris: []string{"spiffe://shoal/server/n1"}, usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})), ClientConfig(source(t, ca, ca.pem, "spiffe://shoal/agent/i-1")), "", "incompatible key usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, serr, cerr := handshake(t, tt.server, tt.client)
			check := func(side string, err error, want string) {
				switch {
				case want == "" && err != nil:
					t.Errorf("%s refused: %v", side, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s error = %v, want %q", side, err, want)
				}
			}
			// A server that accepts still sees a refusing client hang up.
			if tt.clientRefuses == "" || tt.serverRefuses != "" {
				check("server", serr, tt.serverRefuses)
			}
			check("client", cerr, tt.clientRefuses)
		})
	}
}

func TestOwnRole(t *testing.T) {
	ca := newTestCA(t, "ca")
	agent := source(t, ca, ca.pem, "spiffe://shoal/agent/i-1")
	if _, err := ServerConfig(agent, ServerOptions{}); !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), "is a agent certificate, a server certificate is needed") {
		t.Errorf("ServerConfig with an agent certificate: %v", err)
	}
	if _, err := PeerClientConfig(agent); !errors.Is(err, ErrIdentity) {
		t.Errorf("PeerClientConfig with an agent certificate: %v", err)
	}
	srv := source(t, ca, ca.pem, "spiffe://shoal/server/n1")
	if _, err := ServerConfig(srv, ServerOptions{PeerRoles: []Role{RoleServer, "root"}}); !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), `peer role ("root")`) {
		t.Errorf("ServerConfig with an unknown peer role: %v", err)
	}
	if _, err := ServerConfig(source(t, ca, ca.pem, ""), ServerOptions{}); err == nil || !strings.Contains(err.Error(), "cert-file: required") {
		t.Errorf("ServerConfig without a certificate: %v", err)
	}
}

// TestRotation is the CA rotation without downtime: a server trusting the
// old CA learns the new one by Reload, and keeps trusting the old.
func TestRotation(t *testing.T) {
	oldCA, newCA := newTestCA(t, "old"), newTestCA(t, "new")
	dir := t.TempDir()
	c, k := oldCA.leaf(t, leafOpts{uris: []string{"spiffe://shoal/server/n1"}})
	cfg := files(t, dir, oldCA.pem, c, k)
	srv, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ServerConfig(srv, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bundle := append(append([]byte(nil), oldCA.pem...), newCA.pem...)
	newAgent := ClientConfig(source(t, newCA, bundle, "spiffe://shoal/agent/i-new"))
	oldAgent := ClientConfig(source(t, oldCA, bundle, "spiffe://shoal/agent/i-old"))

	if _, _, serr, _ := handshake(t, server, newAgent); serr == nil {
		t.Fatal("new-CA agent accepted before the server trusts the new CA")
	}
	write(t, cfg.CAFile, bundle)
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	for name, client := range map[string]*tls.Config{"new": newAgent, "old": oldAgent} {
		if _, _, serr, cerr := handshake(t, server, client); serr != nil || cerr != nil {
			t.Errorf("%s-CA agent after rotation: server %v, client %v", name, serr, cerr)
		}
	}

	// The server's own certificate is renewed from the new CA; clients see
	// it on their next handshake, with no new config.
	c2, k2 := newCA.leaf(t, leafOpts{uris: []string{"spiffe://shoal/server/n1"}})
	files(t, dir, bundle, c2, k2)
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	_, serverCerts, _, cerr := handshake(t, server, oldAgent)
	if cerr != nil || len(serverCerts) == 0 || !serverCerts[0].Equal(srv.Certificate().Leaf) {
		t.Fatalf("client did not get the reloaded server certificate: %v", cerr)
	}
	if serverCerts[0].Issuer.CommonName != "new" {
		t.Fatalf("server certificate issued by %q, want new", serverCerts[0].Issuer.CommonName)
	}

	// Dropping the old CA refuses the old agent: the bundle is live too.
	files(t, dir, newCA.pem, c2, k2)
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, _, serr, _ := handshake(t, server, oldAgent); serr == nil || !strings.Contains(serr.Error(), "unknown authority") {
		t.Fatalf("old-CA agent after the old CA was dropped: %v", serr)
	}
}

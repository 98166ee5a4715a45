package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

func noEnv(string) string { return "" }

func mustRunTLS(t *testing.T, args ...string) string {
	t.Helper()
	out, e := runEnv(t, noEnv, args...)
	if e != "" {
		t.Fatalf("%v: %s", args, e)
	}
	return out
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s: mode %04o, want %04o", path, st.Mode().Perm(), want)
	}
}

// TestTLSDefaults runs the commands as an operator would, in the current
// directory with every default, and uses what they wrote for a TLS 1.3
// handshake.
func TestTLSDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	out := mustRunTLS(t, "tls", "ca", "create")
	if !strings.Contains(out, "wrote shoal-ca.pem") || !strings.Contains(out, "wrote shoal-ca-key.pem") {
		t.Fatalf("ca create printed %q", out)
	}
	checkMode(t, "shoal-ca-key.pem", 0o600)
	ca := readCert(t, "shoal-ca.pem")
	if !ca.IsCA || ca.NotAfter.Sub(ca.NotBefore) != pki.DefaultCAValidity {
		t.Errorf("CA: IsCA %v, validity %s", ca.IsCA, ca.NotAfter.Sub(ca.NotBefore))
	}

	out = mustRunTLS(t, "tls", "cert", "create", "--role", "server", "--name", "n1", "--ip", "127.0.0.1", "--ip", "10.0.0.5", "--dns", "localhost")
	if !strings.Contains(out, "wrote shoal-server-n1.pem (spiffe://shoal/server/n1, until ") {
		t.Fatalf("cert create printed %q", out)
	}
	checkMode(t, "shoal-server-n1-key.pem", 0o600)
	checkMode(t, "shoal-server-n1.pem", 0o644)
	srv := readCert(t, "shoal-server-n1.pem")
	if len(srv.IPAddresses) != 2 || !srv.IPAddresses[1].Equal(net.ParseIP("10.0.0.5")) || len(srv.DNSNames) != 1 || srv.DNSNames[0] != "localhost" {
		t.Errorf("server SANs: %v %v", srv.IPAddresses, srv.DNSNames)
	}
	if got := srv.NotAfter.Sub(srv.NotBefore); got != 365*24*time.Hour {
		t.Errorf("server validity %s, want 365 days", got)
	}

	out = mustRunTLS(t, "tls", "cert", "create", "--role", "agent", "--name", "i-0abc", "-o", "json")
	var j map[string]string
	if err := json.Unmarshal([]byte(out), &j); err != nil || j["identity"] != "spiffe://shoal/agent/i-0abc" || j["key_file"] != "shoal-agent-i-0abc-key.pem" {
		t.Fatalf("agent JSON %q: %v", out, err)
	}
	agent := readCert(t, "shoal-agent-i-0abc.pem")
	if got := agent.NotAfter.Sub(agent.NotBefore); got > pki.MaxAgentValidity {
		t.Errorf("agent validity %s, over 24 h", got)
	}

	// What the CLI wrote is what tlsconf loads, and they shake hands.
	load := func(cert string) *tlsconf.Source {
		cfg := tlsconf.DefaultConfig()
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = "shoal-ca.pem", cert+".pem", cert+"-key.pem"
		s, err := tlsconf.NewSource(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	serverCfg, err := tlsconf.ServerConfig(load("shoal-server-n1"), tlsconf.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []*x509.Certificate, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if tc.Handshake() != nil {
			got <- nil
			return
		}
		got <- tc.ConnectionState().PeerCertificates
		tc.Write([]byte{1})
	}()
	d := &tls.Dialer{Config: tlsconf.ClientConfig(load("shoal-agent-i-0abc"))}
	conn, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if certs := <-got; len(certs) == 0 || !certs[0].Equal(agent) {
		t.Fatal("server did not see the agent's certificate")
	}

	// Nothing is overwritten without --force, not even the other file.
	key, _ := os.ReadFile("shoal-server-n1-key.pem")
	if err := os.Remove("shoal-server-n1.pem"); err != nil {
		t.Fatal(err)
	}
	if _, e := runEnv(t, noEnv, "tls", "cert", "create", "--role", "server", "--name", "n1"); e != "shoal-server-n1-key.pem: already exists (use --force to overwrite)" {
		t.Fatalf("second create: %q", e)
	}
	if _, err := os.Stat("shoal-server-n1.pem"); err == nil {
		t.Fatal("a refused create wrote the certificate")
	}
	mustRunTLS(t, "tls", "cert", "create", "--role", "server", "--name", "n1", "--force")
	if key2, _ := os.ReadFile("shoal-server-n1-key.pem"); bytes.Equal(key, key2) {
		t.Fatal("--force did not replace the key")
	}
	checkMode(t, "shoal-server-n1-key.pem", 0o600)
	if _, e := runEnv(t, noEnv, "tls", "ca", "create"); !strings.Contains(e, "shoal-ca.pem: already exists") {
		t.Fatalf("second ca create: %q", e)
	}
}

func TestTLSFlags(t *testing.T) {
	dir := t.TempDir()
	caDir, outDir := filepath.Join(dir, "ca"), filepath.Join(dir, "out")
	for _, d := range []string{caDir, outDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mustRunTLS(t, "tls", "ca", "create", "--cluster", "prod", "--days", "30", "--out", caDir)
	ca := readCert(t, filepath.Join(caDir, "shoal-ca.pem"))
	if got := ca.NotAfter.Sub(ca.NotBefore); got != 30*24*time.Hour {
		t.Errorf("CA validity %s, want 30 days", got)
	}
	caFlags := []string{"--ca", filepath.Join(caDir, "shoal-ca.pem"), "--ca-key", filepath.Join(caDir, "shoal-ca-key.pem"), "--out", outDir}
	mustRunTLS(t, append([]string{"tls", "cert", "create", "--role", "lb", "--name", "lb1", "--cluster", "prod", "--days", "7"}, caFlags...)...)
	lb := readCert(t, filepath.Join(outDir, "prod-lb-lb1.pem"))
	if id, err := tlsconf.ParseIdentity(lb); err != nil || id != (tlsconf.Identity{Cluster: "prod", Role: tlsconf.RoleLB, Name: "lb1"}) {
		t.Errorf("identity %v, %v", id, err)
	}
	if got := lb.NotAfter.Sub(lb.NotBefore); got != 7*24*time.Hour {
		t.Errorf("lb validity %s, want 7 days", got)
	}
	checkMode(t, filepath.Join(outDir, "prod-lb-lb1-key.pem"), 0o600)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"agent over a day", []string{"--role", "agent", "--name", "i-1", "--cluster", "prod", "--days", "2"}, "days (2): an agent certificate lasts 1 day at most"},
		{"negative days", []string{"--role", "lb", "--name", "x", "--cluster", "prod", "--days", "-1"}, "days (-1): must be positive"},
		{"unknown role", []string{"--role", "admin", "--name", "x"}, `role ("admin"): must be one of server, lb, agent, operator`},
		{"bad name", []string{"--role", "lb", "--name", "../x", "--cluster", "prod"}, `name ("../x"): must not start with '.'`},
		{"wrong cluster", []string{"--role", "lb", "--name", "x"}, `cluster ("shoal"): this CA signs for cluster "prod" only`},
		{"bad ip", []string{"--role", "lb", "--name", "x", "--cluster", "prod", "--ip", "10.0.0"}, `ip ("10.0.0"): not an IP address`},
		{"bad dns", []string{"--role", "lb", "--name", "x", "--cluster", "prod", "--dns", "-a.example"}, `dns ("-a.example")`},
		{"outlives the CA", []string{"--role", "server", "--name", "n1", "--cluster", "prod", "--days", "60"}, "after the CA does"},
		{"no role", []string{"--name", "x"}, `required flag(s) "role" not set`},
		{"argument", []string{"--role", "lb", "--name", "x", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, e := runEnv(t, noEnv, append(append([]string{"tls", "cert", "create"}, tt.args...), caFlags...)...)
			if !strings.Contains(e, tt.want) {
				t.Fatalf("error %q, want %q", e, tt.want)
			}
		})
	}
	_, e := runEnv(t, noEnv, "tls", "cert", "create", "--role", "lb", "--name", "x", "--ca", filepath.Join(dir, "none.pem"), "--ca-key", filepath.Join(dir, "none-key.pem"))
	if !strings.HasPrefix(e, "ca-key: ") {
		t.Fatalf("missing CA: %q", e)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--days", "0"}, "days (0): must be positive"},
		{[]string{"--cluster", "a b"}, `cluster ("a b")`},
	} {
		if _, e := runEnv(t, noEnv, append([]string{"tls", "ca", "create", "--out", dir}, tt.args...)...); !strings.Contains(e, tt.want) {
			t.Errorf("ca create %v: %q, want %q", tt.args, e, tt.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("refused commands wrote files: %v", ents)
	}
}

package devpki_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/shoal-dev/shoal/deploy/internal/devpki"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// coordinatorBin is $SHOAL_BIN's shoal-coordinator when set, else one
// built for this test: devpki drives the real CLI.
func coordinatorBin(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("SHOAL_BIN"); dir != "" && filepath.IsAbs(dir) {
		if p := filepath.Join(dir, "shoal-coordinator"); fileExists(p) {
			return p
		}
	}
	// `go test` runs this, so the go tool is at hand; without it on PATH
	// the test fails rather than passing unchecked.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go tool on PATH to build shoal-coordinator with, and SHOAL_BIN is not set: %v", err)
	}
	out := filepath.Join(t.TempDir(), "shoal-coordinator")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/shoal-dev/shoal/coordinator/cmd/shoal-coordinator").CombinedOutput(); err != nil {
		t.Fatalf("build shoal-coordinator: %v\n%s", err, b)
	}
	return out
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func identityOf(t *testing.T, certFile string) tlsconf.Identity {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", certFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	id, err := tlsconf.ParseIdentity(c)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPKIIssuesWhatTheServerAndClientUse: the CLI-made CA and
// certificates carry the roles asked for, keys are private, and Creds dial
// a server built from them with mutual TLS and the token, while a client
// of another CA is refused.
func TestPKIIssuesWhatTheServerAndClientUse(t *testing.T) {
	bin := coordinatorBin(t)
	ctx := context.Background()
	p, err := devpki.New(ctx, bin, filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := p.Server(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	op, err := p.Issue(ctx, devpki.RoleOperator, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		role tlsconf.Role
		name string
	}{{srv.Cert, tlsconf.RoleServer, "n1"}, {op.Cert, tlsconf.RoleOperator, "alice"}} {
		if id := identityOf(t, tc.file); id.Role != tc.role || id.Name != tc.name {
			t.Errorf("%s: identity %s, want %s/%s", tc.file, id, tc.role, tc.name)
		}
	}
	for _, k := range []string{p.CAKey, srv.Key, op.Key} {
		if st, err := os.Stat(k); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("key %s: mode %v (%v), want 0600", k, st.Mode().Perm(), err)
		}
	}

	cfg := tlsconf.DefaultConfig()
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = p.CACert, srv.Cert, srv.Key
	src, err := tlsconf.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := tlsconf.ServerConfig(src, tlsconf.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		id   tlsconf.Identity
		auth string
	}
	calls := make(chan seen, 4)
	gs := rpc.NewServer(tlsconf.ServerOption(scfg), grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		id, _, _ := tlsconf.PeerIdentity(ctx)
		md, _ := metadata.FromIncomingContext(ctx)
		calls <- seen{id, strings.Join(md.Get(rpc.AuthorizationKey), ",")}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	check := func(c devpki.Creds) error {
		opts, err := c.DialOptions()
		if err != nil {
			return err
		}
		cc, err := rpc.Dial(ln.Addr().String(), opts...)
		if err != nil {
			return err
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := check(devpki.Creds{CACert: p.CACert, Pair: op, Token: "s3cret"}); err != nil {
		t.Fatalf("operator call: %v", err)
	}
	if got := <-calls; got.id.Role != tlsconf.RoleOperator || got.id.Name != "alice" || got.auth != rpc.BearerPrefix+"s3cret" {
		t.Fatalf("server saw %+v, want operator/alice with Bearer s3cret", got)
	}

	other, err := devpki.New(ctx, bin, filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Issue(ctx, devpki.RoleOperator, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	if err := check(devpki.Creds{CACert: other.CACert, Pair: stranger, Token: "s3cret"}); err == nil {
		t.Fatal("a client of another CA got through")
	}
	select {
	case got := <-calls:
		t.Fatalf("the stranger's call reached the server: %+v", got)
	default:
	}
}

func TestCredsEnvAndExports(t *testing.T) {
	c := devpki.Creds{CACert: "/t/ca.pem", Pair: devpki.Pair{Cert: "/t/op.pem", Key: "/t/op key.pem"}}
	if got, want := strings.Join(c.Env(), " "), "SHOAL_CACERT=/t/ca.pem SHOAL_CLIENT_CERT=/t/op.pem SHOAL_CLIENT_KEY=/t/op key.pem"; got != want {
		t.Errorf("Env without a token = %q, want %q", got, want)
	}
	c.Token = "ab'c"
	want := []string{
		"export SHOAL_CACERT=/t/ca.pem",
		"export SHOAL_CLIENT_CERT=/t/op.pem",
		"export SHOAL_CLIENT_KEY='/t/op key.pem'",
		`export SHOAL_TOKEN='ab'\''c'`,
	}
	if got := c.Exports(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Exports =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEnvironDropsCallerCredentials(t *testing.T) {
	t.Setenv("SHOAL_TOKEN", "leaked")
	t.Setenv("SHOAL_CACERT", "/leaked")
	t.Setenv("SHOAL_ADDR", "10.0.0.1:7400")
	for _, kv := range devpki.Environ() {
		if strings.HasPrefix(kv, "SHOAL_TOKEN=") || strings.HasPrefix(kv, "SHOAL_CACERT=") || strings.HasPrefix(kv, "SHOAL_ADDR=") {
			t.Errorf("Environ kept %s", kv)
		}
	}
}

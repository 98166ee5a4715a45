package coordtls

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/feed"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestValidate(t *testing.T) {
	tlsOK := DefaultConfig()
	tlsOK.CACert, tlsOK.Cert, tlsOK.Key = "ca.pem", "lb.pem", "lb-key.pem"
	insecureOK := DefaultConfig()
	insecureOK.Insecure = true
	cases := []struct {
		name string
		mod  func(*Config)
		want string // "" means valid
	}{
		{"tls", func(*Config) {}, ""},
		{"insecure", func(c *Config) { *c = insecureOK }, ""},
		{"nothing", func(c *Config) { *c = DefaultConfig() }, "ca-cert: required for the coordinator connection (or --insecure"},
		{"no ca", func(c *Config) { c.CACert = "" }, "ca-cert: required"},
		{"no cert", func(c *Config) { c.Cert = "" }, "cert: required"},
		{"no key", func(c *Config) { c.Key = "" }, "key: required"},
		{"insecure with cert", func(c *Config) { c.Insecure = true; c.CACert, c.Key = "", "" }, "insecure: plaintext cannot be combined with --cert"},
		{"bad cluster", func(c *Config) { c.Cluster = "Shoal" }, "must be lowercase"},
		{"no reload interval", func(c *Config) { c.ReloadInterval = 0 }, "tls-reload-interval (0s): must be > 0"},
		{"no logger", func(c *Config) { c.Logger = nil }, "logger"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tlsOK
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func lbConfig(f files) Config {
	c := DefaultConfig()
	c.CACert, c.Cert, c.Key, c.Logger = f.ca, f.cert, f.key, quiet()
	return c
}

func TestNewRefusesAnotherRole(t *testing.T) {
	ca := newCA(t)
	for _, role := range []string{"agent", "server", "operator"} {
		t.Run(role, func(t *testing.T) {
			c, k, _ := ca.issue(t, role, "x")
			_, err := New(lbConfig(writeFiles(t, t.TempDir(), ca.pem, c, k)))
			if err == nil || !strings.Contains(err.Error(), "is a "+role+" certificate; shoal-lb needs one of role lb") {
				t.Fatalf("got %v", err)
			}
		})
	}
	t.Run("untrusted", func(t *testing.T) {
		c, k, _ := newCA(t).issue(t, "lb", "lb-0")
		_, err := New(lbConfig(writeFiles(t, t.TempDir(), ca.pem, c, k)))
		if err == nil || !strings.Contains(err.Error(), "not trusted by ca-cert") {
			t.Fatalf("got %v, want a line naming --ca-cert", err)
		}
	})
}

// fakeCoordinator is a BackendService that, like the coordinator, admits
// only LB certificates, records each caller's certificate serial, and
// sends one set per stream.
type fakeCoordinator struct {
	shoalv1.UnimplementedBackendServiceServer
	mu      sync.Mutex
	serials []string
}

func (f *fakeCoordinator) WatchBackends(st grpc.BidiStreamingServer[shoalv1.WatchBackendsRequest, shoalv1.WatchBackendsResponse]) error {
	if err := tlsconf.RequireRole(st.Context(), tlsconf.RoleLB); err != nil {
		return err
	}
	p, _ := peer.FromContext(st.Context())
	f.mu.Lock()
	f.serials = append(f.serials, p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber.String())
	f.mu.Unlock()
	if _, err := st.Recv(); err != nil { // the hello
		return err
	}
	set := &shoalv1.BackendSet{Fleet: "web", Version: 1, Backends: []*shoalv1.Backend{{InstanceId: "i-1", Address: "10.0.0.1:80"}}}
	if err := st.Send(&shoalv1.WatchBackendsResponse{Backends: set}); err != nil {
		return err
	}
	for {
		if _, err := st.Recv(); err != nil {
			return nil
		}
	}
}

func (f *fakeCoordinator) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.serials...)
}

// startCoordinator serves f over TLS on loopback with a server certificate
// from ca and returns its address.
func startCoordinator(t *testing.T, ca *testCA, f *fakeCoordinator) string {
	t.Helper()
	c, k, _ := ca.issue(t, "server", "coord-0")
	fs := writeFiles(t, t.TempDir(), ca.pem, c, k)
	tc := tlsconf.DefaultConfig()
	tc.CAFile, tc.CertFile, tc.KeyFile = fs.ca, fs.cert, fs.key
	src, err := tlsconf.NewSource(tc)
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := tlsconf.ServerConfig(src, tlsconf.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(tlsconf.ServerOption(scfg))
	shoalv1.RegisterBackendServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// watchOnce opens a fresh connection with opt, waits for the first set,
// and returns the stream's error if the call was refused.
func watchOnce(t *testing.T, addr string, opt grpc.DialOption) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := rpc.Dial(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	st, err := shoalv1.NewBackendServiceClient(cc).WatchBackends(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&shoalv1.WatchBackendsRequest{Msg: &shoalv1.WatchBackendsRequest_Hello{Hello: &shoalv1.LBHello{LbId: "lb-0", Fleet: "web"}}}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_, err = st.Recv()
	return err
}

// TestFeedOverTLS runs the real feed client with the LB's credentials
// against a TLS coordinator that admits only LBs.
func TestFeedOverTLS(t *testing.T) {
	ca := newCA(t)
	f := &fakeCoordinator{}
	addr := startCoordinator(t, ca, f)
	c, k, serial := ca.issue(t, "lb", "lb-0")
	creds, err := New(lbConfig(writeFiles(t, t.TempDir(), ca.pem, c, k)))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := creds.Identity(); !ok || id.Role != tlsconf.RoleLB || id.Name != "lb-0" {
		t.Fatalf("identity %v %v", id, ok)
	}

	bc := balance.DefaultConfig()
	bc.Fleet = "web"
	bal, err := balance.New(bc, balance.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	fc := feed.DefaultConfig()
	fc.Addrs, fc.Fleet, fc.LBID, fc.Logger = []string{addr}, "web", "lb-0", quiet()
	fc.DialOptions = []grpc.DialOption{creds.DialOption()}
	cl, err := feed.New(fc, bal)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for cl.SetsApplied() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no backend set arrived over TLS")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if bs := bal.Backends(); len(bs) != 1 || bs[0].Addr != "10.0.0.1:80" {
		t.Fatalf("balancer backends %v", bs)
	}
	if got := f.seen(); len(got) != 1 || got[0] != serial {
		t.Fatalf("the coordinator saw serials %v, want [%s]", got, serial)
	}
}

// TestCoordinatorRefusesAnotherRole: a certificate the CA trusts but of
// another role is refused by a coordinator that requires lb. New refuses
// it before that, so the client is built from tlsconf directly.
func TestCoordinatorRefusesAnotherRole(t *testing.T) {
	ca := newCA(t)
	f := &fakeCoordinator{}
	addr := startCoordinator(t, ca, f)
	c, k, _ := ca.issue(t, "agent", "i-0123")
	fs := writeFiles(t, t.TempDir(), ca.pem, c, k)
	tc := tlsconf.DefaultConfig()
	tc.CAFile, tc.CertFile, tc.KeyFile = fs.ca, fs.cert, fs.key
	src, err := tlsconf.NewSource(tc)
	if err != nil {
		t.Fatal(err)
	}
	err = watchOnce(t, addr, tlsconf.DialOption(tlsconf.ClientConfig(src)))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "role agent") {
		t.Fatalf("an agent certificate: got %v, want PermissionDenied naming role agent", err)
	}

	c, k, serial := ca.issue(t, "lb", "lb-0")
	creds, err := New(lbConfig(writeFiles(t, t.TempDir(), ca.pem, c, k)))
	if err != nil {
		t.Fatal(err)
	}
	if err := watchOnce(t, addr, creds.DialOption()); err != nil {
		t.Fatalf("an lb certificate: %v", err)
	}
	if got := f.seen(); len(got) != 1 || got[0] != serial {
		t.Fatalf("admitted serials %v, want only the lb's %s", got, serial)
	}
}

// TestReload: after a new certificate lands on disk and SIGHUP (or the
// file watch) reloads it, a new connection made with the DialOption built
// before the reload presents the new certificate.
func TestReload(t *testing.T) {
	for _, trigger := range []string{"SIGHUP", "file change"} {
		t.Run(trigger, func(t *testing.T) {
			ca := newCA(t)
			f := &fakeCoordinator{}
			addr := startCoordinator(t, ca, f)
			c, k, first := ca.issue(t, "lb", "lb-0")
			dir := t.TempDir()
			fs := writeFiles(t, dir, ca.pem, c, k)
			cfg := lbConfig(fs)
			if trigger == "SIGHUP" {
				cfg.ReloadInterval = time.Hour // only the signal can reload
			} else {
				cfg.ReloadInterval = 10 * time.Millisecond
			}
			var logs syncBuffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			creds, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			opt := creds.DialOption()
			if err := watchOnce(t, addr, opt); err != nil {
				t.Fatal(err)
			}

			hup := make(chan os.Signal, 1)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); creds.Run(ctx, hup) }()
			t.Cleanup(func() { cancel(); <-done })

			c2, k2, second := ca.issue(t, "lb", "lb-0")
			writeFiles(t, dir, ca.pem, c2, k2)
			if trigger == "SIGHUP" {
				hup <- nil
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(logs.String(), "serial="+second) {
				if time.Now().After(deadline) {
					t.Fatalf("no reload logged; logs:\n%s", logs.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			want := map[string]string{"SIGHUP": "trigger=SIGHUP", "file change": `trigger="file change"`}[trigger]
			if !strings.Contains(logs.String(), want) {
				t.Errorf("reload not attributed to %s; logs:\n%s", trigger, logs.String())
			}
			if err := watchOnce(t, addr, opt); err != nil {
				t.Fatal(err)
			}
			if got := f.seen(); len(got) != 2 || got[0] != first || got[1] != second {
				t.Fatalf("the coordinator saw serials %v, want [%s %s]", got, first, second)
			}
		})
	}
}

// TestReloadKeepsTheOldOnError: a broken file is reported and the
// previous certificate stays in use.
func TestReloadKeepsTheOldOnError(t *testing.T) {
	ca := newCA(t)
	c, k, first := ca.issue(t, "lb", "lb-0")
	dir := t.TempDir()
	fs := writeFiles(t, dir, ca.pem, c, k)
	creds, err := New(lbConfig(fs))
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, fs.cert, []byte("not a certificate"))
	err = creds.Reload()
	if err == nil || !strings.Contains(err.Error(), "cert ("+fs.cert+")") {
		t.Fatalf("got %v, want an error naming --cert and its file", err)
	}
	if got := creds.Source().Certificate().Leaf.SerialNumber.String(); got != first {
		t.Fatalf("serial %s after a failed reload, want %s", got, first)
	}
}

// TestInsecureWarns: plaintext is announced at start and every minute.
func TestInsecureWarns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Insecure = true
		var logs syncBuffer
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		creds, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !creds.Insecure() {
			t.Fatal("not insecure")
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go creds.Run(ctx, nil)
		count := func() int { return strings.Count(logs.String(), "PLAINTEXT (--insecure)") }
		synctest.Wait()
		if n := count(); n != 1 {
			t.Fatalf("%d warnings at start, want 1", n)
		}
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		if n := count(); n != 1 {
			t.Fatalf("%d warnings before a minute passed, want 1", n)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if n := count(); n != 3 {
			t.Fatalf("%d warnings after three minutes, want 3", n)
		}
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

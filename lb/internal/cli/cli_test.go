package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/bench/benchbackend"
)

func TestServeFlagErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no backends", []string{"serve"}, "set exactly one of --coordinator or --backends"},
		{"both sources", []string{"serve", "--backends", "a:1", "--coordinator", "c:1"}, "set exactly one"},
		{"bad policy", []string{"serve", "--backends", "a:1", "--policy", "random"}, `policy "random"`},
		{"half tls", []string{"serve", "--backends", "a:1", "--tls-cert", "x.pem"}, "tls-cert and tls-key"},
		{"two health modes", []string{"serve", "--backends", "a:1", "--health-path", "/h", "--health-grpc"}, "choose one"},
		{"bad backend", []string{"serve", "--backends", "nohostport", "--listen", "127.0.0.1:0"}, `backends: "nohostport"`},
		{"feed without fleet", []string{"serve", "--coordinator", "c:1", "--insecure", "--listen", "127.0.0.1:0"}, "fleet"},
		{"feed without tls", []string{"serve", "--coordinator", "c:1", "--fleet", "web", "--listen", "127.0.0.1:0"}, "ca-cert: required for the coordinator connection (or --insecure"},
		{"feed without key", []string{"serve", "--coordinator", "c:1", "--fleet", "web", "--ca-cert", "ca.pem", "--cert", "lb.pem"}, "key: required"},
		{"insecure and tls", []string{"serve", "--coordinator", "c:1", "--fleet", "web", "--insecure", "--ca-cert", "ca.pem"}, "insecure: plaintext cannot be combined with --ca-cert"},
		{"tls with static backends", []string{"serve", "--backends", "a:1", "--ca-cert", "ca.pem"}, "not with --backends"},
		{"missing cert file", []string{"serve", "--coordinator", "c:1", "--fleet", "web", "--listen", "127.0.0.1:0", "--ca-cert", "/nonexistent/ca.pem", "--cert", "lb.pem", "--key", "lb-key.pem"}, "ca-cert: open /nonexistent/ca.pem"},
		{"zero max conns", []string{"serve", "--backends", "a:1", "--listen", "127.0.0.1:0", "--max-conns", "0"}, "max-conns (0) must be >= 1"},
		{"loadtest without target", []string{"loadtest"}, "target: required"},
		{"loadtest bad profile", []string{"loadtest", "--target", "http://x:1/", "--profile", "ramp,zigzag"}, `unknown phase "zigzag"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tc.args, &bytes.Buffer{}, &stderr, noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadtestAgainstServe(t *testing.T) {
	b := benchbackend.New("be0")
	bl, _ := net.Listen("tcp", "127.0.0.1:0")
	go b.ServeHTTP(bl)
	t.Cleanup(b.Close)
	probe, _ := net.Listen("tcp", "127.0.0.1:0")
	lbAddr := probe.Addr().String()
	probe.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serveErr := make(chan error, 1)
	logs := newWatch("shoal-lb serving")
	go func() {
		serveErr <- run(ctx, []string{"serve", "--listen", lbAddr, "--backends", bl.Addr().String(), "--log-level", "info"}, &bytes.Buffer{}, logs, noEnv)
	}()
	// serve logs that line once its listener is open.
	select {
	case <-logs.seen:
	case err := <-serveErr:
		t.Fatalf("serve ended before listening: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not listen")
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"loadtest", "--target", "http://" + lbAddr + "/", "--rate", "200", "--duration", "1500ms", "--connections", "4"}, &out, &bytes.Buffer{}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.Contains(s, "instances be0=") || !strings.Contains(s, " errors=0 ") || !strings.Contains(s, "t=1s") {
		t.Fatalf("loadtest output:\n%s", s)
	}
	cancel()
	select {
	case err := <-serveErr:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func noEnv(string) string { return "" }

// TestInsecureFeedWarns: --insecure starts, and says plaintext out loud.
func TestInsecureFeedWarns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := newWatch("PLAINTEXT (--insecure)")
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--coordinator", "127.0.0.1:1", "--fleet", "web", "--insecure"}, &bytes.Buffer{}, logs, noEnv)
	}()
	select {
	case <-logs.seen:
	case err := <-serveErr:
		t.Fatalf("serve ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no plaintext warning")
	}
	cancel()
	select {
	case err := <-serveErr:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// watch is a log writer that closes seen once want was written.
type watch struct {
	want string
	seen chan struct{}
	mu   sync.Mutex
	buf  strings.Builder
}

func newWatch(want string) *watch { return &watch{want: want, seen: make(chan struct{})} }

func (w *watch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), w.want)
	w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
	}
	return len(p), nil
}

func TestMain_ExitCodeAndEnvironment(t *testing.T) {
	var stderr bytes.Buffer
	if code := Main(context.Background(), []string{"serve"}, &bytes.Buffer{}, &stderr, noEnv); code != 1 || !strings.Contains(stderr.String(), "shoal-lb: backends:") {
		t.Fatalf("code %d, stderr %q: want 1 and the error", code, stderr.String())
	}
	help := func(getenv func(string) string) string {
		var out bytes.Buffer
		if code := Main(context.Background(), []string{"serve", "--help"}, &out, &bytes.Buffer{}, getenv); code != 0 {
			t.Fatalf("serve --help exited %d", code)
		}
		return out.String()
	}
	if h := help(noEnv); !strings.Contains(h, "(default 400)") {
		t.Fatalf("without GOGC, --gc-percent should default to 400:\n%s", h)
	}
	gogc := func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}
	if h := help(gogc); strings.Contains(h, "(default 400)") {
		t.Fatalf("with GOGC set, --gc-percent must leave it alone:\n%s", h)
	}
}

package proxy

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/bench/benchbackend"
	"github.com/shoal-dev/shoal/lb/internal/balance"
)

type testBackend struct {
	*benchbackend.Backend
	httpAddr, grpcAddr string
	httpLn, grpcLn     net.Listener
}

func startBackends(t *testing.T, n int) []*testBackend {
	t.Helper()
	var out []*testBackend
	for i := range n {
		b := benchbackend.New("be" + string(rune('0'+i)))
		hl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		gl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go b.ServeHTTP(hl)
		go b.ServeGRPC(gl)
		t.Cleanup(b.Close)
		out = append(out, &testBackend{Backend: b, httpAddr: hl.Addr().String(), grpcAddr: gl.Addr().String(), httpLn: hl, grpcLn: gl})
	}
	return out
}

type testProxy struct {
	*Proxy
	addr string
}

// h1Engine runs the package's tests against another HTTP/1.1 engine than
// the default: go test ./lb/internal/proxy -args -h1engine=raw (make
// test-unit does).
var h1Engine = flag.String("h1engine", DefaultConfig().H1Engine, "HTTP/1.1 engine the test proxies use")

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startProxy serves a proxy over addrs, its configs the defaults changed
// by mut and bmut (when set).
func startProxy(t *testing.T, mut func(*Config), bmut func(*balance.Config), addrs ...string) *testProxy {
	t.Helper()
	return startProxyOn(t, nil, mut, bmut, addrs...)
}

// startProxyOn is startProxy serving ln (a new loopback listener when nil).
func startProxyOn(t *testing.T, ln net.Listener, mut func(*Config), bmut func(*balance.Config), addrs ...string) *testProxy {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Logger = quietLogger()
	cfg.H1Engine = *h1Engine
	if mut != nil {
		mut(&cfg)
	}
	bcfg := balance.DefaultConfig()
	bcfg.Fleet = "web"
	if bmut != nil {
		bmut(&bcfg)
	}
	p, err := New(cfg, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	var specs []balance.Spec
	for _, a := range addrs {
		specs = append(specs, balance.Spec{Addr: a, ID: a, State: balance.Active})
	}
	if err := p.Balancer().Update(1, specs); err != nil {
		t.Fatal(err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	go p.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return &testProxy{Proxy: p, addr: ln.Addr().String()}
}

func grpcAddrs(bs []*testBackend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.grpcAddr)
	}
	return out
}

func httpAddrs(bs []*testBackend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.httpAddr)
	}
	return out
}

// eventually re-checks cond on a ticker until it holds, failing after
// within. The conditions are about real sockets and goroutines (in-flight
// counts, connections closed), which synctest cannot drive.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", within, what)
		case <-tick.C:
		}
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error(), ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header.Get(benchbackend.InstanceHeader)
}

package health

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoal-dev/shoal/deploy/bench/benchbackend"
	"github.com/shoal-dev/shoal/lb/internal/balance"
)

func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func TestChecks(t *testing.T) {
	b := benchbackend.New("be0")
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	go b.ServeHTTP(hl)
	go b.ServeGRPC(gl)
	t.Cleanup(b.Close)
	dead := deadAddr(t)
	cases := []struct {
		name    string
		cfg     Config
		addr    string
		prepare func()
		wantErr string
	}{
		{"tcp up", Config{Mode: TCP}, hl.Addr().String(), nil, ""},
		{"tcp refused", Config{Mode: TCP}, dead, nil, "connect refused " + dead},
		{"http ok", Config{Mode: HTTP, Path: "/healthz"}, hl.Addr().String(), nil, ""},
		{"http 500", Config{Mode: HTTP, Path: "/status/500"}, hl.Addr().String(), nil, "GET /status/500 on " + hl.Addr().String() + ": status 500"},
		{"grpc serving", Config{Mode: GRPC}, gl.Addr().String(), func() { b.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING) }, ""},
		{"grpc not serving", Config{Mode: GRPC}, gl.Addr().String(), func() { b.Health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING) }, "NOT_SERVING"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare()
			}
			cfg := tc.cfg
			cfg.Interval, cfg.Timeout, cfg.Rise, cfg.Fall = time.Second, time.Second, 1, 1
			bal, err := balance.New(webConfig(), balance.Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			if err := bal.Update(1, []balance.Spec{{Addr: tc.addr}}); err != nil {
				t.Fatal(err)
			}
			c, err := New(cfg, bal)
			if err != nil {
				t.Fatal(err)
			}
			defer c.closeConns()
			c.CheckAll(context.Background())
			be := bal.Backends()[0]
			if tc.wantErr == "" {
				if !be.Healthy() {
					t.Fatalf("unhealthy: %s", be.HealthError())
				}
				return
			}
			if be.Healthy() || !strings.Contains(be.HealthError(), tc.wantErr) {
				t.Fatalf("healthy=%v err %q, want %q", be.Healthy(), be.HealthError(), tc.wantErr)
			}
			_, err = bal.Pick(nil)
			if !errors.Is(err, balance.ErrNoBackend) || !strings.Contains(err.Error(), "(last: ") {
				t.Fatalf("pick: %v", err)
			}
		})
	}
}

func TestRiseAndFall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	bal, _ := balance.New(webConfig(), balance.Hooks{})
	bal.Update(1, []balance.Spec{{Addr: addr}})
	hc := DefaultConfig()
	hc.Interval, hc.Timeout, hc.Rise, hc.Fall = time.Second, time.Second, 2, 2
	c, err := New(hc, bal)
	if err != nil {
		t.Fatal(err)
	}
	be := bal.Backends()[0]
	ctx := context.Background()
	ln.Close()
	c.CheckAll(ctx)
	if !be.Healthy() {
		t.Fatal("one failure with fall 2 marked unhealthy")
	}
	c.CheckAll(ctx)
	if be.Healthy() {
		t.Fatal("two failures with fall 2 left healthy")
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s reused by another process: %v", addr, err)
	}
	defer ln2.Close()
	c.CheckAll(ctx)
	if be.Healthy() {
		t.Fatal("one pass with rise 2 marked healthy")
	}
	c.CheckAll(ctx)
	if !be.Healthy() {
		t.Fatal("two passes with rise 2 left unhealthy")
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"default", DefaultConfig(), ""},
		{"bad mode", Config{Mode: "udp", Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1}, "health mode"},
		{"path without slash", Config{Mode: HTTP, Path: "x", Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1}, "health-path"},
		{"timeout above interval", Config{Mode: TCP, Interval: time.Second, Timeout: 2 * time.Second, Rise: 1, Fall: 1}, "health-timeout (2s) must be <= health-interval (1s)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func webConfig() balance.Config {
	c := balance.DefaultConfig()
	c.Fleet = "web"
	return c
}

package nemesis

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoal-dev/shoal/proto/rpc"
)

// arm makes this a failpoints build with env as the environment, for the
// rest of the test.
func arm(t *testing.T, on bool, env map[string]string) {
	t.Helper()
	wasEnabled, wasGetenv := enabled, getenv
	reset := func() { once, loaded, errEnv = sync.Once{}, settings{}, nil }
	enabled, getenv = on, func(k string) string { return env[k] }
	reset()
	t.Cleanup(func() { enabled, getenv = wasEnabled, wasGetenv; reset() })
}

func TestParseAddrMap(t *testing.T) {
	for _, tc := range []struct {
		name, in, wantErr string
		want              map[string]string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "two, spaced", in: "127.0.0.1:7001=127.0.0.1:9001 , 127.0.0.2:7001=127.0.0.1:9002,", want: map[string]string{"127.0.0.1:7001": "127.0.0.1:9001", "127.0.0.2:7001": "127.0.0.1:9002"}},
		{name: "no proxy", in: "127.0.0.1:7001", wantErr: "want real=proxy"},
		{name: "no port", in: "127.0.0.1=127.0.0.1:9001", wantErr: `"127.0.0.1" is not a host:port`},
		{name: "bad proxy", in: "127.0.0.1:7001=", wantErr: `"" is not a host:port`},
		{name: "twice", in: "a:1=b:1,a:1=c:1", wantErr: "a:1 is mapped twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAddrMap(DialMapEnv, tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), DialMapEnv) {
					t.Fatalf("err = %v, want one naming %s and containing %q", err, DialMapEnv, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestBuildWithoutFailpointsReadsNothing(t *testing.T) {
	arm(t, false, map[string]string{DialMapEnv: "not a map", RedirectMapEnv: "a:1=b:1", DiskFaultEnv: "/x"})
	if err := Check(); err != nil {
		t.Fatalf("a production build read %s: %v", DialMapEnv, err)
	}
	if DialAddr("a:1") != "a:1" || RedirectAddr("a:1") != "a:1" || GRPCDialOptions() != nil || Summary() != "" || DialMapped() {
		t.Fatal("a production build armed a nemesis hook")
	}
	if v := (fakeVFS{}); DiskVFS(v) != v {
		t.Fatal("a production build wrapped raft-wal's files")
	}
}

func TestMalformedEnvironmentIsRefused(t *testing.T) {
	arm(t, true, map[string]string{RedirectMapEnv: "a:1=b"})
	if err := Check(); err == nil || !strings.Contains(err.Error(), RedirectMapEnv) {
		t.Fatalf("Check() = %v, want an error naming %s", err, RedirectMapEnv)
	}
	if RedirectAddr("a:1") != "a:1" {
		t.Fatal("a malformed map was half applied")
	}
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestMappedGRPCDialGoesToTheProxy(t *testing.T) {
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(proxy) }()
	t.Cleanup(srv.Stop)
	target := freeAddr(t)
	check := func() error {
		cc, err := rpc.Dial(target, GRPCDialOptions()...)
		if err != nil {
			return err
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}

	arm(t, true, nil)
	if err := check(); err == nil {
		t.Fatal("a dial to an address nothing listens on succeeded without a map")
	}
	arm(t, true, map[string]string{DialMapEnv: target + "=" + proxy.Addr().String(), RedirectMapEnv: target + "=" + proxy.Addr().String()})
	if err := check(); err != nil {
		t.Fatalf("mapped dial of %s: %v, want it served by the proxy %s", target, err, proxy.Addr())
	}
	if got := RedirectAddr(target); got != proxy.Addr().String() {
		t.Fatalf("RedirectAddr(%s) = %s", target, got)
	}
	if RedirectAddr("") != "" || DialAddr("127.0.0.9:1") != "127.0.0.9:1" {
		t.Fatal("an address outside the map was rewritten")
	}
	if s := Summary(); !strings.Contains(s, DialMapEnv) || !strings.Contains(s, RedirectMapEnv) {
		t.Fatalf("Summary() = %q", s)
	}
}

func TestMappedRaftDialGoesToTheProxy(t *testing.T) {
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	own, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := freeAddr(t)
	arm(t, true, map[string]string{DialMapEnv: target + "=" + proxy.Addr().String()})
	layer := StreamLayer(TCPStreamLayer(own, own.Addr()))
	defer layer.Close()
	if layer.Addr() != own.Addr() {
		t.Fatalf("layer advertises %s, want %s", layer.Addr(), own.Addr())
	}

	accepted := make(chan string, 1)
	go func() {
		c, err := proxy.Accept()
		if err != nil {
			accepted <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		b := make([]byte, 4)
		n, _ := c.Read(b)
		accepted <- string(b[:n])
	}()
	c, err := layer.Dial(raft.ServerAddress(target), 5*time.Second)
	if err != nil {
		t.Fatalf("raft dial of %s: %v", target, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("raft")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-accepted:
		if got != "raft" {
			t.Fatalf("proxy got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy never saw raft's connection")
	}
}

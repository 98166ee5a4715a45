package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/benchbackend"
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
		{"feed without fleet", []string{"serve", "--coordinator", "c:1", "--listen", "127.0.0.1:0"}, "fleet"},
		{"loadtest without target", []string{"loadtest"}, "target: required"},
		{"loadtest bad profile", []string{"loadtest", "--target", "http://x:1/", "--profile", "ramp,zigzag"}, `unknown phase "zigzag"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tc.args, &bytes.Buffer{}, &stderr)
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
	go func() {
		serveErr <- run(ctx, []string{"serve", "--listen", lbAddr, "--backends", bl.Addr().String(), "--log-level", "error"}, &bytes.Buffer{}, &bytes.Buffer{})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", lbAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"loadtest", "--target", "http://" + lbAddr + "/", "--rate", "200", "--duration", "1500ms", "--connections", "4"}, &out, &bytes.Buffer{})
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

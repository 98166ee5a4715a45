package cli

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

func TestFlagValidation(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		errHas string
	}{
		{"metric without scrape", []string{"--metric", "q"}, "--metric needs --scrape"},
		{"two health checks", []string{"--health-http", "http://x", "--health-grpc", "x:1"}, "exclusive"},
		{"tiny interval", []string{"--interval", "1ms"}, "--interval (1ms)"},
		{"bad scope", []string{"--scope", "vm", "--instance-id", "i", "--fleet", "f", "--coordinator", "a:1", "--insecure"}, `scope "vm"`},
		{"instance without fleet", []string{"--instance-id", "i-1", "--coordinator", "a:1", "--insecure"}, "needs a fleet"},
		{"builtin alias", []string{"--scrape", "http://x", "--metric", "q=cpu", "--instance-id", "i", "--fleet", "f", "--coordinator", "a:1", "--insecure"}, "built-in"},
		{"positional args refused", []string{"extra"}, "unknown command"},
		{"instance id without credentials", []string{"--instance-id", "i-1", "--fleet", "f", "--coordinator", "a:1"}, "tls cert create --role agent --name i-1"},
		{"cert without key", []string{"--instance-id", "i-1", "--fleet", "f", "--coordinator", "a:1", "--cert", "c.pem"}, "--cert and --key go together"},
		{"cert without instance id", []string{"--cert", "c.pem", "--key", "k.pem"}, "development with --instance-id"},
		{"insecure and cert", []string{"--instance-id", "i-1", "--fleet", "f", "--coordinator", "a:1", "--cert", "c.pem", "--key", "k.pem", "--insecure"}, "exclusive"},
		{"cert of no file", []string{"--instance-id", "i-1", "--fleet", "f", "--coordinator", "a:1", "--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem", "--ca-cert", "/nonexistent/ca.pem"}, "ca-file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := NewRoot()
			root.SetArgs(tc.args)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := root.ExecuteContext(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want one containing %q", err, tc.errHas)
			}
		})
	}
}

type coord struct {
	shoalv1.UnimplementedAgentServiceServer
	hellos  chan *shoalv1.AgentHello
	batches chan *shoalv1.SampleBatch
}

func (c *coord) Connect(st grpc.BidiStreamingServer[shoalv1.ConnectRequest, shoalv1.ConnectResponse]) error {
	for {
		m, err := st.Recv()
		if err != nil {
			return nil
		}
		switch msg := m.GetMsg().(type) {
		case *shoalv1.ConnectRequest_Hello:
			c.hellos <- msg.Hello
			if err := st.Send(&shoalv1.ConnectResponse{Msg: &shoalv1.ConnectResponse_Welcome{Welcome: &shoalv1.Welcome{NodeId: "n1"}}}); err != nil {
				return err
			}
		case *shoalv1.ConnectRequest_Batch:
			select {
			case c.batches <- msg.Batch:
			default:
			}
		}
	}
}

// TestRunStreamsHostMetrics runs the whole agent, for both the root command
// and `run`, against a coordinator on loopback.
func TestRunStreamsHostMetrics(t *testing.T) {
	for _, sub := range [][]string{nil, {"run"}} {
		t.Run(strings.Join(append([]string{"root"}, sub...), " "), func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			c := &coord{hellos: make(chan *shoalv1.AgentHello, 4), batches: make(chan *shoalv1.SampleBatch, 64)}
			srv := rpc.NewServer()
			shoalv1.RegisterAgentServiceServer(srv, c)
			go func() { _ = srv.Serve(lis) }()
			defer srv.Stop()

			root := NewRoot()
			root.SetArgs(append(sub, "--instance-id", "i-cli", "--fleet", "web", "--coordinator", lis.Addr().String(),
				"--interval", "100ms", "--log-level", "error", "--insecure"))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- root.ExecuteContext(ctx) }()
			defer func() {
				cancel()
				select {
				case err := <-done:
					if err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("agent exited with %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Error("agent did not stop")
				}
			}()
			select {
			case h := <-c.hellos:
				if h.GetInstanceId() != "i-cli" || h.GetFleet() != "web" || h.GetInterval().AsDuration() != 100*time.Millisecond || h.GetStartTime() == nil {
					t.Fatalf("hello = %v", h)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no hello")
			}
			deadline := time.After(10 * time.Second)
			for {
				select {
				case b := <-c.batches:
					for _, s := range b.GetSamples() {
						v := s.GetValues()
						if _, ok := v["cpu"]; ok {
							for _, m := range []string{"mem", "load1", "net_rx", "net_tx", "disk"} {
								if _, ok := v[m]; !ok {
									t.Errorf("sample lacks %s: %v", m, v)
								}
							}
							return
						}
					}
				case <-deadline:
					t.Fatal("no sample with cpu within 10s")
				}
			}
		})
	}
}

func TestMainExitCodeAndStderr(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"--interval", "1ms"}, &stdout, &stderr, func(string) string { return "" })
	if code != 1 || !strings.Contains(stderr.String(), "shoal-agent: ") || !strings.Contains(stderr.String(), "--interval (1ms)") {
		t.Fatalf("exit %d, stderr %q; want 1 and the flag named", code, stderr.String())
	}
	if c, _, err := NewRoot().Find([]string{"loadgen"}); err == nil && c.Name() == "loadgen" {
		t.Fatal("the agent binary still has the loadgen benchmark tool; it lives in deploy/bench/cmd/shoal-loadgen")
	}
}

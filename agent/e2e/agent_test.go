//go:build multiprocess

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/deploy/testkit"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

const wait = 20 * time.Second

// imds is a minimal IMDSv2: token PUT, then GETs of meta-data paths.
func imds(t *testing.T, values map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/latest/api/token" && r.Method == http.MethodPut {
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			io.WriteString(w, "tok")
			return
		}
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != "tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		// meta-data paths by their name below meta-data/, the rest (the
		// identity document) by theirs below /latest/.
		key := strings.TrimPrefix(r.URL.Path, "/latest/")
		key = strings.TrimPrefix(key, "meta-data/")
		v, ok := values[key]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, v)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// coordinator is a fake coordinator node that records what agents send.
// It enrolls agents and serves mutual TLS, as a real one does.
type coordinator struct {
	shoalv1.UnimplementedAgentServiceServer
	trust    *fakeTrust
	hellos   chan *shoalv1.AgentHello
	batches  chan *shoalv1.SampleBatch
	results  chan *shoalv1.CommandResult
	goodbyes chan *shoalv1.AgentGoodbye

	mu   sync.Mutex
	cmds chan *shoalv1.AgentCommand // of the current stream
}

func newCoordinator(trust *fakeTrust) *coordinator {
	return &coordinator{trust: trust, hellos: make(chan *shoalv1.AgentHello, 16), batches: make(chan *shoalv1.SampleBatch, 1024),
		results: make(chan *shoalv1.CommandResult, 4), goodbyes: make(chan *shoalv1.AgentGoodbye, 4)}
}

func (c *coordinator) Enroll(ctx context.Context, req *shoalv1.EnrollRequest) (*shoalv1.EnrollResponse, error) {
	return c.trust.enroll(ctx, req)
}

func (c *coordinator) Connect(st grpc.BidiStreamingServer[shoalv1.ConnectRequest, shoalv1.ConnectResponse]) error {
	if err := requireAgent(st.Context(), ""); err != nil {
		return err
	}
	cmds := make(chan *shoalv1.AgentCommand, 4)
	c.mu.Lock()
	c.cmds = cmds
	c.mu.Unlock()
	go func() {
		for {
			select {
			case <-st.Context().Done():
				return
			case cmd := <-cmds:
				st.Send(&shoalv1.ConnectResponse{Msg: &shoalv1.ConnectResponse_Command{Command: cmd}})
			}
		}
	}()
	for {
		m, err := st.Recv()
		if err != nil {
			return nil
		}
		switch msg := m.GetMsg().(type) {
		case *shoalv1.ConnectRequest_Hello:
			if err := requireAgent(st.Context(), msg.Hello.GetInstanceId()); err != nil {
				return err
			}
			c.hellos <- msg.Hello
			st.Send(&shoalv1.ConnectResponse{Msg: &shoalv1.ConnectResponse_Welcome{Welcome: &shoalv1.Welcome{NodeId: "fake", Fleet: "web"}}})
		case *shoalv1.ConnectRequest_Batch:
			select {
			case c.batches <- msg.Batch:
			default:
			}
		case *shoalv1.ConnectRequest_CommandResult:
			c.results <- msg.CommandResult
		case *shoalv1.ConnectRequest_Goodbye:
			c.goodbyes <- msg.Goodbye
		}
	}
}

func (c *coordinator) command(cmd *shoalv1.AgentCommand) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds <- cmd
}

func serve(t *testing.T, addr string, c *coordinator) *grpc.Server {
	var lis net.Listener
	var err error
	deadline := time.Now().Add(wait)
	for {
		if lis, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(c.trust.serverOption(t))
	shoalv1.RegisterAgentServiceServer(srv, c)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return srv
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// agentMetric reads one sample of the agent's own /metrics.
func agentMetric(addr, name string) (float64, bool) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

func TestAgentEndToEnd(t *testing.T) {
	bin := testkit.Binary(t, "shoal-agent")
	coordAddr := testkit.FreeAddr(t)
	coord := newCoordinator(newFakeTrust(t))
	srv := serve(t, coordAddr, coord)
	doc, sig := identityDocument("i-e2e", "127.0.0.21")
	meta := imds(t, map[string]string{
		"instance-id": "i-e2e", "local-ipv4": "127.0.0.21", "placement/availability-zone": "local-1a", "ami-id": "ami-e2e",
		"tags/instance/aws:autoscaling:groupName": "web-asg",
		"tags/instance/shoal:coordinators":        coordAddr,
		"dynamic/instance-identity/document":      doc,
		"dynamic/instance-identity/signature":     sig,
	})
	httpAddr := testkit.FreeAddr(t)
	drained := filepath.Join(t.TempDir(), "drained")
	agent := testkit.Start(t, bin, []string{"--interval", "200ms", "--http-addr", httpAddr, "--log-level", "warn",
		"--ca-cert", coord.trust.pki.CACert, "--data-dir", t.TempDir(),
		"--on-drain", "echo drained > " + drained + " && echo bye"},
		testkit.Options{Env: []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + meta.URL}, Stderr: os.Stderr})

	// It enrolls first, from its private IP, then streams with the
	// certificate it was issued (Connect refuses anything else).
	if e := recv(t, coord.trust.enrolls, "enrollment"); e.instance != "i-e2e" || e.peerIP != "127.0.0.21" {
		t.Fatalf("enrollment %+v; want i-e2e from its private IP 127.0.0.21", e)
	}
	h := recv(t, coord.hellos, "hello")
	if h.GetInstanceId() != "i-e2e" || h.GetAsg() != "web-asg" || h.GetPrivateIp() != "127.0.0.21" || h.GetFleet() != "" || h.GetImageId() != "ami-e2e" {
		t.Fatalf("hello = %v; want the identity from IMDS and no invented fleet", h)
	}
	deadline := time.After(wait)
	for got := false; !got; {
		select {
		case b := <-coord.batches:
			for _, s := range b.GetSamples() {
				if _, ok := s.GetValues()["cpu"]; ok {
					got = true
				}
			}
		case <-deadline:
			t.Fatal("no sample with cpu")
		}
	}

	// Coordinator outage: the agent buffers, then sends the backlog.
	srv.Stop()
	down := time.Now()
	eventuallyMetric(t, httpAddr, "shoal_agent_buffered_samples", func(v float64) bool { return v >= 3 })
	for len(coord.batches) > 0 {
		<-coord.batches
	}
	serve(t, coordAddr, coord)
	recv(t, coord.hellos, "hello after the outage")
	var oldest int64 = 1 << 62
	for n := 0; n < 3; {
		b := recv(t, coord.batches, "backlog")
		for _, s := range b.GetSamples() {
			oldest = min(oldest, s.GetUnixMs())
			n++
		}
	}
	if time.UnixMilli(oldest).After(down.Add(time.Second)) {
		t.Errorf("oldest sample after reconnect is from %v; the outage began at %v, so the backlog was lost", time.UnixMilli(oldest), down)
	}

	coord.command(&shoalv1.AgentCommand{Id: "d1", Kind: shoalv1.CommandKind_COMMAND_KIND_DRAIN, Deadline: timestamppb.New(time.Now().Add(wait))})
	res := recv(t, coord.results, "drain result")
	if !res.GetOk() || res.GetId() != "d1" || !strings.Contains(res.GetOutput(), "bye") {
		t.Errorf("drain result = %v", res)
	}
	if b, err := os.ReadFile(drained); err != nil || strings.TrimSpace(string(b)) != "drained" {
		t.Errorf("the --on-drain hook did not run: %q, %v", b, err)
	}

	// SIGTERM: a goodbye, then a clean exit.
	if err := agent.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	recv(t, coord.goodbyes, "goodbye")
	select {
	case <-agent.Done():
		if err := agent.Err(); err != nil {
			t.Errorf("agent exited with %v", err)
		}
	case <-time.After(wait):
		t.Fatal("agent did not exit after SIGTERM")
	}
}

func TestAgentRefusesToInventIdentity(t *testing.T) {
	bin := testkit.Binary(t, "shoal-agent")
	// IMDS answers, but the instance has no group tag and no --fleet.
	meta := imds(t, map[string]string{"instance-id": "i-x", "local-ipv4": "127.0.0.22", "placement/availability-zone": "a", "ami-id": "ami"})
	out, err := testkit.Run(wait, bin, []string{"--coordinator", "127.0.0.1:1"}, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+meta.URL)
	if err == nil || !strings.Contains(out, "no fleet") || !strings.Contains(out, "aws:autoscaling:groupName") {
		t.Fatalf("agent without a fleet: err %v, output:\n%s", err, out)
	}
}

func eventuallyMetric(t *testing.T, addr, name string, ok func(float64) bool) {
	t.Helper()
	testkit.Eventually(t, wait, func() error {
		if v, found := agentMetric(addr, name); !found || !ok(v) {
			return fmt.Errorf("%s never satisfied the condition (last %v, found %v)", name, v, found)
		}
		return nil
	})
}

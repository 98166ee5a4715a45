package cli

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/proto/rpc"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/apierr"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// answering is a node that answers every GetStatus with err.
type answering struct {
	shoalv1.UnimplementedControlServiceServer
	err error
}

func (a answering) GetStatus(context.Context, *shoalv1.GetStatusRequest) (*shoalv1.GetStatusResponse, error) {
	return nil, a.err
}

// TestUnavailableLines: an UNAVAILABLE the node sent is shown as the node
// said it; only a connection that could not be made reads "cannot reach".
func TestUnavailableLines(t *testing.T) {
	serve := func(err error) string {
		lis, lerr := net.Listen("tcp", "127.0.0.1:0")
		if lerr != nil {
			t.Fatal(lerr)
		}
		srv := rpc.NewServer()
		shoalv1.RegisterControlServiceServer(srv, answering{err: err})
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		return lis.Addr().String()
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name, addr string
		want       string // the whole line, or its start when prefix is set
		prefix     bool
	}{
		{"no leader", serve(apierr.Error(codes.Unavailable, apierr.NoLeader, "no leader: none elected within 5s")), "no leader: none elected within 5s", false},
		{"the node's own unavailable", serve(status.Error(codes.Unavailable, "alarms: CloudWatch is throttling")), "alarms: CloudWatch is throttling", false},
		{"nothing listening", nobody, "cannot reach " + nobody + ": ", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, line := run(t, tc.addr, "status", "--timeout", "5s")
			if line != tc.want && !(tc.prefix && strings.HasPrefix(line, tc.want)) {
				t.Fatalf("error %q, want %q (prefix %v)", line, tc.want, tc.prefix)
			}
		})
	}
}

// statusOnly answers GetStatus with nodes; other calls are not made.
type statusOnly struct {
	shoalv1.ControlServiceClient
	nodes []*shoalv1.Node
}

func (s statusOnly) GetStatus(context.Context, *shoalv1.GetStatusRequest, ...grpc.CallOption) (*shoalv1.GetStatusResponse, error) {
	return &shoalv1.GetStatusResponse{Nodes: s.nodes}, nil
}

// TestBootstrapTagsAgentPorts: a bootstrapped fleet's agents are pointed at
// each node's agent port when it has one, else at its gRPC port.
func TestBootstrapTagsAgentPorts(t *testing.T) {
	a := controlAPI{c: statusOnly{nodes: []*shoalv1.Node{
		{Id: "n1", RpcAddr: "10.0.0.1:7400", AgentAddr: "10.0.0.1:7403"},
		{Id: "n2", RpcAddr: "10.0.0.2:7400"},
	}}}
	got, err := a.Coordinators(context.Background())
	if err != nil || strings.Join(got, ",") != "10.0.0.1:7403,10.0.0.2:7400" {
		t.Fatalf("Coordinators = %v, %v; want n1's agent port and n2's gRPC port", got, err)
	}
}

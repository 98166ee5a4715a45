//go:build multiprocess

package attacks

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// wantCode fails unless err is a gRPC status with code.
func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if got := grpcstatus.Code(err); got != code {
		t.Errorf("%s: got %v (%v), want %v", what, got, err, code)
	}
}

// rawCommand is an FSM command as the log holds it, written by hand: the
// attacker has only the wire.
func rawCommand(op string, body any) []byte {
	b, _ := json.Marshal(map[string]any{"v": 1, "op": op, "at_ms": time.Now().UnixMilli(), "body": body})
	return b
}

func TestAttacks(t *testing.T) {
	start := time.Now()
	c := startCluster(t)
	t.Logf("secure cluster up with agent A streaming in %v", time.Since(start).Round(time.Millisecond))
	before := c.snapshot(t)
	if len(before.Backends) != 1 || len(before.Instances) != 1 {
		t.Fatalf("baseline: %+v", before)
	}
	leader := c.leader(t)

	t.Run("unauthenticated CLI", func(t *testing.T) { c.unauthenticatedCLI(t, leader, before) })
	t.Run("stranger join", func(t *testing.T) { c.strangerJoin(t, leader, before) })
	t.Run("raw FSM command", func(t *testing.T) { c.rawFSMCommand(t, leader, before) })
	t.Run("raft AppendEntries from a non-member", func(t *testing.T) { c.raftNonMember(t, before) })
	t.Run("fake agent", func(t *testing.T) { c.fakeAgent(t, leader, before) })
	t.Run("agent impersonation", func(t *testing.T) { c.impersonation(t, leader, before) })
	t.Run("fake LB", func(t *testing.T) { c.fakeLB(t, leader, before) })
	t.Run("id flooding", func(t *testing.T) { c.idFlooding(t, leader, before) })
	t.Logf("all attacks in %v", time.Since(start).Round(time.Millisecond))
}

// unauthenticatedCLI runs scale, fleet delete, policy set and snapshot
// restore with what an attacker on the network has, through the CLI and
// straight over gRPC for the status code.
func (c *cluster) unauthenticatedCLI(t *testing.T, leader *node, before snapshot) {
	snap := filepath.Join(t.TempDir(), "state.snap")
	if out, err := c.cli(c.adminCreds(), "snapshot", "save", snap); err != nil {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	commands := [][]string{
		{"scale", fleet, "--desired", "4"},
		{"fleet", "delete", fleet},
		{"policy", "set", fleet, "--metric", "cpu", "--target", "90"},
		{"snapshot", "restore", snap},
	}
	grpcCalls := func(cc shoalv1.ControlServiceClient) map[string]error {
		ctx := callCtx(t)
		out := map[string]error{}
		_, out["ScaleFleet"] = cc.ScaleFleet(ctx, &shoalv1.ScaleFleetRequest{Fleet: fleet, Desired: 4})
		_, out["DeleteFleet"] = cc.DeleteFleet(ctx, &shoalv1.DeleteFleetRequest{Fleet: fleet})
		_, out["SetPolicy"] = cc.SetPolicy(ctx, &shoalv1.SetPolicyRequest{Fleet: fleet, Policy: &shoalv1.ScalingPolicy{
			TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 90}}}})
		st, err := cc.RestoreSnapshot(ctx)
		if err == nil {
			_ = st.Send(&shoalv1.RestoreSnapshotRequest{Chunk: data})
			_, err = st.CloseAndRecv()
		}
		out["RestoreSnapshot"] = err
		return out
	}
	cases := []struct {
		name   string
		creds  []string // CLI flags; nil: no CLI run
		tls    *tls.Config
		token  string
		code   codes.Code
		reason string // "" when nothing reaches the authorizer
		msg    string // in the CLI's one-line error
	}{
		{"no token", c.opCreds(""), c.tlsConfig(t, tlsconf.RoleOperator, operator), "", codes.Unauthenticated, "no_token", "SHOAL_TOKEN is not set"},
		{"no client certificate", []string{"--ca-cert", c.caFile(), "--token", c.admin}, c.tlsConfig(t, "", ""), c.admin, codes.Unauthenticated, "no_certificate", "without a client certificate"},
		// The CLI itself refuses a certificate its --ca-cert does not
		// trust, so only the gRPC call presents it.
		{"certificate of another CA", nil, c.rogueConfig(t, tlsconf.RoleOperator, operator), c.admin, codes.Unavailable, "", ""},
		{"plaintext", []string{"--token", c.admin}, nil, c.admin, codes.Unavailable, "", ""},
		{"read token", c.opCreds(c.read), c.tlsConfig(t, tlsconf.RoleOperator, operator), c.read, codes.PermissionDenied, "insufficient_policy", "has policy read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m0 := metrics(t, leader)
			for _, args := range commands {
				if tc.creds == nil {
					break
				}
				out, err := c.cli(tc.creds, args...)
				if err == nil {
					t.Errorf("HOLE: %v succeeded with %s:\n%s", args, tc.name, out)
					continue
				}
				if tc.msg != "" && !strings.Contains(out, tc.msg) {
					t.Errorf("%v: error %q does not say %q", args, strings.TrimSpace(out), tc.msg)
				}
			}
			for rpcName, err := range grpcCalls(shoalv1.NewControlServiceClient(conn(t, leader.rpc, tc.tls, tc.token))) {
				wantCode(t, rpcName, err, tc.code)
			}
			want := map[string]float64{}
			if tc.reason != "" {
				// Each command once from the CLI and once over gRPC.
				want[denied(tc.reason)] = float64(2 * len(commands))
			}
			counted(t, m0, metrics(t, leader), want)
		})
	}
	c.unchanged(t, before)
}

// strangerJoin asks the leader to add a voter, or to move a member's
// address, with certificates that may not.
func (c *cluster) strangerJoin(t *testing.T, leader *node, before snapshot) {
	evil, err := net.Listen("tcp", "127.0.0.1:0") // where the stranger wants raft traffic
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	join := func(cfg *tls.Config, md metadata.MD, nodeID string) error {
		ctx := callCtx(t)
		if md != nil {
			ctx = metadata.NewOutgoingContext(ctx, md)
		}
		_, err := clusterv1.NewClusterServiceClient(conn(t, leader.rpc, cfg, "")).JoinCluster(ctx,
			&clusterv1.JoinClusterRequest{NodeId: nodeID, RaftAddr: evil.Addr().String(), RpcAddr: evil.Addr().String()})
		return err
	}
	m0 := metrics(t, leader)
	wantCode(t, "operator certificate joins as n9", join(c.tlsConfig(t, tlsconf.RoleOperator, operator), nil, "n9"), codes.PermissionDenied)
	wantCode(t, "lb certificate joins as n9", join(c.tlsConfig(t, tlsconf.RoleLB, lbName), nil, "n9"), codes.PermissionDenied)
	wantCode(t, "agent certificate joins as n9", join(c.tlsConfig(t, tlsconf.RoleAgent, agentA), nil, "n9"), codes.PermissionDenied)
	wantCode(t, "no certificate joins as n9", join(c.tlsConfig(t, "", ""), nil, "n9"), codes.Unauthenticated)
	wantCode(t, "plaintext joins as n9", join(nil, nil, "n9"), codes.Unavailable)
	wantCode(t, "a rogue CA's server n1 certificate replaces n2", join(c.rogueConfig(t, tlsconf.RoleServer, "n1"), nil, "n2"), codes.Unavailable)
	counted(t, m0, metrics(t, leader), map[string]float64{denied("wrong_role"): 3, denied("no_certificate"): 1})

	// A real server certificate for a node that is not a member may join
	// only as itself: never as a new id, and never over a member's entry,
	// not even when it claims to pass on a member's join.
	server4 := c.tlsConfig(t, tlsconf.RoleServer, stranger)
	other := "n2"
	if leader.id == other {
		other = "n3"
	}
	wantCode(t, "server n4 joins as n9", join(server4, nil, "n9"), codes.PermissionDenied)
	wantCode(t, "server n4 replaces "+other, join(server4, nil, other), codes.PermissionDenied)
	wantCode(t, "server n4 replaces "+other+" as a forwarded join", join(server4, metadata.Pairs("x-shoal-forwarded", "1"), other), codes.PermissionDenied)
	wantCode(t, "server n4 replaces "+other+" as a forwarded join stamped for "+other,
		join(server4, metadata.Pairs("x-shoal-forwarded", "1", "x-shoal-caller", "spiffe://shoal/server/"+other), other), codes.PermissionDenied)
	c.unchanged(t, before)
}

// rawFSMCommand sends the log's own JSON through ApplyCommand: the
// attacker's forged policy, fleet deletion and member address.
func (c *cluster) rawFSMCommand(t *testing.T, leader *node, before snapshot) {
	cmds := map[string][]byte{
		"delete_fleet": rawCommand("delete_fleet", map[string]any{"name": fleet}),
		"set_policy":   rawCommand("set_policy", map[string]any{"fleet": fleet, "policy": map[string]any{"target_tracking": []any{map[string]any{"metric": "cpu", "target": -50}}}}),
		"set_member":   rawCommand("set_member", map[string]any{"id": "n2", "raft_addr": "127.0.0.1:1", "rpc_addr": "127.0.0.1:1"}),
	}
	m0 := metrics(t, leader)
	for _, caller := range []struct {
		name  string
		cfg   *tls.Config
		token string
		code  codes.Code
	}{
		{"operator certificate with the admin token", c.tlsConfig(t, tlsconf.RoleOperator, operator), c.admin, codes.PermissionDenied},
		{"lb certificate", c.tlsConfig(t, tlsconf.RoleLB, lbName), "", codes.PermissionDenied},
		{"agent certificate", c.tlsConfig(t, tlsconf.RoleAgent, agentA), "", codes.PermissionDenied},
		{"no certificate", c.tlsConfig(t, "", ""), c.admin, codes.Unauthenticated},
		{"plaintext", nil, c.admin, codes.Unavailable},
	} {
		cl := clusterv1.NewClusterServiceClient(conn(t, leader.rpc, caller.cfg, caller.token))
		for op, cmd := range cmds {
			_, err := cl.ApplyCommand(callCtx(t), &clusterv1.ApplyCommandRequest{Command: cmd})
			wantCode(t, caller.name+" applies "+op, err, caller.code)
		}
	}
	counted(t, m0, metrics(t, leader), map[string]float64{denied("wrong_role"): 9, denied("no_certificate"): 3})
	c.unchanged(t, before)
}

// raftNonMember speaks raft's own protocol to every node's raft port: an
// AppendEntries with a higher term that would commit delete_fleet, from
// hashicorp/raft's plain TCP transport and from TLS with certificates that
// are not servers'.
func (c *cluster) raftNonMember(t *testing.T, before snapshot) {
	var st status
	if err := c.cliJSON(&st, c.adminCreds(), "status"); err != nil {
		t.Fatal(err)
	}
	req := func(from raft.ServerAddress) *raft.AppendEntriesRequest {
		return &raft.AppendEntriesRequest{
			RPCHeader:         raft.RPCHeader{ID: []byte("evil"), Addr: []byte(from)},
			Term:              st.Term + 1,
			PrevLogEntry:      st.CommitIndex,
			PrevLogTerm:       st.Term,
			Entries:           []*raft.Log{{Index: st.CommitIndex + 1, Term: st.Term + 1, Type: raft.LogCommand, Data: rawCommand("delete_fleet", map[string]any{"name": fleet})}},
			LeaderCommitIndex: st.CommitIndex + 1,
		}
	}
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 3*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	transports := map[string]raft.Transport{"plain TCP": plain}
	for name, cfg := range map[string]*tls.Config{
		"TLS with an operator certificate": c.tlsConfig(t, tlsconf.RoleOperator, operator),
		"TLS with an lb certificate":       c.tlsConfig(t, tlsconf.RoleLB, lbName),
		"TLS with an agent certificate":    c.tlsConfig(t, tlsconf.RoleAgent, agentA),
		"TLS without a certificate":        c.tlsConfig(t, "", ""),
		"TLS with a rogue CA's server n1":  c.rogueConfig(t, tlsconf.RoleServer, "n1"),
	} {
		tr := raft.NewNetworkTransport(newTLSLayer(t, cfg), 1, 3*time.Second, io.Discard)
		defer tr.Close()
		transports[name] = tr
	}
	for name, tr := range transports {
		for _, n := range c.nodes {
			var resp raft.AppendEntriesResponse
			err := tr.AppendEntries(raft.ServerID(n.id), raft.ServerAddress(n.raft), req(tr.LocalAddr()), &resp)
			if err == nil {
				t.Errorf("HOLE: %s: %s answered AppendEntries: %+v", name, n.id, resp)
			}
		}
	}
	var after status
	if err := c.cliJSON(&after, c.adminCreds(), "status"); err != nil {
		t.Fatal(err)
	}
	if after.Term != st.Term {
		t.Errorf("term moved from %d to %d: a stranger's term reached raft", st.Term, after.Term)
	}
	c.unchanged(t, before)
}

// tlsLayer is a raft StreamLayer that dials over TLS with a given config.
type tlsLayer struct {
	net.Listener
	cfg *tls.Config
}

func newTLSLayer(t *testing.T, cfg *tls.Config) *tlsLayer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &tlsLayer{Listener: ln, cfg: cfg}
}

func (l *tlsLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), l.cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// connect opens an agent stream over cfg and sends hello; it returns the
// stream's first answer's error (nil when the coordinator welcomed it).
func connect(t *testing.T, addr string, cfg *tls.Config, hello *shoalv1.AgentHello) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := shoalv1.NewAgentServiceClient(conn(t, addr, cfg, "")).Connect(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Hello{Hello: hello}}); err != nil && err != io.EOF {
		return err
	}
	_, err = st.Recv()
	return err
}

func helloFor(id string) *shoalv1.AgentHello {
	return &shoalv1.AgentHello{InstanceId: id, Fleet: fleet, PrivateIp: "127.0.0.66", StartTime: timestamppb.Now()}
}

// fakeAgent streams for an invented instance with what an attacker can
// hold: a certificate of its own CA, none, or another role's.
func (c *cluster) fakeAgent(t *testing.T, leader *node, before snapshot) {
	m0 := metrics(t, leader)
	wantCode(t, "rogue CA's agent certificate for "+invented, connect(t, leader.rpc, c.rogueConfig(t, tlsconf.RoleAgent, invented), helloFor(invented)), codes.Unavailable)
	wantCode(t, "no certificate", connect(t, leader.rpc, c.tlsConfig(t, "", ""), helloFor(invented)), codes.Unauthenticated)
	wantCode(t, "operator certificate", connect(t, leader.rpc, c.tlsConfig(t, tlsconf.RoleOperator, operator), helloFor(invented)), codes.PermissionDenied)
	wantCode(t, "lb certificate", connect(t, leader.rpc, c.tlsConfig(t, tlsconf.RoleLB, lbName), helloFor(invented)), codes.PermissionDenied)
	wantCode(t, "plaintext", connect(t, leader.rpc, nil, helloFor(invented)), codes.Unavailable)
	// Enrollment is off on these --cloud none nodes: nobody gets a
	// certificate from a document here (TestForgedEnrollment forges one
	// against a node that enrolls).
	_, err := shoalv1.NewAgentServiceClient(conn(t, leader.rpc, c.tlsConfig(t, "", ""), "")).Enroll(callCtx(t),
		&shoalv1.EnrollRequest{IdentityDocument: []byte(`{"instanceId":"` + invented + `"}`), IdentitySignature: []byte("AAAA"), Nonce: make([]byte, 32)})
	wantCode(t, "enroll on a node without enrollment", err, codes.FailedPrecondition)
	counted(t, m0, metrics(t, leader), map[string]float64{denied("no_certificate"): 1, denied("wrong_role"): 2})
	c.unchanged(t, before)
}

// impersonation: a valid agent certificate speaks for another instance,
// including the one that streams; and the streaming id's owner is not
// told anything about the live agent.
func (c *cluster) impersonation(t *testing.T, leader *node, before snapshot) {
	m0 := metrics(t, leader)
	wantCode(t, "A's certificate says hello for B", connect(t, leader.rpc, c.tlsConfig(t, tlsconf.RoleAgent, agentA), helloFor(agentB)), codes.PermissionDenied)
	wantCode(t, "B's certificate takes over A's stream", connect(t, leader.rpc, c.tlsConfig(t, tlsconf.RoleAgent, agentB), helloFor(agentA)), codes.PermissionDenied)
	wantCode(t, "B's certificate says hello for "+invented, connect(t, leader.rpc, c.tlsConfig(t, tlsconf.RoleAgent, agentB), helloFor(invented)), codes.PermissionDenied)
	// A second stream under A's own certificate from another process (other
	// start time and address) is refused without naming the live one's.
	err := connect(t, leader.rpc, c.tlsConfig(t, tlsconf.RoleAgent, agentA), helloFor(agentA))
	wantCode(t, "a second agent with A's certificate", err, codes.AlreadyExists)
	if msg := grpcstatus.Convert(err).Message(); strings.Contains(msg, agentAIP) || strings.Contains(msg, "start") {
		t.Errorf("ALREADY_EXISTS leaks the live agent: %q", msg)
	}
	counted(t, m0, metrics(t, leader), map[string]float64{ingestRefused("wrong_identity"): 3, ingestRefused("duplicate_instance"): 1})
	c.unchanged(t, before)
}

// fakeLB asks for the live backend set without an LB certificate.
func (c *cluster) fakeLB(t *testing.T, leader *node, before snapshot) {
	watch := func(cfg *tls.Config, token string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := shoalv1.NewBackendServiceClient(conn(t, leader.rpc, cfg, token)).WatchBackends(ctx)
		if err != nil {
			return err
		}
		_ = st.Send(&shoalv1.WatchBackendsRequest{Msg: &shoalv1.WatchBackendsRequest_Hello{Hello: &shoalv1.LBHello{LbId: lbName, Fleet: fleet}}})
		resp, err := st.Recv()
		if err == nil {
			t.Errorf("HOLE: the fake LB received the backend set %v", resp.GetBackends())
		}
		return err
	}
	m0 := metrics(t, leader)
	wantCode(t, "operator certificate with the admin token", watch(c.tlsConfig(t, tlsconf.RoleOperator, operator), c.admin), codes.PermissionDenied)
	wantCode(t, "agent certificate", watch(c.tlsConfig(t, tlsconf.RoleAgent, agentA), ""), codes.PermissionDenied)
	wantCode(t, "no certificate", watch(c.tlsConfig(t, "", ""), ""), codes.Unauthenticated)
	wantCode(t, "a rogue CA's lb certificate", watch(c.rogueConfig(t, tlsconf.RoleLB, lbName), ""), codes.Unavailable)
	wantCode(t, "plaintext", watch(nil, ""), codes.Unavailable)
	counted(t, m0, metrics(t, leader), map[string]float64{denied("wrong_role"): 2, denied("no_certificate"): 1})
	c.unchanged(t, before)
}

// idFlooding: one agent certificate cannot bring in other ids, nor a huge
// id or a bogus address; and a server's forwarding stream, the one door
// that may introduce ids, is capped.
func (c *cluster) idFlooding(t *testing.T, leader *node, before snapshot) {
	m0 := metrics(t, leader)
	a := c.tlsConfig(t, tlsconf.RoleAgent, agentA)
	const n = 50
	for i := range n {
		id := "i-0ff" + strings.Repeat("0", 12) + string("0123456789abcdef"[i%16]) + string("0123456789abcdef"[i/16])
		wantCode(t, "A's certificate introduces "+id, connect(t, leader.rpc, a, helloFor(id)), codes.PermissionDenied)
	}
	huge := helloFor("i-" + strings.Repeat("a", 1<<20))
	wantCode(t, "1 MB instance id", connect(t, leader.rpc, a, huge), codes.InvalidArgument)
	bad := helloFor(agentA)
	bad.PrivateIp = "not an ip; <script>"
	wantCode(t, "private_ip "+bad.PrivateIp, connect(t, leader.rpc, a, bad), codes.InvalidArgument)
	counted(t, m0, metrics(t, leader), map[string]float64{ingestRefused("wrong_identity"): n, ingestRefused("bad_identity"): 2})
	c.unchanged(t, before)

	// A server's forwarding stream may introduce ids (a follower passes on
	// its agents), but no more than --max-new-instances-per-stream. This
	// part adds ids on purpose, so it runs last.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := clusterv1.NewClusterServiceClient(conn(t, leader.rpc, c.tlsConfig(t, tlsconf.RoleServer, stranger), "")).ForwardAgents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&clusterv1.ForwardAgentsRequest{Msg: &clusterv1.ForwardAgentsRequest_Hello{Hello: &clusterv1.FollowerHello{NodeId: stranger}}}); err != nil {
		t.Fatal(err)
	}
	const flood = 3 * maxNewPerStream
	for i := range flood {
		id := fmt.Sprintf("i-0ee%014x", i)
		h := &shoalv1.AgentHello{InstanceId: id, Fleet: fleet, PrivateIp: fmt.Sprintf("127.0.1.%d", i+1), StartTime: timestamppb.Now()}
		if err := st.Send(&clusterv1.ForwardAgentsRequest{Msg: &clusterv1.ForwardAgentsRequest_Report{Report: &clusterv1.InstanceReport{Hello: h, Ready: true}}}); err != nil {
			t.Fatal(err)
		}
	}
	rejected := 0
	for rejected < flood-maxNewPerStream {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("after %d of %d rejections: %v", rejected, flood-maxNewPerStream, err)
		}
		if m.GetRejected() != nil {
			rejected++
		}
	}
	m1 := metrics(t, leader)
	if got := m1[ingestRefused("too_many_new_instances")] - m0[ingestRefused("too_many_new_instances")]; got != flood-maxNewPerStream {
		t.Errorf("too_many_new_instances grew by %v, want %d", got, flood-maxNewPerStream)
	}
	ins, err := c.instances()
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) > 1+maxNewPerStream {
		t.Errorf("registry holds %d instances after a flood of %d; want at most %d", len(ins), flood, 1+maxNewPerStream)
	}
}

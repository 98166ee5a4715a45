//go:build multiprocess

package attacks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/deploy/testkit"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// The identities the test issues. agentA streams for real; agentB holds a
// valid certificate but never streams; stranger is a server certificate
// for a node that is not a member.
const (
	fleet     = "web"
	agentA    = "i-0aaaaaaaaaaaaaaaa"
	agentB    = "i-0bbbbbbbbbbbbbbbb"
	invented  = "i-0ddddddddddddddd0"
	agentAIP  = "127.0.0.21"
	operator  = "ops"
	lbName    = "lb1"
	stranger  = "n4"
	cliWithin = 20 * time.Second
)

// cluster is three secure coordinators and the files that secure them.
type cluster struct {
	bin   string
	pki   string // the cluster's CA, its key and every certificate
	rogue string // a CA of the attacker's own, with its certificates
	nodes []*node
	admin string // the bootstrap (admin) token's secret
	read  string // a read token's secret
}

type node struct {
	id, raft, rpc, http, data string
}

// startCluster makes the CA and certificates with the CLI, starts n1..n3
// with mutual TLS (--cloud none), bootstraps ACLs, creates the fleet with a
// policy, and starts agent A streaming until the test ends.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{bin: testkit.Binary(t, "shoal-coordinator"), pki: t.TempDir(), rogue: t.TempDir()}
	c.issueAll(t)
	for i := 1; i <= 3; i++ {
		c.nodes = append(c.nodes, &node{id: "n" + strconv.Itoa(i), raft: testkit.FreeAddr(t), rpc: testkit.FreeAddr(t),
			http: testkit.FreeAddr(t), data: t.TempDir()})
	}
	logs := t.TempDir()
	for i, n := range c.nodes {
		cert, key := c.cert(tlsconf.RoleServer, n.id)
		args := []string{"serve", "--node-id", n.id, "--data-dir", n.data,
			"--raft-addr", n.raft, "--rpc-addr", n.rpc, "--http-addr", n.http,
			"--ca-cert", c.caFile(), "--cert", cert, "--key", key, "--ca-key", filepath.Join(c.pki, "shoal-ca-key.pem"),
			"--cloud", "none", "--log-level", "debug",
			"--raft-heartbeat-timeout", "400ms", "--raft-election-timeout", "400ms", "--raft-leader-lease-timeout", "200ms",
			"--max-new-instances-per-stream", strconv.Itoa(maxNewPerStream),
		}
		if i == 0 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", c.nodes[0].rpc)
		}
		testkit.Start(t, c.bin, args, testkit.Options{Name: "coordinator-" + n.id, LogDir: logs})
		testkit.WaitHTTP(t, "http://"+n.http+"/healthz", 20*time.Second)
	}
	// Before ACL bootstrap, an operator certificate may read the status.
	testkit.Eventually(t, 30*time.Second, func() error {
		var st status
		if err := c.cliJSON(&st, c.opCreds(""), "status"); err != nil {
			return err
		}
		if st.LeaderID == "" || len(st.Nodes) != 3 {
			return fmt.Errorf("leader %q, %d of 3 members", st.LeaderID, len(st.Nodes))
		}
		return nil
	})
	var tok struct{ Secret string }
	if err := c.cliJSON(&tok, c.opCreds(""), "acl", "bootstrap"); err != nil {
		t.Fatal(err)
	}
	c.admin = tok.Secret
	if err := c.cliJSON(&tok, c.adminCreds(), "acl", "token", "create", "--name", "viewer", "--policy", "read"); err != nil {
		t.Fatal(err)
	}
	c.read = tok.Secret
	for _, args := range [][]string{
		{"fleet", "create", fleet, "--asg", "shoal-web", "--min", "1", "--max", "5", "--app-port", "8080"},
		{"policy", "set", fleet, "--metric", "cpu", "--target", "50"},
	} {
		if out, err := c.cli(c.adminCreds(), args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	c.runAgentA(t)
	testkit.Eventually(t, 20*time.Second, func() error {
		ins, err := c.instances()
		if err != nil {
			return err
		}
		if len(ins) != 1 || ins[0].ID != agentA || ins[0].State != "in_service" {
			return fmt.Errorf("registry %+v; want %s in_service", ins, agentA)
		}
		b, err := c.backends(t)
		if err != nil {
			return err
		}
		if len(b) != 1 {
			return fmt.Errorf("backends %v; want %s's", b, agentA)
		}
		return nil
	})
	return c
}

// maxNewPerStream is --max-new-instances-per-stream.
const maxNewPerStream = 20

// issueAll makes both CAs and every certificate with the real CLI.
func (c *cluster) issueAll(t *testing.T) {
	t.Helper()
	for _, dir := range []string{c.pki, c.rogue} {
		if out, err := testkit.Run(cliWithin, c.bin, []string{"tls", "ca", "create", "--out", dir}); err != nil {
			t.Fatalf("tls ca create: %v\n%s", err, out)
		}
	}
	type req struct {
		dir, role, name string
	}
	reqs := []req{
		{c.pki, "server", "n1"}, {c.pki, "server", "n2"}, {c.pki, "server", "n3"}, {c.pki, "server", stranger},
		{c.pki, "operator", operator}, {c.pki, "lb", lbName}, {c.pki, "agent", agentA}, {c.pki, "agent", agentB},
		{c.rogue, "agent", invented}, {c.rogue, "operator", operator}, {c.rogue, "server", "n1"}, {c.rogue, "lb", lbName},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(reqs))
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"tls", "cert", "create", "--role", r.role, "--name", r.name, "--out", r.dir,
				"--ca", filepath.Join(r.dir, "shoal-ca.pem"), "--ca-key", filepath.Join(r.dir, "shoal-ca-key.pem")}
			if r.role == "server" {
				args = append(args, "--ip", "127.0.0.1")
			}
			if out, err := testkit.Run(cliWithin, c.bin, args); err != nil {
				errs[i] = fmt.Errorf("tls cert create %s/%s: %v\n%s", r.role, r.name, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) caFile() string { return filepath.Join(c.pki, "shoal-ca.pem") }

// cert names the certificate and key `tls cert create` wrote for role/name.
func (c *cluster) cert(role tlsconf.Role, name string) (cert, key string) {
	base := filepath.Join(c.pki, fmt.Sprintf("shoal-%s-%s", role, name))
	return base + ".pem", base + "-key.pem"
}

// opCreds are the CLI flags of the operator certificate with token.
func (c *cluster) opCreds(token string) []string {
	cert, key := c.cert(tlsconf.RoleOperator, operator)
	out := []string{"--ca-cert", c.caFile(), "--client-cert", cert, "--client-key", key}
	if token != "" {
		out = append(out, "--token", token)
	}
	return out
}

func (c *cluster) adminCreds() []string { return c.opCreds(c.admin) }

// cli runs the CLI against the leader (n1 before one is known) with
// exactly the credentials given: the test's environment cannot add any.
func (c *cluster) cli(creds []string, args ...string) (string, error) {
	addr := c.nodes[0].rpc
	if l, err := c.leaderNode(); err == nil {
		addr = l.rpc
	}
	full := append(append([]string{"--address", addr, "--timeout", "10s"}, creds...), args...)
	return testkit.Run(cliWithin, c.bin, full, "SHOAL_CACERT=", "SHOAL_CLIENT_CERT=", "SHOAL_CLIENT_KEY=", "SHOAL_TOKEN=", "SHOAL_ADDR=")
}

func (c *cluster) cliJSON(v any, creds []string, args ...string) error {
	out, err := c.cli(creds, append(args, "-o", "json")...)
	if err != nil {
		return fmt.Errorf("%v: %w: %s", args, err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("%v: %w: %s", args, err, out)
	}
	return nil
}

// status is `status -o json`.
type status struct {
	LeaderID    string `json:"leader_id"`
	Nodes       []peer `json:"nodes"`
	Term        uint64 `json:"term"`
	CommitIndex uint64 `json:"commit_index"`
}

type peer struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	RPCAddr  string `json:"rpc_addr"`
	Voter    bool   `json:"voter"`
}

type instance struct {
	ID        string `json:"id"`
	Fleet     string `json:"fleet"`
	State     string `json:"state"`
	PrivateIP string `json:"private_ip"`
}

// leaderNode asks n1..n3 in turn (stale, so a node answers for itself)
// which node leads.
func (c *cluster) leaderNode() (*node, error) {
	for _, n := range c.nodes {
		out, err := testkit.Run(cliWithin, c.bin, append(append([]string{"--address", n.rpc, "--timeout", "5s"}, c.opCreds(c.admin)...), "status", "--stale", "-o", "json"),
			"SHOAL_CACERT=", "SHOAL_CLIENT_CERT=", "SHOAL_CLIENT_KEY=", "SHOAL_TOKEN=")
		if err != nil {
			continue
		}
		var st status
		if json.Unmarshal([]byte(out), &st) != nil {
			continue
		}
		for _, m := range c.nodes {
			if m.id == st.LeaderID {
				return m, nil
			}
		}
	}
	return nil, errors.New("no node names a leader")
}

func (c *cluster) leader(t *testing.T) *node {
	t.Helper()
	l, err := c.leaderNode()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (c *cluster) instances() ([]instance, error) {
	var ins []instance
	err := c.cliJSON(&ins, c.adminCreds(), "instances")
	sort.Slice(ins, func(i, j int) bool { return ins[i].ID < ins[j].ID })
	return ins, err
}

// snapshot is what no attack may change: the replicated state as the CLI
// shows it with an admin token, and the LB's backend set.
type snapshot struct {
	Fleets    json.RawMessage
	Policy    json.RawMessage
	Instances []instance
	Peers     []peer
	Tokens    []string
	Leader    string
	Backends  []string
}

func (c *cluster) snapshot(t *testing.T) snapshot {
	t.Helper()
	var s snapshot
	var fleets, policy json.RawMessage
	if err := c.cliJSON(&fleets, c.adminCreds(), "fleet", "list"); err != nil {
		t.Fatal(err)
	}
	if err := c.cliJSON(&policy, c.adminCreds(), "policy", "get", fleet); err != nil {
		t.Fatal(err)
	}
	s.Fleets, s.Policy = compact(t, fleets), compact(t, policy)
	var err error
	if s.Instances, err = c.instances(); err != nil {
		t.Fatal(err)
	}
	if err := c.cliJSON(&s.Peers, c.adminCreds(), "raft", "list-peers"); err != nil {
		t.Fatal(err)
	}
	sort.Slice(s.Peers, func(i, j int) bool { return s.Peers[i].ID < s.Peers[j].ID })
	var toks []struct{ Name, Policy string }
	if err := c.cliJSON(&toks, c.adminCreds(), "acl", "token", "list"); err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		s.Tokens = append(s.Tokens, tk.Name+"/"+tk.Policy)
	}
	sort.Strings(s.Tokens)
	s.Leader = c.leader(t).id
	if s.Backends, err = c.backends(t); err != nil {
		t.Fatal(err)
	}
	return s
}

func compact(t *testing.T, b []byte) json.RawMessage {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// unchanged fails the test when the state differs from before.
func (c *cluster) unchanged(t *testing.T, before snapshot) {
	t.Helper()
	after := c.snapshot(t)
	b, _ := json.MarshalIndent(before, "", "  ")
	a, _ := json.MarshalIndent(after, "", "  ")
	if !bytes.Equal(a, b) {
		t.Errorf("the attack changed the cluster's state\nbefore: %s\nafter:  %s", b, a)
	}
}

// tlsConfig is a client config trusting the cluster's CA, presenting the
// certificate of role/name, or none when role is "".
func (c *cluster) tlsConfig(t *testing.T, role tlsconf.Role, name string) *tls.Config {
	t.Helper()
	cfg := tlsconf.Config{CAFile: c.caFile(), Cluster: tlsconf.DefaultCluster}
	if role != "" {
		cfg.CertFile, cfg.KeyFile = c.cert(role, name)
	}
	src, err := tlsconf.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tlsconf.ClientConfig(src)
}

// rogueConfig trusts the real CA but presents a certificate of the
// attacker's own CA.
func (c *cluster) rogueConfig(t *testing.T, role tlsconf.Role, name string) *tls.Config {
	t.Helper()
	base := filepath.Join(c.rogue, fmt.Sprintf("shoal-%s-%s", role, name))
	kp, err := tls.LoadX509KeyPair(base+".pem", base+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.tlsConfig(t, "", "")
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
	return cfg
}

// conn dials addr over cfg, or plaintext when cfg is nil, sending token
// with every call when it is set.
func conn(t *testing.T, addr string, cfg *tls.Config, token string) *grpc.ClientConn {
	t.Helper()
	var opts []grpc.DialOption
	if cfg != nil {
		opts = append(opts, tlsconf.DialOption(cfg))
	}
	if token != "" {
		opts = append(opts, rpc.WithToken(token, cfg == nil))
	}
	cc, err := rpc.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runAgentA streams for agent A from its own certificate to the leader,
// ready and busy, until the test ends.
func (c *cluster) runAgentA(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cc := conn(t, c.leader(t).rpc, c.tlsConfig(t, tlsconf.RoleAgent, agentA), "")
	st, err := shoalv1.NewAgentServiceClient(cc).Connect(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	hello := &shoalv1.AgentHello{InstanceId: agentA, Fleet: fleet, PrivateIp: agentAIP, StartTime: timestamppb.New(time.Now().Add(-time.Minute))}
	if err := st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil { // the welcome
		cancel()
		t.Fatalf("agent A: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			b := &shoalv1.SampleBatch{Seq: seq, Ready: true, Samples: []*shoalv1.Sample{{UnixMs: time.Now().UnixMilli(), Values: map[string]float64{"cpu": 20}}}}
			if err := st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Batch{Batch: b}}); err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	go func() {
		for {
			if _, err := st.Recv(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// backends is the backend set a legitimate LB receives for the fleet from
// the leader, as "id address state", sorted.
func (c *cluster) backends(t *testing.T) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.leaderNode()
	if err != nil {
		return nil, err
	}
	cc := conn(t, l.rpc, c.tlsConfig(t, tlsconf.RoleLB, lbName), "")
	st, err := shoalv1.NewBackendServiceClient(cc).WatchBackends(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(&shoalv1.WatchBackendsRequest{Msg: &shoalv1.WatchBackendsRequest_Hello{Hello: &shoalv1.LBHello{LbId: lbName, Fleet: fleet}}}); err != nil {
		return nil, err
	}
	resp, err := st.Recv()
	if err != nil {
		return nil, fmt.Errorf("legitimate LB: %w", err)
	}
	out := []string{}
	for _, b := range resp.GetBackends().GetBackends() {
		out = append(out, fmt.Sprintf("%s %s %s", b.GetInstanceId(), b.GetAddress(), b.GetState()))
	}
	sort.Strings(out)
	return out, nil
}

// metrics scrapes a node's /metrics: every sample by its series text,
// such as shoal_auth_denied_total{reason="no_token"}.
func metrics(t *testing.T, n *node) map[string]float64 {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + n.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func denied(reason string) string { return fmt.Sprintf("shoal_auth_denied_total{reason=%q}", reason) }

func ingestRefused(reason string) string {
	return fmt.Sprintf("shoal_ingest_streams_rejected_total{reason=%q}", reason)
}

// counted checks that, between two scrapes, each series in want grew by
// exactly that much and every other shoal_auth_denied_total series did not
// move.
func counted(t *testing.T, before, after map[string]float64, want map[string]float64) {
	t.Helper()
	for k, d := range want {
		if got := after[k] - before[k]; got != d {
			t.Errorf("%s grew by %v, want %v", k, got, d)
		}
	}
	for k, v := range after {
		if _, ok := want[k]; !ok && strings.HasPrefix(k, "shoal_auth_denied_total{") && v != before[k] {
			t.Errorf("%s grew by %v, want no change", k, v-before[k])
		}
	}
}

//go:build multiprocess

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/deploy/testkit"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// Short raft timings, with room for a loaded 2-core machine: elections
// finish in about a second; a 100 ms lease made survivors step down.
var raftFlags = []string{
	"--raft-heartbeat-timeout", "400ms", "--raft-election-timeout", "400ms",
	"--raft-leader-lease-timeout", "200ms", "--raft-commit-timeout", "5ms",
	"--no-leader-wait", "5s", "--log-level", "info",
	// Snapshot often and keep few entries after one, so restarts load
	// snapshots and a node that was down is sent one.
	"--raft-snapshot-threshold", "16", "--raft-snapshot-interval", "200ms", "--raft-trailing-logs", "4",
	// These suites test the cluster alone: no cloud to scale.
	"--cloud", "none",
}

type node struct {
	id, raft, rpc, http, dir string
	agent                    string // --agent-addr
	join                     string // "" means --bootstrap
	cert                     testkit.Pair
	proc                     *testkit.Proc // the latest start
	conn                     *grpc.ClientConn
}

// cluster runs secure, as production does: every node has a server
// certificate of the test's CA, and the operator (the test's gRPC clients
// and CLI calls) an operator certificate and, once leader() has run, the
// management token from `acl bootstrap`.
type cluster struct {
	t     *testing.T
	bin   string
	nodes []*node
	extra []string // more serve flags, e.g. --log-store
	pki   *testkit.PKI
	op    testkit.Creds // without the token: that is in token
	token testkit.TokenSource
}

// newCluster allocates three nodes; node 0 bootstraps, the others join.
func newCluster(t *testing.T, extra ...string) *cluster {
	c := &cluster{t: t, bin: testkit.Binary(t, "shoal-coordinator"), extra: extra}
	c.pki = testkit.NewPKI(t, c.bin)
	c.op = testkit.Creds{CACert: c.pki.CACert, Pair: testkit.Cert(t, c.pki, testkit.RoleOperator, "e2e")}
	base := t.TempDir()
	for i := 0; i < 3; i++ {
		n := &node{
			id: fmt.Sprintf("n%d", i+1), raft: testkit.FreeAddr(t), rpc: testkit.FreeAddr(t), http: testkit.FreeAddr(t),
			agent: testkit.FreeAddr(t), dir: filepath.Join(base, fmt.Sprintf("n%d", i+1)),
		}
		n.cert = testkit.ServerCert(t, c.pki, n.id)
		if i > 0 {
			var peers []string
			for _, p := range c.nodes {
				peers = append(peers, p.rpc)
			}
			n.join = strings.Join(peers, ",")
		}
		cc, err := rpc.Dial(n.rpc, testkit.DialOptions(t, c.op, &c.token)...)
		if err != nil {
			t.Fatal(err)
		}
		n.conn = cc
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.kill9(n)
			n.conn.Close()
		}
	})
	return c
}

func (n *node) logFile() string { return filepath.Join(filepath.Dir(n.dir), n.id+".log") }

func (n *node) client() shoalv1.ControlServiceClient { return shoalv1.NewControlServiceClient(n.conn) }

func (n *node) running() bool { return n.proc != nil && !n.proc.Exited() }

// start runs the node with the same flags every time: a restart changes
// nothing on the command line.
func (c *cluster) start(n *node) {
	c.t.Helper()
	args := []string{"serve", "--node-id", n.id, "--data-dir", n.dir, "--raft-addr", n.raft, "--rpc-addr", n.rpc, "--http-addr", n.http,
		"--agent-addr", n.agent, "--ca-key", c.pki.CAKey}
	args = append(args, testkit.TLSFlags(c.pki, n.cert)...)
	if n.join == "" {
		args = append(args, "--bootstrap")
	} else {
		args = append(args, "--join", n.join)
	}
	args = append(args, raftFlags...)
	args = append(args, c.extra...)
	// Every start appends to the same <id>.log, so a restart's log follows
	// the crash's.
	n.proc = testkit.Start(c.t, c.bin, args, testkit.Options{Name: n.id, LogDir: filepath.Dir(n.dir)})
}

func (c *cluster) kill9(n *node) {
	if !n.running() {
		return
	}
	if err := n.proc.Stop(0); err != nil {
		c.t.Error(err)
	}
}

// stop sends SIGTERM and returns how long the node took to exit; it fails
// the test past 10 s.
func (c *cluster) stop(n *node) time.Duration {
	c.t.Helper()
	start := time.Now()
	_ = n.proc.Signal(syscall.SIGTERM)
	select {
	case <-n.proc.Done():
		return time.Since(start)
	case <-time.After(10 * time.Second):
		c.t.Errorf("%s did not stop within 10 s of SIGTERM", n.id)
		c.kill9(n)
		return time.Since(start)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := testkit.Poll(d, func() error {
		if !cond() {
			return errors.New("waiting for " + what)
		}
		return nil
	}); err != nil {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// leader waits until a running node reports itself leader and every running
// node agrees, and returns it. The first call bootstraps the ACLs.
func (c *cluster) leader(d time.Duration) *node {
	c.t.Helper()
	var l *node
	waitFor(c.t, d, "a leader every running node agrees on", func() bool {
		if c.token.Get() == "" && !c.bootstrapACL() {
			return false
		}
		id := ""
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := n.client().GetStatus(ctx, &shoalv1.GetStatusRequest{Stale: true})
			cancel()
			if err != nil || st.LeaderId == "" || (id != "" && st.LeaderId != id) {
				return false
			}
			id = st.LeaderId
		}
		for _, n := range c.nodes {
			if n.id == id && n.running() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// bootstrapACL tries `acl bootstrap` on each running node once and keeps
// the management token; false means no node could commit it yet.
func (c *cluster) bootstrapACL() bool {
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tok, err := testkit.TryBootstrapACL(ctx, c.bin, n.rpc, c.op)
		cancel()
		if err == nil {
			c.token.Set(tok.Secret)
			return true
		}
	}
	return false
}

// creds are the operator's credentials with the current token.
func (c *cluster) creds() testkit.Creds {
	cr := c.op
	cr.Token = c.token.Get()
	return cr
}

// cli runs an operator command against addr, with the operator's
// credentials in SHOAL_*, and returns stdout.
func (c *cluster) cli(addr string, args ...string) (string, error) {
	cmd := exec.Command(c.bin, append(args, "--address", addr)...)
	cmd.Env = append(testkit.Environ(), c.creds().Env()...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

type fleetJSON struct {
	Name    string `json:"name"`
	ASG     string `json:"asg"`
	Min     int32  `json:"min"`
	Max     int32  `json:"max"`
	Desired int32  `json:"desired"`
	Paused  bool   `json:"paused"`
}

func (c *cluster) fleets(addr string, stale bool) (map[string]fleetJSON, error) {
	args := []string{"fleet", "list", "-o", "json"}
	if stale {
		args = append(args, "--stale")
	}
	out, err := c.cli(addr, args...)
	if err != nil {
		return nil, err
	}
	var list []fleetJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("fleet list JSON: %v: %s", err, out)
	}
	m := map[string]fleetJSON{}
	for _, f := range list {
		m[f.Name] = f
	}
	return m, nil
}

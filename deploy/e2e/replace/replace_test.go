//go:build multiprocess

package replace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/deploy/testkit"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// Short raft timings with room for a loaded 2-core machine, as
// coordinator/e2e uses; state only (no cloud).
var serveFlags = []string{
	"--raft-heartbeat-timeout", "400ms", "--raft-election-timeout", "400ms",
	"--raft-leader-lease-timeout", "200ms", "--raft-commit-timeout", "5ms",
	"--no-leader-wait", "5s", "--shutdown-timeout", "5s",
	"--cloud", "none", "--bootstrap-expect", "3",
	"--snapshot-interval", "1s", "--snapshot-retain", "3",
}

// loopbackIPs are the addresses nodes move between; every server
// certificate names them all, as a deployment's certificates name the
// subnet range or DNS names its instances get.
var loopbackIPs = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}

type node struct {
	id, dir, snaps       string
	raft, rpc, http, agt string
	cert                 testkit.Pair
	proc                 *testkit.Proc
	conn                 *grpc.ClientConn
}

type cluster struct {
	t     *testing.T
	bin   string
	pki   *testkit.PKI
	op    testkit.Creds
	token testkit.TokenSource
	nodes []*node
}

func newCluster(t *testing.T, bin string, pki *testkit.PKI, name string) *cluster {
	c := &cluster{t: t, bin: bin, pki: pki}
	c.op = testkit.Creds{CACert: pki.CACert, Pair: testkit.Cert(t, pki, testkit.RoleOperator, "replace-"+name)}
	base := t.TempDir()
	for i := range 3 {
		id := fmt.Sprintf("%s-%d", name, i)
		n := &node{id: id, dir: filepath.Join(base, id, "data"), snaps: filepath.Join(base, id, "snapshots"),
			cert: testkit.Cert(t, pki, testkit.RoleServer, id, loopbackIPs...)}
		if err := os.MkdirAll(filepath.Dir(n.dir), 0o755); err != nil {
			t.Fatal(err)
		}
		c.move(n, loopbackIPs[0])
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n.proc != nil && !n.proc.Exited() {
				_ = n.proc.Stop(0)
			}
			if n.conn != nil {
				n.conn.Close()
			}
		}
	})
	return c
}

// freeAddr is a free port on ip (any of 127.0.0.0/8 binds on Linux).
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("free port on %s: %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// move gives n new addresses on ip: what a replacement instance gets.
func (c *cluster) move(n *node, ip string) {
	c.t.Helper()
	n.raft, n.rpc, n.http, n.agt = freeAddr(c.t, ip), freeAddr(c.t, ip), freeAddr(c.t, ip), freeAddr(c.t, ip)
	if n.conn != nil {
		n.conn.Close()
	}
	cc, err := rpc.Dial(n.rpc, testkit.DialOptions(c.t, c.op, &c.token)...)
	if err != nil {
		c.t.Fatal(err)
	}
	n.conn = cc
}

// start runs n with the flags user data gives every coordinator: the same
// --bootstrap-expect and a --join list of the others' current addresses.
func (c *cluster) start(n *node) {
	c.t.Helper()
	var join []string
	for _, o := range c.nodes {
		if o != n {
			join = append(join, o.rpc)
		}
	}
	args := []string{"serve", "--node-id", n.id, "--data-dir", n.dir, "--raft-addr", n.raft, "--rpc-addr", n.rpc,
		"--http-addr", n.http, "--agent-addr", n.agt, "--join", strings.Join(join, ","), "--snapshot-dir", n.snaps}
	args = append(args, testkit.TLSFlags(c.pki, n.cert)...)
	args = append(args, serveFlags...)
	n.proc = testkit.Start(c.t, c.bin, args, testkit.Options{Name: n.id, LogDir: filepath.Dir(n.dir)})
}

func (c *cluster) stop(n *node) {
	c.t.Helper()
	_ = n.proc.Signal(syscall.SIGTERM)
	select {
	case <-n.proc.Done():
	case <-time.After(15 * time.Second):
		c.t.Fatalf("%s did not stop within 15 s of SIGTERM", n.id)
	}
}

func (c *cluster) running() []*node {
	var out []*node
	for _, n := range c.nodes {
		if n.proc != nil && !n.proc.Exited() {
			out = append(out, n)
		}
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	if err := testkit.Poll(d, cond); err != nil {
		t.Fatalf("waiting %s for %s: %v", d, what, err)
	}
}

// status is n's own view (stale read: no leader needed to answer).
func status(n *node) (*shoalv1.GetStatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return shoalv1.NewControlServiceClient(n.conn).GetStatus(ctx, &shoalv1.GetStatusRequest{Stale: true})
}

// agreedLeader waits until every running node names the same running
// leader and that leader's configuration is want (id@raft-address, sorted),
// and returns the leader. It bootstraps the ACLs on first use.
func (c *cluster) agreedLeader(d time.Duration, want []string) *node {
	c.t.Helper()
	var l *node
	waitFor(c.t, d, "one leader every running node agrees on, with voters "+strings.Join(want, " "), func() error {
		if c.token.Get() == "" {
			if err := c.bootstrapACL(); err != nil {
				return err
			}
		}
		leader := ""
		for _, n := range c.running() {
			st, err := status(n)
			if err != nil {
				return fmt.Errorf("%s: %v", n.id, err)
			}
			if st.LeaderId == "" || leader != "" && st.LeaderId != leader {
				return fmt.Errorf("%s names leader %q, another %q", n.id, st.LeaderId, leader)
			}
			leader = st.LeaderId
		}
		for _, n := range c.running() {
			if n.id != leader {
				continue
			}
			st, err := status(n)
			if err != nil {
				return err
			}
			var got []string
			for _, p := range st.Nodes {
				if p.Voter {
					got = append(got, p.Id+"@"+p.RaftAddr)
				}
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				return fmt.Errorf("voters %v", got)
			}
			l = n
			return nil
		}
		return fmt.Errorf("leader %q is not running", leader)
	})
	return l
}

func (c *cluster) voters() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.id+"@"+n.raft)
	}
	sort.Strings(out)
	return out
}

func (c *cluster) bootstrapACL() error {
	for _, n := range c.running() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		tok, err := testkit.TryBootstrapACL(ctx, c.bin, n.rpc, c.op)
		cancel()
		if err == nil {
			c.token.Set(tok.Secret)
			return nil
		}
	}
	return errors.New("acl bootstrap: no node could commit it yet")
}

// cli runs an operator command against n and returns stdout.
func (c *cluster) cli(n *node, args ...string) (string, error) {
	cmd := exec.Command(c.bin, append(args, "--address", n.rpc)...)
	cr := c.op
	cr.Token = c.token.Get()
	cmd.Env = append(testkit.Environ(), cr.Env()...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// fleets is n's own (stale) list of fleet names, sorted.
func (c *cluster) fleets(n *node) ([]string, error) {
	out, err := c.cli(n, "fleet", "list", "-o", "json", "--stale")
	if err != nil {
		return nil, err
	}
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("fleet list: %v: %s", err, out)
	}
	var names []string
	for _, f := range list {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return names, nil
}

// createFleet writes through any running node (followers forward).
func (c *cluster) createFleet(via *node, name string) {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, "fleet create "+name, func() error {
		_, err := c.cli(via, "fleet", "create", name, "--asg", "shoal-"+name, "--min", "1", "--max", "3")
		if err != nil && strings.Contains(err.Error(), "already exists") {
			return nil
		}
		return err
	})
}

// haveFleets waits until every running node's own state has exactly want.
func (c *cluster) haveFleets(want []string) {
	c.t.Helper()
	sort.Strings(want)
	for _, n := range c.running() {
		waitFor(c.t, 20*time.Second, n.id+" to hold fleets "+strings.Join(want, ","), func() error {
			got, err := c.fleets(n)
			if err != nil {
				return err
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				return fmt.Errorf("%s holds %v", n.id, got)
			}
			return nil
		})
	}
}

// logFrom is n's log from byte off on; every start appends to one file.
func logFrom(n *node, off int) string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(n.dir), n.id+".log"))
	return string(b[min(off, len(b)):])
}

func logHas(n *node, s string) bool { return strings.Contains(logFrom(n, 0), s) }

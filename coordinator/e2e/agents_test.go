//go:build multiprocess

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/testkit"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// startAgent runs a real shoal-agent outside EC2 (--instance-id and --fleet
// skip IMDS, so it cannot enroll: it gets an agent certificate issued by
// hand, as the README says for development) against every node's agent
// listener.
func startAgent(t *testing.T, c *cluster, id string) {
	t.Helper()
	bin := testkit.Binary(t, "shoal-agent")
	var addrs []string
	for _, n := range c.nodes {
		addrs = append(addrs, n.agent)
	}
	cert := testkit.Cert(t, c.pki, testkit.RoleAgent, id)
	args := []string{"--instance-id", id, "--fleet", "web", "--coordinator", strings.Join(addrs, ","),
		"--data-dir", t.TempDir(), "--interval", "250ms", "--log-level", "warn"}
	testkit.Start(t, bin, append(args, testkit.TLSFlags(c.pki, cert)...), testkit.Options{Name: id})
}

// freshInstances returns the in-service instances the leader n sees
// reporting within maxAge, with a cpu figure.
func freshInstances(n *node, maxAge time.Duration) (map[string]*shoalv1.Instance, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := n.client().ListInstances(ctx, &shoalv1.ListInstancesRequest{Fleet: "web"})
	if err != nil {
		return nil, err
	}
	out := map[string]*shoalv1.Instance{}
	for _, in := range r.Instances {
		if _, ok := in.Metrics["cpu"]; ok && in.State == shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE &&
			in.LastReportAge != nil && in.LastReportAge.AsDuration() < maxAge {
			out[in.Id] = in
		}
	}
	return out, nil
}

// TestAgentsFollowTheLeader: three real agents stream to a 3-node cluster;
// the leader is killed with -9, and every agent shows up again on the new
// leader with fresh metrics, and no instance is lost from the registry.
func TestAgentsFollowTheLeader(t *testing.T) {
	c := newCluster(t)
	for _, n := range c.nodes {
		c.start(n)
	}
	l := c.leader(30 * time.Second)
	if out, err := c.cli(l.rpc, "fleet", "create", "web", "--asg", "web-asg", "--min", "0", "--max", "10"); err != nil {
		t.Fatalf("fleet create: %v\n%s", err, out)
	}
	ids := []string{"i-0000000000000a001", "i-0000000000000a002", "i-0000000000000a003"}
	for _, id := range ids {
		startAgent(t, c, id)
	}
	waitFor(t, 30*time.Second, "3 agents in service and reporting to the leader", func() bool {
		got, err := freshInstances(l, 2*time.Second)
		return err == nil && len(got) == 3
	})

	c.kill9(l)
	nl := c.leader(30 * time.Second)
	if nl == l {
		t.Fatal("the killed node is still leader")
	}
	start := time.Now()
	var got map[string]*shoalv1.Instance
	waitFor(t, 30*time.Second, "every agent in service on the new leader with fresh metrics", func() bool {
		var err error
		got, err = freshInstances(nl, 2*time.Second)
		return err == nil && len(got) == 3
	})
	t.Logf("agents back on %s with fresh metrics %v after it was elected", nl.id, time.Since(start).Round(10*time.Millisecond))
	for _, id := range ids {
		if _, ok := got[id]; !ok {
			t.Fatalf("%s missing on the new leader", id)
		}
	}
	// The registry itself (replicated, not rebuilt) kept every instance.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := nl.client().ListInstances(ctx, &shoalv1.ListInstancesRequest{Fleet: "web", Stale: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Instances) != 3 {
		t.Fatalf("registry on %s holds %d instances, want 3: %v", nl.id, len(r.Instances), fmt.Sprint(r.Instances))
	}
}

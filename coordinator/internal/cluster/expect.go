package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
)

// MaxBootstrapExpect bounds --bootstrap-expect: raft clusters larger than
// this only slow commits down.
const MaxBootstrapExpect = 9

// InCluster reports whether this node has raft state: a log entry, a
// snapshot or a configuration. Such a node belongs to a cluster, so a fresh
// node that asks it must join, never bootstrap.
func (n *Node) InCluster() bool {
	if n.raft.LastIndex() > 0 {
		return true
	}
	cf := n.raft.GetConfiguration()
	return cf.Error() == nil && len(cf.Configuration().Servers) > 0
}

// Describe answers ClusterService.DescribeNode for this node.
func (n *Node) Describe() *clusterv1.DescribeNodeResponse {
	return &clusterv1.DescribeNodeResponse{
		NodeId:          n.cfg.NodeID,
		RaftAddr:        string(n.trans.LocalAddr()),
		RpcAddr:         n.cfg.RPCAdvertise,
		InCluster:       n.InCluster(),
		BootstrapExpect: uint32(n.cfg.BootstrapExpect),
		LeaderId:        n.LeaderID(),
	}
}

// expectLoop is a fresh node's way into a cluster under --bootstrap-expect.
// Every round it asks each Join address who it is: a server in a cluster
// is joined through; BootstrapExpect fresh servers (this one among them)
// that expect the same number all bootstrap the same configuration, sorted
// by id, which hashicorp/raft accepts on every member (Consul's
// bootstrap_expect does the same). A node that is handed a configuration
// meanwhile, by a peer that bootstrapped first, has state and joins.
func (n *Node) expectLoop() {
	defer n.wg.Done()
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		done, err := n.expectRound()
		if done {
			// Bootstrapped or in a cluster: record this node's addresses
			// with the leader, as --join does after every start.
			n.askJoinUntilDone()
			return
		}
		if err != nil && attempt%10 == 0 {
			n.log.Warn("bootstrap-expect: waiting", "expect", n.cfg.BootstrapExpect, "err", err)
		}
		select {
		case <-n.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// errWaiting: not enough fresh servers answered yet.
var errWaiting = errors.New("waiting for servers")

// expectRound asks every Join address once. It reports done when this node
// is now in a cluster (it bootstrapped, or a peer did and reached it) or a
// server that is in one was found, so the join loop takes over.
func (n *Node) expectRound() (bool, error) {
	if n.InCluster() {
		n.log.Info("bootstrap-expect: a peer bootstrapped a configuration with this node in it; not bootstrapping")
		return true, nil
	}
	self := n.Describe()
	fresh := map[string]*clusterv1.DescribeNodeResponse{self.NodeId: self}
	var lastErr error
	for _, addr := range n.cfg.Join {
		if addr == n.cfg.RPCAdvertise {
			continue
		}
		d, err := n.describe(addr)
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", addr, err)
			continue
		}
		switch {
		case d.InCluster:
			n.log.Info("bootstrap-expect: found a server in a cluster; joining it, not bootstrapping", "via", addr, "server", d.NodeId, "leader", d.LeaderId)
			return true, nil
		case d.NodeId == self.NodeId:
			return false, fmt.Errorf("%s answers as node %q, this node's own id: give each server its own --node-id", addr, d.NodeId)
		case int(d.BootstrapExpect) != n.cfg.BootstrapExpect:
			return false, fmt.Errorf("%s (node %q) expects %d servers, this node %d: give every server the same --bootstrap-expect", addr, d.NodeId, d.BootstrapExpect, n.cfg.BootstrapExpect)
		}
		fresh[d.NodeId] = d
	}
	switch {
	case len(fresh) < n.cfg.BootstrapExpect:
		if lastErr == nil {
			lastErr = errWaiting
		}
		return false, fmt.Errorf("%d of %d servers fresh and reachable: %w", len(fresh), n.cfg.BootstrapExpect, lastErr)
	case len(fresh) > n.cfg.BootstrapExpect:
		// Each node could pick a different subset; refuse rather than risk
		// two configurations.
		return false, fmt.Errorf("found %d fresh servers but --bootstrap-expect is %d; fix one or the other", len(fresh), n.cfg.BootstrapExpect)
	}
	cfg := expectedConfiguration(fresh)
	n.log.Info("bootstrap-expect: bootstrapping", "servers", len(cfg.Servers), "configuration", cfg.Servers)
	if err := n.raft.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	return true, nil
}

// expectedConfiguration is the configuration every fresh server computes
// from the same answers: all of them as voters, sorted by id.
func expectedConfiguration(fresh map[string]*clusterv1.DescribeNodeResponse) raft.Configuration {
	ids := make([]string, 0, len(fresh))
	for id := range fresh {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var cfg raft.Configuration
	for _, id := range ids {
		cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(fresh[id].RaftAddr), Suffrage: raft.Voter})
	}
	return cfg
}

func (n *Node) describe(addr string) (*clusterv1.DescribeNodeResponse, error) {
	c, err := n.peer(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.DescribeNode(ctx, &clusterv1.DescribeNodeRequest{NodeId: n.cfg.NodeID})
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
)

func (n *Node) joinLoop() {
	defer n.wg.Done()
	n.askJoinUntilDone()
}

// askJoinUntilDone asks each Join address in turn until one accepts or the
// node stops.
func (n *Node) askJoinUntilDone() {
	if len(n.cfg.Join) == 0 {
		return
	}
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		for _, addr := range n.cfg.Join {
			if addr == n.cfg.RPCAdvertise {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := n.askJoin(ctx, addr)
			cancel()
			if err == nil {
				n.log.Info("joined the cluster", "via", addr)
				return
			}
			if attempt%10 == 0 {
				n.log.Warn("join attempt failed; retrying", "via", addr, "err", err)
			}
		}
		select {
		case <-n.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (n *Node) askJoin(ctx context.Context, addr string) error {
	c, err := n.peer(addr)
	if err != nil {
		return err
	}
	_, err = c.JoinCluster(ctx, &clusterv1.JoinClusterRequest{
		NodeId: n.cfg.NodeID, RaftAddr: string(n.trans.LocalAddr()), RpcAddr: n.cfg.RPCAdvertise, AgentAddr: n.cfg.AgentAdvertise,
		Fresh: !n.InCluster(),
	})
	return err
}

// Join adds a node as a voter. On a follower the request is passed to the
// leader; a node already in the configuration with the same address is a
// no-op apart from refreshing its RPC address.
func (n *Node) Join(ctx context.Context, req *clusterv1.JoinClusterRequest) (string, error) {
	switch {
	case req.NodeId == "":
		return "", fmt.Errorf("%w: node_id: required", ErrInvalidRequest)
	case req.RaftAddr == "":
		return "", fmt.Errorf("%w: raft_addr: required", ErrInvalidRequest)
	case req.RpcAddr == "":
		return "", fmt.Errorf("%w: rpc_addr: required", ErrInvalidRequest)
	}
	if !n.IsLeader() {
		if IsForwarded(ctx) {
			return "", ErrNotLeader
		}
		if err := n.waitLeader(ctx, time.Now().Add(n.cfg.NoLeaderWait)); err != nil {
			return "", err
		}
		c, err := n.peer(n.LeaderRPCAddr())
		if err != nil {
			return "", err
		}
		resp, err := c.JoinCluster(WithForwarded(ctx), req)
		if err != nil {
			return "", err
		}
		return resp.LeaderId, nil
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return "", fmt.Errorf("read configuration: %w", err)
	}
	id, addr := raft.ServerID(req.NodeId), raft.ServerAddress(req.RaftAddr)
	present := false
	for _, s := range cf.Configuration().Servers {
		switch {
		case s.ID == id && s.Address == addr && s.Suffrage == raft.Voter && !req.Fresh:
			present = true
		case s.ID == id || s.Address == addr:
			// Same id at a new address, a new id at an old address, or a
			// wiped node at its old address: the old entry is stale (it
			// would split the quorum count, or carry a vote the node forgot).
			if err := n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout).Error(); err != nil {
				return "", fmt.Errorf("remove stale server %s: %w", s.ID, err)
			}
		}
	}
	if !present {
		if err := n.raft.AddVoter(id, addr, 0, n.cfg.ApplyTimeout).Error(); err != nil {
			return "", fmt.Errorf("add voter %s: %w", id, err)
		}
		n.log.Info("added voter", "id", id, "raft_addr", addr)
	}
	m := fsm.Member{ID: req.NodeId, RaftAddr: req.RaftAddr, RPCAddr: req.RpcAddr, AgentAddr: req.AgentAddr}
	if n.fsm.Members()[req.NodeId] != m {
		r, _, err := n.applyLocal(fsm.SetMember(m).Encode())
		if err != nil {
			return "", err
		}
		if err := r.Error(); err != nil {
			return "", err
		}
	}
	return n.cfg.NodeID, nil
}

// RemovePeer removes a server from the configuration; only the leader may.
func (n *Node) RemovePeer(id string) error {
	if id == "" {
		return fmt.Errorf("%w: id: required", ErrInvalidRequest)
	}
	if !n.IsLeader() {
		return ErrNotLeader
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	found, voters, isVoter := false, 0, false
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if string(s.ID) == id {
			found, isVoter = true, s.Suffrage == raft.Voter
		}
	}
	if !found {
		return fmt.Errorf("id (%q): %w", id, ErrUnknownPeer)
	}
	if isVoter && voters == 1 {
		return fmt.Errorf("%w: id (%q): the cluster's only voter; removing it would leave no cluster", ErrInvalidRequest, id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("remove server %s: %w", id, err)
	}
	if n.IsLeader() {
		if _, _, err := n.applyLocal(fsm.RemoveMember(id).Encode()); err != nil {
			n.log.Warn("forget removed member", "id", id, "err", err)
		}
	}
	return nil
}

// ErrUnknownPeer: RemovePeer was given an id not in the configuration.
var ErrUnknownPeer = errors.New("not a member of the cluster")

// Peer is one server of the raft configuration with the addresses the
// FSM knows for it.
type Peer struct {
	ID       string
	RaftAddr string
	RPCAddr  string
	// AgentAddr is the node's agent-only listener, "" when it has none.
	AgentAddr string
	Voter     bool
}

// Peers lists the raft configuration as this node knows it.
func (n *Node) Peers() ([]Peer, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, err
	}
	members := n.fsm.Members()
	var out []Peer
	for _, s := range cf.Configuration().Servers {
		p := Peer{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter}
		p.RPCAddr, p.AgentAddr = members[p.ID].RPCAddr, members[p.ID].AgentAddr
		if p.ID == n.cfg.NodeID {
			p.RPCAddr, p.AgentAddr = n.cfg.RPCAdvertise, n.cfg.AgentAdvertise
		}
		out = append(out, p)
	}
	return out, nil
}

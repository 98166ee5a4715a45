package cluster

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
)

func (n *Node) watchLeadership(notify <-chan bool) {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case leader := <-notify:
			n.log.Info("leadership changed", "leader", leader)
			n.mu.Lock()
			n.readyTerm = 0
			subs := append([]chan bool(nil), n.subs...)
			n.mu.Unlock()
			for _, ch := range subs {
				// Keep only the newest value: drop a stale one nobody read.
				select {
				case <-ch:
				default:
				}
				ch <- leader
			}
			if leader {
				// Off this goroutine: raft blocks on NotifyCh while the
				// barrier waits for raft.
				n.wg.Add(1)
				go func() { defer n.wg.Done(); n.becameLeader() }()
			}
		}
	}
}

// becameLeader waits for everything committed by earlier leaders to be
// applied (a barrier), marks leader reads ready, and records this node's own
// addresses if the FSM lacks them.
func (n *Node) becameLeader() {
	term := n.raft.CurrentTerm()
	if err := n.await(n.raft.Barrier(n.cfg.ApplyTimeout)); err != nil {
		n.log.Warn("leader barrier failed", "err", err)
		return
	}
	n.mu.Lock()
	n.readyTerm = term
	n.mu.Unlock()
	self := fsm.Member{ID: n.cfg.NodeID, RaftAddr: string(n.trans.LocalAddr()), RPCAddr: n.cfg.RPCAdvertise, AgentAddr: n.cfg.AgentAdvertise}
	if n.fsm.Members()[n.cfg.NodeID] != self {
		f := n.raft.Apply(mustStamp(fsm.SetMember(self).Encode(), n.cfg.Clock()), n.cfg.ApplyTimeout)
		if err := n.await(f); err != nil {
			n.log.Warn("record own addresses", "err", err)
		}
	}
}

// await is f.Error(), given up when the node shuts down. Raft answers an
// Apply or Barrier future from its leader loop; a future that loop took
// just as it stopped can stay unanswered, and Shutdown, which waits for
// this node's goroutines, would then wait forever (seen when a node was
// stopped right after winning an election). The goroutine left behind in
// that case ends with the process.
func (n *Node) await(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-n.stop:
		return raft.ErrRaftShutdown
	}
}

func mustStamp(b []byte, now time.Time) []byte {
	s, err := fsm.Stamp(b, now)
	if err != nil {
		panic(err) // only called with commands this package just encoded
	}
	return s
}

func (n *Node) watchObservations(ch <-chan raft.Observation) {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case o := <-ch:
			n.mu.Lock()
			switch d := o.Data.(type) {
			case raft.FailedHeartbeatObservation:
				// The first failure's last contact is when the peer went
				// silent; later failures repeat it.
				if _, ok := n.unreachable[d.PeerID]; !ok {
					n.unreachable[d.PeerID] = d.LastContact
				}
			case raft.LeaderObservation:
				if d.LeaderID != "" {
					n.lastLeader = d.LeaderID
				}
			case raft.ResumedHeartbeatObservation:
				delete(n.unreachable, d.PeerID)
			}
			n.mu.Unlock()
		}
	}
}

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderID is the current leader's id, "" when unknown.
func (n *Node) LeaderID() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// LeaderRPCAddr is the current leader's gRPC address, "" when unknown.
func (n *Node) LeaderRPCAddr() string {
	id := n.LeaderID()
	if id == "" {
		return ""
	}
	if id == n.cfg.NodeID {
		return n.cfg.RPCAdvertise
	}
	return n.fsm.Members()[id].RPCAddr
}

// LeaderAgentAddr is the address agents should dial to reach the leader:
// its agent-only listener if it has one, else its gRPC address; "" when
// unknown.
func (n *Node) LeaderAgentAddr() string {
	id := n.LeaderID()
	switch {
	case id == "":
		return ""
	case id == n.cfg.NodeID:
		if n.cfg.AgentAdvertise != "" {
			return n.cfg.AgentAdvertise
		}
		return n.cfg.RPCAdvertise
	}
	m := n.fsm.Members()[id]
	if m.AgentAddr != "" {
		return m.AgentAddr
	}
	return m.RPCAddr
}

// CaughtUp reports whether this node's state can be trusted for a
// negative answer ("no such token", "ACLs are not bootstrapped"): it leads,
// or it has heard from a leader since it started and applied everything
// that leader told it was committed. A restarted follower holds only its
// snapshot until the leader's first heartbeat, so before that its "no"
// may be false. why says what is missing when it is not.
func (n *Node) CaughtUp() (ok bool, why string) {
	if n.IsLeader() {
		return true, ""
	}
	if n.LeaderID() == "" || n.raft.LastContact().IsZero() {
		return false, "it has not heard from a leader since it started"
	}
	commit, err := strconv.ParseUint(n.raft.Stats()["commit_index"], 10, 64)
	if err != nil {
		return false, "its commit index is unknown"
	}
	if applied := n.raft.AppliedIndex(); applied < commit {
		return false, fmt.Sprintf("it has applied %d of %d committed entries", applied, commit)
	}
	return true, ""
}

// Unreachable reports whether this leader has failed to heartbeat peer id.
func (n *Node) Unreachable(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.unreachable[raft.ServerID(id)]
	return ok
}

// UnreachableSince is when this leader last heard from peer id, if its
// heartbeats now fail.
func (n *Node) UnreachableSince(id string) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.unreachable[raft.ServerID(id)]
	return t, ok
}

// LastLeaderID is the newest leader this node knew of; it stays set after
// that leader dies, so a node without a leader can say whom it lost.
func (n *Node) LastLeaderID() string {
	if id := n.LeaderID(); id != "" {
		return id
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return string(n.lastLeader)
}

// Subscribe returns a channel that receives true when this node becomes
// leader and false when it stops being one. Only the newest value is kept
// for a slow reader. cancel stops the deliveries.
func (n *Node) Subscribe() (ch <-chan bool, cancel func()) {
	c := make(chan bool, 1)
	n.mu.Lock()
	n.subs = append(n.subs, c)
	n.mu.Unlock()
	return c, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		for i, s := range n.subs {
			if s == c {
				n.subs = append(n.subs[:i], n.subs[i+1:]...)
				return
			}
		}
	}
}

// waitLeader polls until a leader is known or the wait runs out.
func (n *Node) waitLeader(ctx context.Context, deadline time.Time) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if n.LeaderID() != "" && n.LeaderRPCAddr() != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: none elected within %s", ErrNoLeader, n.cfg.NoLeaderWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-n.stop:
			return fmt.Errorf("%w: node shutting down", ErrNoLeader)
		case <-tick.C:
		}
	}
}

// ReadBarrier makes a leader read linearizable: it waits until this
// leader's start-of-term barrier has applied everything earlier leaders
// committed, then confirms with a quorum that it still leads.
func (n *Node) ReadBarrier(ctx context.Context) error {
	deadline := time.Now().Add(n.cfg.NoLeaderWait)
	for {
		if !n.IsLeader() {
			return ErrNotLeader
		}
		n.mu.Lock()
		ready := n.readyTerm != 0 && n.readyTerm == n.raft.CurrentTerm()
		n.mu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: leader not ready within %s", ErrNoLeader, n.cfg.NoLeaderWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return ErrNotLeader
	}
	return nil
}

// Term is raft's current term.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// LeaderTerm is the term this node leads in once its start-of-term barrier
// has applied (ReadBarrier), or 0 when it is not a ready leader.
func (n *Node) LeaderTerm() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.readyTerm == 0 || n.readyTerm != n.raft.CurrentTerm() || !n.IsLeader() {
		return 0
	}
	return n.readyTerm
}

// VerifyLeader confirms with a quorum round trip that this node still leads
// in term: the check made immediately before each mutating cloud call
// (cloud.Fenced). Leadership lost or regained in a later term fails it as
// well, because whoever acted on the old term's view must look again.
func (n *Node) VerifyLeader(ctx context.Context, term uint64) error {
	if cur := n.raft.CurrentTerm(); cur != term || !n.IsLeader() {
		return fmt.Errorf("%w: term %d is over (now term %d, %s)", ErrNotLeader, term, cur, n.raft.State())
	}
	done := make(chan error, 1)
	f := n.raft.VerifyLeader()
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: verify leadership of term %d: %v", ErrNotLeader, term, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("%w: verify leadership of term %d: %v", ErrNotLeader, term, ctx.Err())
	case <-n.stop:
		return fmt.Errorf("%w: node shutting down", ErrNotLeader)
	}
	// The quorum answered for the term raft was in when it sent the
	// heartbeats; make sure that is still ours.
	if cur := n.raft.CurrentTerm(); cur != term {
		return fmt.Errorf("%w: term moved from %d to %d during the check", ErrNotLeader, term, cur)
	}
	return nil
}

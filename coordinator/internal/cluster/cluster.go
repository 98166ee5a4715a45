package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// Sentinel errors.
var (
	// ErrNoLeader: no leader was known within Config.NoLeaderWait.
	ErrNoLeader = errors.New("no leader")
	// ErrNotLeader: a forwarded request reached a node that is not the
	// leader; the request was not applied and may be retried.
	ErrNotLeader = errors.New("not leader")
	// ErrUnknownOutcome: leadership was lost after the write was handed to
	// raft; it may or may not be committed.
	ErrUnknownOutcome = errors.New("leadership lost; the write may or may not have been applied")
	// ErrInvalidRequest: a join or remove request lacks a field.
	ErrInvalidRequest = errors.New("invalid request")
)

// forwardedKey marks a request a node passed on to the leader, so it is
// never passed on a second time (two nodes that each think the other leads
// would otherwise bounce it).
const forwardedKey = "x-shoal-forwarded"

// WithForwarded marks ctx's outgoing call as forwarded.
func WithForwarded(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, forwardedKey, "1")
}

// IsForwarded reports whether an incoming call was forwarded by a peer.
func IsForwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

// Node is one coordinator's raft member.
type Node struct {
	cfg   Config
	log   *slog.Logger
	fsm   *fsm.FSM
	raft  *raft.Raft
	trans raft.Transport
	close []io.Closer

	metrics *metrics

	mu          sync.Mutex
	conns       map[string]*grpc.ClientConn
	subs        []chan bool
	readyTerm   uint64 // the term in which this leader's barrier completed
	unreachable map[raft.ServerID]bool
	observer    *raft.Observer
	stop        chan struct{}
	wg          sync.WaitGroup
	shutOnce    sync.Once
	shutErr     error
}

// New opens the stores, starts raft and, when configured, bootstraps or
// starts joining. The FSM is owned by the node from here on; read it with
// FSM().
func New(cfg Config, f *fsm.FSM) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:         cfg,
		log:         cfg.Logger.With("node", cfg.NodeID),
		fsm:         f,
		conns:       map[string]*grpc.ClientConn{},
		unreachable: map[raft.ServerID]bool{},
		stop:        make(chan struct{}),
	}
	n.metrics = newMetrics(n)
	if err := n.open(); err != nil {
		n.closeAll()
		return nil, err
	}
	return n, nil
}

func (n *Node) open() error {
	cfg := n.cfg
	hl := NewHCLog(n.log, hclog.Info)
	logs, stable, snaps := cfg.LogStoreImpl, cfg.StableStore, cfg.SnapshotStore
	if logs == nil {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return fmt.Errorf("data-dir: %w", err)
		}
		switch cfg.LogStore {
		case StoreBolt:
			s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
			if err != nil {
				return fmt.Errorf("open boltdb log store: %w", err)
			}
			n.close = append(n.close, s)
			logs, stable = s, s
		default:
			dir := filepath.Join(cfg.DataDir, "wal")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("data-dir: %w", err)
			}
			s, err := raftwal.Open(dir, raftwal.WithLogger(hl.Named("wal")))
			if err != nil {
				return fmt.Errorf("open raft-wal log store: %w", err)
			}
			n.close = append(n.close, s)
			logs, stable = s, s
		}
	}
	if snaps == nil {
		s, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hl.Named("snapshot"))
		if err != nil {
			return fmt.Errorf("open snapshot store: %w", err)
		}
		snaps = s
	}
	trans := cfg.Transport
	if trans == nil {
		adv, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
		if err != nil {
			return fmt.Errorf("advertise-raft (%q): %w", cfg.RaftAdvertise, err)
		}
		t, err := raft.NewTCPTransportWithLogger(cfg.RaftBind, adv, 3, 10*time.Second, hl.Named("transport"))
		if err != nil {
			return fmt.Errorf("raft-addr (%q): %w", cfg.RaftBind, err)
		}
		trans = t
		n.close = append(n.close, t)
	}
	n.trans = trans

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = hl.Named("raft")
	notify := make(chan bool, 8)
	rc.NotifyCh = notify
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raft config: %w", err)
	}

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, logs, stable, snaps, trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.raft = r

	obsCh := make(chan raft.Observation, 32)
	n.observer = raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	r.RegisterObserver(n.observer)
	n.wg.Add(2)
	go n.watchLeadership(notify)
	go n.watchObservations(obsCh)

	switch {
	case existing:
		n.log.Info("found existing raft state; rejoining", "data_dir", cfg.DataDir)
	case cfg.Bootstrap:
		n.log.Info("bootstrapping a new cluster")
		err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			ID: rc.LocalID, Address: trans.LocalAddr(), Suffrage: raft.Voter,
		}}}).Error()
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	// A node started with --join asks again after a restart too: the leader
	// treats a known member as a no-op and refreshes its addresses.
	if len(cfg.Join) > 0 {
		n.wg.Add(1)
		go n.joinLoop()
	}
	return nil
}

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
	if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
		n.log.Warn("leader barrier failed", "err", err)
		return
	}
	n.mu.Lock()
	n.readyTerm = term
	n.mu.Unlock()
	self := fsm.Member{ID: n.cfg.NodeID, RaftAddr: string(n.trans.LocalAddr()), RPCAddr: n.cfg.RPCAdvertise}
	if n.fsm.Members()[n.cfg.NodeID] != self {
		f := n.raft.Apply(mustStamp(fsm.SetMember(self).Encode(), n.cfg.Clock()), n.cfg.ApplyTimeout)
		if err := f.Error(); err != nil {
			n.log.Warn("record own addresses", "err", err)
		}
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
				n.unreachable[d.PeerID] = true
			case raft.ResumedHeartbeatObservation:
				delete(n.unreachable, d.PeerID)
			}
			n.mu.Unlock()
		}
	}
}

func (n *Node) joinLoop() {
	defer n.wg.Done()
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
	c, err := n.client(addr)
	if err != nil {
		return err
	}
	_, err = c.JoinCluster(ctx, &shoalv1.JoinClusterRequest{
		NodeId: n.cfg.NodeID, RaftAddr: string(n.trans.LocalAddr()), RpcAddr: n.cfg.RPCAdvertise,
	})
	return err
}

func (n *Node) closeAll() {
	for i := len(n.close) - 1; i >= 0; i-- {
		if err := n.close[i].Close(); err != nil {
			n.log.Warn("close", "err", err)
		}
	}
	n.close = nil
}

// client returns a cached ControlService client for a peer's RPC address.
func (n *Node) client(addr string) (shoalv1.ControlServiceClient, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cc, ok := n.conns[addr]; ok {
		return shoalv1.NewControlServiceClient(cc), nil
	}
	dial := n.cfg.Dial
	if dial == nil {
		dial = func(a string) (*grpc.ClientConn, error) { return rpc.Dial(a) }
	}
	cc, err := dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	n.conns[addr] = cc
	return shoalv1.NewControlServiceClient(cc), nil
}

// FSM gives read access to the local state. On a follower it may lag the
// leader; use ReadBarrier first for an up-to-date read.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Raft exposes the raft handle for status and tests.
func (n *Node) Raft() *raft.Raft { return n.raft }

// NodeID is this node's id.
func (n *Node) NodeID() string { return n.cfg.NodeID }

// RPCAddr is the gRPC address this node advertises.
func (n *Node) RPCAddr() string { return n.cfg.RPCAdvertise }

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

// Unreachable reports whether this leader has failed to heartbeat peer id.
func (n *Node) Unreachable(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.unreachable[raft.ServerID(id)]
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

// Apply commits cmd (an encoded fsm.Command) and returns the FSM's result
// and the log index. On a follower the command is forwarded to the leader.
// Without a leader it waits up to Config.NoLeaderWait, then fails with
// ErrNoLeader. A rejected command is not an error here: see Result.Error.
func (n *Node) Apply(ctx context.Context, cmd []byte) (*fsm.Result, uint64, error) {
	deadline := time.Now().Add(n.cfg.NoLeaderWait)
	for {
		if n.IsLeader() {
			r, idx, err := n.applyLocal(cmd)
			if !errors.Is(err, ErrNotLeader) {
				return r, idx, err
			}
		} else if err := n.waitLeader(ctx, deadline); err != nil {
			return nil, 0, err
		} else if !n.IsLeader() {
			r, idx, err := n.forward(ctx, cmd)
			if err == nil || !retryable(err) {
				return r, idx, err
			}
			n.log.Debug("forward failed; retrying", "err", err)
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("%w: the leader did not accept the write within %s", ErrNoLeader, n.cfg.NoLeaderWait)
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// ApplyLocal commits cmd only if this node leads; it serves forwarded
// ApplyCommand calls, which must not be forwarded again.
func (n *Node) ApplyLocal(cmd []byte) (*fsm.Result, uint64, error) {
	if !n.IsLeader() {
		return nil, 0, ErrNotLeader
	}
	return n.applyLocal(cmd)
}

func (n *Node) applyLocal(cmd []byte) (*fsm.Result, uint64, error) {
	stamped, err := fsm.Stamp(cmd, n.cfg.Clock())
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	f := n.raft.Apply(stamped, n.cfg.ApplyTimeout)
	err = f.Error()
	n.metrics.observeApply(time.Since(start), err)
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before it entered the log: safe to send elsewhere.
		return nil, 0, ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost):
		return nil, 0, ErrUnknownOutcome
	case err != nil:
		return nil, 0, fmt.Errorf("raft apply: %w", err)
	}
	r, ok := f.Response().(*fsm.Result)
	if !ok {
		return nil, 0, fmt.Errorf("raft apply: unexpected response %T", f.Response())
	}
	return r, f.Index(), nil
}

func (n *Node) forward(ctx context.Context, cmd []byte) (*fsm.Result, uint64, error) {
	addr := n.LeaderRPCAddr()
	c, err := n.client(addr)
	if err != nil {
		return nil, 0, err
	}
	n.metrics.forwarded.WithLabelValues("apply").Inc()
	resp, err := c.ApplyCommand(WithForwarded(ctx), &shoalv1.ApplyCommandRequest{Command: cmd})
	if err != nil {
		return nil, 0, err
	}
	r, err := fsm.DecodeResult(resp.Result)
	if err != nil {
		return nil, 0, err
	}
	return r, resp.Index, nil
}

// retryable reports whether a forwarded write certainly did not reach raft
// on the leader: the peer said it is not the leader, or the connection could
// not be made. A forwarded write that may have reached raft is not retried.
func retryable(err error) bool {
	s, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch s.Code() {
	case codes.FailedPrecondition:
		return true
	case codes.Unavailable:
		// A leader that answered "no leader" never handed the write to raft,
		// and a refused connection never carried it. Any other UNAVAILABLE
		// (a connection reset mid-call) may follow a commit: not retried.
		msg := s.Message()
		return strings.Contains(msg, ErrNoLeader.Error()) || strings.Contains(msg, "connection refused")
	}
	return false
}

// LeaderClient returns a client for the leader, waiting up to NoLeaderWait
// for one. It fails with ErrNotLeader semantics if this node is the leader:
// callers serve those requests locally.
func (n *Node) LeaderClient(ctx context.Context) (shoalv1.ControlServiceClient, error) {
	if err := n.waitLeader(ctx, time.Now().Add(n.cfg.NoLeaderWait)); err != nil {
		return nil, err
	}
	n.metrics.forwarded.WithLabelValues("read").Inc()
	return n.client(n.LeaderRPCAddr())
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

// Join adds a node as a voter. On a follower the request is passed to the
// leader; a node already in the configuration with the same address is a
// no-op apart from refreshing its RPC address.
func (n *Node) Join(ctx context.Context, req *shoalv1.JoinClusterRequest) (string, error) {
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
		c, err := n.LeaderClient(ctx)
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
		case s.ID == id && s.Address == addr && s.Suffrage == raft.Voter:
			present = true
		case s.ID == id || s.Address == addr:
			// Same id at a new address, or a new id at an old address: the
			// old entry is stale and would split the quorum count.
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
	m := fsm.Member{ID: req.NodeId, RaftAddr: req.RaftAddr, RPCAddr: req.RpcAddr}
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
	found := false
	for _, s := range cf.Configuration().Servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return fmt.Errorf("id (%q): %w", id, ErrUnknownPeer)
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
	Voter    bool
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
		p.RPCAddr = members[p.ID].RPCAddr
		if p.ID == n.cfg.NodeID {
			p.RPCAddr = n.cfg.RPCAdvertise
		}
		out = append(out, p)
	}
	return out, nil
}

// Shutdown transfers leadership if this node leads and has peers, then
// stops raft and releases the stores, all within Config.ShutdownTimeout.
func (n *Node) Shutdown() error {
	n.shutOnce.Do(func() {
		deadline := time.Now().Add(n.cfg.ShutdownTimeout)
		if n.IsLeader() {
			if peers, err := n.Peers(); err == nil && len(peers) > 1 {
				n.log.Info("transferring leadership before shutdown")
				done := make(chan error, 1)
				go func() { done <- n.raft.LeadershipTransfer().Error() }()
				select {
				case err := <-done:
					if err != nil {
						n.log.Warn("leadership transfer failed", "err", err)
					}
				case <-time.After(time.Until(deadline) / 2):
					n.log.Warn("leadership transfer timed out")
				}
			}
		}
		close(n.stop)
		done := make(chan error, 1)
		go func() { done <- n.raft.Shutdown().Error() }()
		select {
		case n.shutErr = <-done:
		case <-time.After(time.Until(deadline)):
			n.shutErr = fmt.Errorf("raft shutdown did not finish within %s", n.cfg.ShutdownTimeout)
		}
		n.raft.DeregisterObserver(n.observer)
		n.wg.Wait()
		n.mu.Lock()
		for _, cc := range n.conns {
			_ = cc.Close()
		}
		n.mu.Unlock()
		n.closeAll()
	})
	return n.shutErr
}

package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
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
	unreachable map[raft.ServerID]time.Time
	// lastLeader is the newest leader raft named; it outlives the leader.
	lastLeader raft.ServerID
	observer   *raft.Observer
	stop       chan struct{}
	fatal      chan error
	wg         sync.WaitGroup
	shutOnce   sync.Once
	shutErr    error
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
		unreachable: map[raft.ServerID]time.Time{},
		stop:        make(chan struct{}),
		fatal:       make(chan error, 1),
	}
	n.metrics = newMetrics(n)
	if err := n.open(); err != nil {
		n.closeAll()
		return nil, err
	}
	return n, nil
}

func (n *Node) closeAll() {
	for i := len(n.close) - 1; i >= 0; i-- {
		if err := n.close[i].Close(); err != nil {
			n.log.Warn("close", "err", err)
		}
	}
	n.close = nil
}

// Fatal delivers the first storage failure the node cannot get past: a log
// entry or snapshot that fails its checksum, or a log store that can no
// longer write (a full disk). The caller must stop the process with a
// non-zero status; a supervisor's restart then reopens the stores, which is
// how a node gets past a disk that was full (see Durability in
// ARCHITECTURE.md).
func (n *Node) Fatal() <-chan error { return n.fatal }

func (n *Node) failStorage(err error) {
	select {
	case n.fatal <- err:
		n.log.Error("raft storage failed; stopping", "err", err)
	default:
	}
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

package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
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

package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/shoal-dev/shoal/coordinator/internal/apierr"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/nemesis"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
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
			r, idx, err := n.forward(ctx, deadline, cmd)
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

// errPeerUnreachable: the connection to the leader is not up, so a call
// made now would fail without leaving this node.
var errPeerUnreachable = errors.New("leader unreachable")

func (n *Node) forward(ctx context.Context, deadline time.Time, cmd []byte) (*fsm.Result, uint64, error) {
	cc, err := n.conn(n.LeaderRPCAddr())
	if err != nil {
		return nil, 0, err
	}
	// gRPC fails a call on a connection that is down with the same
	// UNAVAILABLE as a call cut off after it was sent; only a connection
	// known down before the call proves the write never left.
	rctx, cancel := context.WithDeadline(ctx, deadline)
	up := rpc.Ready(rctx, cc)
	cancel()
	if !up {
		return nil, 0, fmt.Errorf("%w: connection %s", errPeerUnreachable, cc.GetState())
	}
	n.metrics.forwarded.WithLabelValues("apply").Inc()
	resp, err := clusterv1.NewClusterServiceClient(cc).ApplyCommand(WithForwarded(ctx), &clusterv1.ApplyCommandRequest{Command: cmd})
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
// on the leader: the connection was not up, or the peer said so with a
// reason (it does not lead, or knows no leader). A write that may have
// reached raft, including any error without such a reason, is not retried.
func retryable(err error) bool {
	return errors.Is(err, errPeerUnreachable) || apierr.NotApplied(err)
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

// LeaderConn is LeaderClient's connection, for the leader's other public
// services (ACLService).
func (n *Node) LeaderConn(ctx context.Context) (grpc.ClientConnInterface, error) {
	if err := n.waitLeader(ctx, time.Now().Add(n.cfg.NoLeaderWait)); err != nil {
		return nil, err
	}
	n.metrics.forwarded.WithLabelValues("read").Inc()
	return n.conn(n.LeaderRPCAddr())
}

// client returns a ControlService client for a peer's RPC address.
func (n *Node) client(addr string) (shoalv1.ControlServiceClient, error) {
	cc, err := n.conn(addr)
	if err != nil {
		return nil, err
	}
	return shoalv1.NewControlServiceClient(cc), nil
}

// peer returns a ClusterService client for a peer's RPC address.
func (n *Node) peer(addr string) (clusterv1.ClusterServiceClient, error) {
	cc, err := n.conn(addr)
	if err != nil {
		return nil, err
	}
	return clusterv1.NewClusterServiceClient(cc), nil
}

// conn returns the cached connection to a peer's RPC address.
func (n *Node) conn(addr string) (*grpc.ClientConn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cc, ok := n.conns[addr]; ok {
		return cc, nil
	}
	dial := n.cfg.Dial
	if dial == nil {
		dial = func(a string) (*grpc.ClientConn, error) { return rpc.Dial(a, nemesis.GRPCDialOptions()...) }
	}
	cc, err := dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	n.conns[addr] = cc
	return cc, nil
}

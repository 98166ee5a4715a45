package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// followerConn is one follower's Forward stream, as the leader holds it.
type followerConn struct {
	node string
	out  chan *clusterv1.ForwardAgentsResponse
}

func (f *followerConn) send(m *clusterv1.ForwardAgentsResponse) error {
	select {
	case f.out <- m:
		return nil
	default:
		return fmt.Errorf("follower %s: send queue full", f.node)
	}
}

type forwardStream = grpc.BidiStreamingServer[clusterv1.ForwardAgentsRequest, clusterv1.ForwardAgentsResponse]

// ForwardAgents is the leader's end of a follower's stream.
func (s *Service) ForwardAgents(st forwardStream) error {
	if !s.cluster.IsLeader() {
		if addr := s.cluster.LeaderRPCAddr(); addr != "" {
			st.SetTrailer(metadata.Pairs(LeaderHintKey, addr))
		}
		return status.Errorf(codes.FailedPrecondition, "node %s is not the leader", s.cluster.NodeID())
	}
	m, err := st.Recv()
	if err != nil {
		return err
	}
	node := m.GetHello().GetNodeId()
	if node == "" {
		return status.Error(codes.InvalidArgument, "forward: the first message must be a hello naming the node")
	}
	// A server speaks only for itself: taking another follower's slot would
	// cut that follower's agents off when the impostor leaves.
	if id, ok, _ := tlsconf.PeerIdentity(st.Context()); ok && id.Name != node {
		s.m.streamRejected.WithLabelValues(reasonWrongIdentity).Inc()
		return status.Errorf(codes.PermissionDenied, "forward: %s may not forward as node %q", id, node)
	}
	f := &followerConn{node: node, out: make(chan *clusterv1.ForwardAgentsResponse, 1024)}
	s.mu.Lock()
	s.followers[node] = f
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.followers[node] == f {
			delete(s.followers, node)
			s.store.disconnectOwner(node)
		}
		s.mu.Unlock()
	}()
	// introduced are the ids this stream brought to the store that it did
	// not know; those the store still holds are bounded by
	// MaxNewInstancesPerStream.
	introduced := map[string]bool{}
	ctx, cancel := context.WithCancel(st.Context())
	defer cancel()
	sendErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-f.out:
				if err := st.Send(m); err != nil {
					sendErr <- err
					cancel()
					return
				}
			}
		}
	}()
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			select {
			case e := <-sendErr:
				return e
			default:
			}
			return err
		}
		if !s.cluster.IsLeader() {
			return status.Errorf(codes.FailedPrecondition, "node %s is no longer the leader", s.cluster.NodeID())
		}
		switch msg := m.GetMsg().(type) {
		case *clusterv1.ForwardAgentsRequest_Report:
			rep := msg.Report
			s.mu.Lock()
			now := s.cfg.Now()
			err := s.admitForwarded(rep, introduced)
			if err == nil {
				rep.Events = s.acceptEvents(rep.GetEvents())
				err = s.store.apply(rep, node, now)
			}
			if err == nil {
				s.deliverEvents(rep)
			}
			if err == nil {
				s.m.observeLatency(rep, now)
			}
			if err == nil && s.onApply != nil {
				s.onApply(rep, now)
			}
			s.mu.Unlock()
			if errors.Is(err, ErrDuplicate) || errors.Is(err, ErrRefused) {
				_ = f.send(&clusterv1.ForwardAgentsResponse{Msg: &clusterv1.ForwardAgentsResponse_Rejected{Rejected: &clusterv1.InstanceRejected{
					InstanceId: rep.GetHello().GetInstanceId(), Reason: err.Error()}}})
			}
		case *clusterv1.ForwardAgentsRequest_CommandResult:
			s.resolve(msg.CommandResult.GetResult())
		}
	}
}

// admitForwarded checks a follower's report as admit checks an agent's
// hello (a Forward stream is one more door), and counts the new ids the
// stream introduces. Service.mu is held.
func (s *Service) admitForwarded(rep *clusterv1.InstanceReport, introduced map[string]bool) error {
	h := rep.GetHello()
	id := h.GetInstanceId()
	if err := fsm.ValidInstanceID(id); err != nil {
		s.m.streamRejected.WithLabelValues(reasonBadIdentity).Inc()
		return fmt.Errorf("%w: hello: instance_%v", ErrRefused, err)
	}
	if err := fsm.ValidPrivateIP(h.GetPrivateIp()); err != nil {
		s.m.streamRejected.WithLabelValues(reasonBadIdentity).Inc()
		return fmt.Errorf("%w: hello: %v", ErrRefused, err)
	}
	if s.store.byID[id] != nil || introduced[id] {
		return nil
	}
	if len(introduced) >= s.cfg.MaxNewInstancesPerStream {
		// Ids the store has since forgotten (instances gone) no longer
		// count, so a long-lived stream survives a fleet's churn.
		for old := range introduced {
			if s.store.byID[old] == nil {
				delete(introduced, old)
			}
		}
	}
	if len(introduced) >= s.cfg.MaxNewInstancesPerStream {
		s.m.streamRejected.WithLabelValues(reasonTooManyNew).Inc()
		return fmt.Errorf("%w: %s: this forward stream already introduced %d new instance ids, the most one stream may", ErrRefused, id, len(introduced))
	}
	introduced[id] = true
	return nil
}

// forwarding says this follower has a live Forward stream to the leader.
func (s *Service) forwarding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fwdUp
}

// forwardLoop keeps, while this node is a follower, one Forward stream to
// the current leader.
func (s *Service) forwardLoop(ctx context.Context) error {
	wait := s.cfg.ForwardEvery
	for {
		addr := s.cluster.LeaderRPCAddr()
		if !s.cluster.IsLeader() && addr != "" {
			err := s.forwardSession(ctx, addr)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				s.cfg.Logger.Warn("forward stream to the leader ended", "leader", addr, "err", err)
			}
		} else if s.cluster.IsLeader() {
			s.keepPending()
		}
		// With no leader known the reports stay queued (bounded per
		// instance by the ring size) for whichever node wins: dropping
		// them lost every sample of an election from the CloudWatch
		// periods the new leader rebuilds.
		d := wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// keepPending applies to this node's own store what it queued while it was
// a follower and then became the leader: its own agents' samples from the
// election, which no other node has.
func (s *Service) keepPending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, rep := range s.pending {
		delete(s.pending, id)
		if err := s.routeLocked(rep); err != nil {
			s.cfg.Logger.Warn("queued report refused after taking the lead", "instance", id, "err", err)
		}
	}
	clear(s.pending)
	s.fwdResults = nil // commands of the previous leader, which is gone
}

func (s *Service) forwardSession(ctx context.Context, addr string) error {
	conn, err := rpc.Dial(addr, s.cfg.DialOptions...)
	if err != nil {
		return err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := clusterv1.NewClusterServiceClient(conn).ForwardAgents(sctx)
	if err != nil {
		return err
	}
	var sendMu sync.Mutex
	send := func(m *clusterv1.ForwardAgentsRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return st.Send(m)
	}
	if err := send(&clusterv1.ForwardAgentsRequest{Msg: &clusterv1.ForwardAgentsRequest_Hello{Hello: &clusterv1.FollowerHello{NodeId: s.cluster.NodeID()}}}); err != nil {
		return err
	}
	// A new leader knows nothing: tell it about every stream held here.
	s.mu.Lock()
	for id, c := range s.conns {
		if s.pending[id] == nil {
			s.pending[id] = &clusterv1.InstanceReport{Hello: c.hello, Ready: c.ready, ReadyReason: c.reason}
		}
		// The notices this node passed on may have died with the old
		// leader before it committed them; the new one hears them again
		// and ignores what its state already holds.
		if evs := c.latestEvents(); len(evs) > 0 {
			p := s.pending[id]
			p.Events = append(evs, p.Events...)
			if over := len(p.Events) - maxEventsPerReport; over > 0 {
				s.em.rejected.Add(float64(over))
				p.Events = p.Events[over:]
			}
		}
	}
	s.fwdUp = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.fwdUp = false
		s.mu.Unlock()
	}()

	recvErr := make(chan error, 1)
	go func() { recvErr <- s.forwardReceive(st, send) }()
	t := time.NewTicker(s.cfg.ForwardEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-recvErr:
			return err
		case <-t.C:
		}
		if s.cluster.IsLeader() || s.cluster.LeaderRPCAddr() != addr {
			return fmt.Errorf("leader moved from %s", addr)
		}
		s.mu.Lock()
		reports := s.pending
		s.pending = make(map[string]*clusterv1.InstanceReport, len(reports))
		results := s.fwdResults
		s.fwdResults = nil
		s.mu.Unlock()
		for _, r := range results {
			if err := send(&clusterv1.ForwardAgentsRequest{Msg: &clusterv1.ForwardAgentsRequest_CommandResult{CommandResult: r}}); err != nil {
				return err
			}
		}
		for _, rep := range reports {
			if err := send(&clusterv1.ForwardAgentsRequest{Msg: &clusterv1.ForwardAgentsRequest_Report{Report: rep}}); err != nil {
				return err
			}
			s.m.forwarded.Inc()
		}
	}
}

// forwardReceive handles the leader's messages to this follower.
func (s *Service) forwardReceive(st grpc.BidiStreamingClient[clusterv1.ForwardAgentsRequest, clusterv1.ForwardAgentsResponse], send func(*clusterv1.ForwardAgentsRequest) error) error {
	for {
		m, err := st.Recv()
		if err != nil {
			return err
		}
		switch msg := m.GetMsg().(type) {
		case *clusterv1.ForwardAgentsResponse_Command:
			id, cmd := msg.Command.GetInstanceId(), msg.Command.GetCommand()
			s.mu.Lock()
			c := s.conns[id]
			s.mu.Unlock()
			err := fmt.Errorf("%w: %s is not connected to node %s", ErrNotConnected, id, s.cluster.NodeID())
			if c != nil {
				err = c.send(&shoalv1.ConnectResponse{Msg: &shoalv1.ConnectResponse_Command{Command: cmd}})
			}
			if err != nil {
				res := &shoalv1.CommandResult{Id: cmd.GetId(), Kind: cmd.GetKind(), Error: err.Error()}
				if err := send(&clusterv1.ForwardAgentsRequest{Msg: &clusterv1.ForwardAgentsRequest_CommandResult{CommandResult: &clusterv1.ForwardedCommandResult{InstanceId: id, Result: res}}}); err != nil {
					return err
				}
			}
		case *clusterv1.ForwardAgentsResponse_Rejected:
			id := msg.Rejected.GetInstanceId()
			s.mu.Lock()
			c := s.conns[id]
			s.mu.Unlock()
			if c != nil {
				// The leader's reason starts with its sentinel's text; a
				// refusal that is not a duplicate is not ALREADY_EXISTS.
				reason, code, label := msg.Rejected.GetReason(), codes.AlreadyExists, reasonDuplicate
				if strings.HasPrefix(reason, ErrRefused.Error()) {
					code, label = codes.ResourceExhausted, reasonTooManyNew
				}
				s.m.streamRejected.WithLabelValues(label).Inc()
				c.kill(status.Error(code, reason))
			}
		}
	}
}

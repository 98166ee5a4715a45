package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/nemesis"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// builtin are the vocabulary metric names (ARCHITECTURE.md).
var builtin = map[string]bool{"cpu": true, "mem": true, "load1": true, "net_rx": true, "net_tx": true, "disk": true}

var customName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`)

// agentConn is one agent stream held by this node.
type agentConn struct {
	hello *shoalv1.AgentHello // fleet resolved
	out   chan *shoalv1.ConnectResponse
	// kill ends the stream with a status (e.g. the leader found a duplicate).
	kill func(error)
	// ready and reason are the last batch's; events the newest event of
	// each kind. Service.mu guards them.
	ready  bool
	reason string
	events map[shoalv1.InstanceEventKind]*shoalv1.InstanceEvent
}

// send queues a message without blocking; a full queue means the agent
// does not read, which is reported rather than waited on.
func (c *agentConn) send(m *shoalv1.ConnectResponse) error {
	select {
	case c.out <- m:
		return nil
	default:
		return fmt.Errorf("agent %s: send queue full", c.hello.GetInstanceId())
	}
}

type connectStream = grpc.BidiStreamingServer[shoalv1.ConnectRequest, shoalv1.ConnectResponse]

// Connect serves one agent: hello, welcome, then batches and results.
func (s *Service) Connect(st connectStream) error {
	ctx, cancel := context.WithCancelCause(st.Context())
	defer cancel(nil)

	first := make(chan *shoalv1.ConnectRequest, 1)
	firstErr := make(chan error, 1)
	go func() {
		m, err := st.Recv()
		if err != nil {
			firstErr <- err
			return
		}
		first <- m
	}()
	var hello *shoalv1.AgentHello
	timer := time.NewTimer(s.cfg.HelloTimeout)
	defer timer.Stop()
	select {
	case m := <-first:
		hello = m.GetHello()
	case err := <-firstErr:
		return err
	case <-timer.C:
		return status.Errorf(codes.DeadlineExceeded, "no hello within %s", s.cfg.HelloTimeout)
	}
	hello, err := s.admit(st, hello)
	if err != nil {
		return err
	}
	id := hello.GetInstanceId()
	c := &agentConn{hello: hello, out: make(chan *shoalv1.ConnectResponse, 64), kill: cancel, events: map[shoalv1.InstanceEventKind]*shoalv1.InstanceEvent{}}

	s.mu.Lock()
	if old := s.conns[id]; old != nil {
		if !sameAgent(old.hello, hello) {
			s.mu.Unlock()
			s.m.streamRejected.WithLabelValues(reasonDuplicate).Inc()
			// Never say what the other agent sent: its start time and
			// address are what sameAgent compares, so echoing them would
			// hand a stranger the stream.
			return status.Errorf(codes.AlreadyExists, "instance %s is already streaming to node %s from another agent", id, s.cluster.NodeID())
		}
		// The same agent again: its old stream is dead but not yet noticed.
		old.kill(status.Error(codes.Aborted, "replaced by a newer stream from the same agent"))
	}
	s.conns[id] = c
	s.m.streams.Inc()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.conns[id] == c {
			delete(s.conns, id)
			_ = s.routeLocked(&clusterv1.InstanceReport{Hello: hello, Disconnected: true})
		}
		s.m.streams.Dec()
		s.mu.Unlock()
	}()

	cfg := &shoalv1.AgentConfig{Interval: hello.GetInterval(), MaxCustomMetrics: int32(s.cfg.MaxCustomMetrics)}
	if err := st.Send(&shoalv1.ConnectResponse{Msg: &shoalv1.ConnectResponse_Welcome{Welcome: &shoalv1.Welcome{
		NodeId: s.cluster.NodeID(), Fleet: hello.GetFleet(), LeaderRpcAddr: nemesis.RedirectAddr(s.cluster.LeaderAgentAddr()), Config: cfg,
	}}}); err != nil {
		return err
	}
	s.noteDropped(hello, hello.GetDroppedSamplesTotal())
	if err := s.route(&clusterv1.InstanceReport{Hello: hello}); err != nil {
		return s.refuse(err)
	}

	sendErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-c.out:
				if err := st.Send(m); err != nil {
					sendErr <- err
					return
				}
			}
		}
	}()
	recvd := make(chan *shoalv1.ConnectRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case recvd <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return ctx.Err()
		case err := <-sendErr:
			return err
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case m := <-recvd:
			if err := s.handle(c, m); err != nil {
				return err
			}
		}
	}
}

// admit checks the hello and resolves the fleet; its errors are statuses.
func (s *Service) admit(st connectStream, h *shoalv1.AgentHello) (*shoalv1.AgentHello, error) {
	if h.GetInstanceId() == "" {
		s.m.streamRejected.WithLabelValues(reasonNoIdentity).Inc()
		return nil, status.Error(codes.InvalidArgument, "hello: instance_id is required and the first message must be a hello")
	}
	// What the registry would refuse never streams: the same rules as the FSM.
	if err := fsm.ValidInstanceID(h.GetInstanceId()); err != nil {
		s.m.streamRejected.WithLabelValues(reasonBadIdentity).Inc()
		return nil, status.Errorf(codes.InvalidArgument, "hello: instance_%v", err)
	}
	if err := checkSpeaker(st.Context(), h.GetInstanceId()); err != nil {
		s.m.streamRejected.WithLabelValues(reasonWrongIdentity).Inc()
		return nil, err
	}
	if err := fsm.ValidPrivateIP(h.GetPrivateIp()); err != nil {
		s.m.streamRejected.WithLabelValues(reasonBadIdentity).Inc()
		return nil, status.Errorf(codes.InvalidArgument, "hello: %v", err)
	}
	h = proto.Clone(h).(*shoalv1.AgentHello)
	switch {
	case h.GetFleet() != "":
		if !s.reg.FleetExists(h.GetFleet()) {
			s.m.streamRejected.WithLabelValues(reasonUnknownFleet).Inc()
			return nil, status.Errorf(codes.NotFound, "hello: unknown fleet %q", h.GetFleet())
		}
	case h.GetAsg() != "":
		f, ok := s.reg.FleetForASG(h.GetAsg())
		if !ok {
			s.m.streamRejected.WithLabelValues(reasonUnknownFleet).Inc()
			return nil, status.Errorf(codes.NotFound, "hello: unknown fleet: no fleet drives Auto Scaling group %q", h.GetAsg())
		}
		h.Fleet = f
	default:
		s.m.streamRejected.WithLabelValues(reasonUnknownFleet).Inc()
		return nil, status.Error(codes.InvalidArgument, "hello: neither fleet nor asg is set")
	}
	if !s.cluster.IsLeader() && !s.forwarding() {
		s.m.streamRejected.WithLabelValues(reasonNoLeader).Inc()
		if addr := nemesis.RedirectAddr(s.cluster.LeaderAgentAddr()); addr != "" {
			st.SetTrailer(metadata.Pairs(LeaderHintKey, addr))
			return nil, status.Errorf(codes.Unavailable, "node %s has no link to the leader yet; go to the leader at %s", s.cluster.NodeID(), addr)
		}
		return nil, status.Errorf(codes.Unavailable, "node %s knows no leader", s.cluster.NodeID())
	}
	return h, nil
}

// checkSpeaker lets a caller with a certificate speak only for the
// instance its agent certificate names. Which roles may call Connect at all
// is the authorizer's business; a caller without a certificate reaches
// here only on an --insecure node.
func checkSpeaker(ctx context.Context, instanceID string) error {
	id, ok, err := tlsconf.PeerIdentity(ctx)
	switch {
	case err != nil:
		return status.Errorf(codes.Unauthenticated, "client certificate: %v", err)
	case !ok:
		return nil
	case id.Role != tlsconf.RoleAgent:
		return status.Errorf(codes.PermissionDenied, "a %s certificate may not speak for instance %s; only its agent certificate may", id.Role, instanceID)
	case id.Name != instanceID:
		return status.Errorf(codes.PermissionDenied, "agent certificate for %s may not speak for %s", id.Name, instanceID)
	}
	return nil
}

func (s *Service) refuse(err error) error {
	if errors.Is(err, ErrDuplicate) {
		s.m.streamRejected.WithLabelValues(reasonDuplicate).Inc()
		return status.Error(codes.AlreadyExists, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func (s *Service) handle(c *agentConn, m *shoalv1.ConnectRequest) error {
	switch msg := m.GetMsg().(type) {
	case *shoalv1.ConnectRequest_Batch:
		b := msg.Batch
		ok, rejected, reasons := s.validate(b.GetSamples(), s.cfg.Now())
		if rejected > 0 {
			ack := &shoalv1.BatchAck{Seq: b.GetSeq(), Rejected: uint32(rejected), RejectReason: reasons}
			if err := c.send(&shoalv1.ConnectResponse{Msg: &shoalv1.ConnectResponse_Ack{Ack: ack}}); err != nil {
				return status.Error(codes.ResourceExhausted, err.Error())
			}
		}
		s.noteDropped(c.hello, b.GetDroppedSamplesTotal())
		s.mu.Lock()
		c.ready, c.reason = b.GetReady(), b.GetReadyReason()
		s.mu.Unlock()
		rep := &clusterv1.InstanceReport{Hello: c.hello, Samples: ok, Ready: b.GetReady(), ReadyReason: b.GetReadyReason(),
			DroppedSamplesTotal: b.GetDroppedSamplesTotal()}
		if err := s.route(rep); err != nil {
			return s.refuse(err)
		}
	case *shoalv1.ConnectRequest_Event:
		if err := checkEvent(msg.Event); err != nil {
			s.em.rejected.Inc()
			return status.Error(codes.InvalidArgument, err.Error())
		}
		s.mu.Lock()
		c.events[msg.Event.GetKind()] = msg.Event
		rep := &clusterv1.InstanceReport{Hello: c.hello, Ready: c.ready, ReadyReason: c.reason, Events: []*shoalv1.InstanceEvent{msg.Event}}
		err := s.routeLocked(rep)
		s.mu.Unlock()
		if err != nil {
			return s.refuse(err)
		}
	case *shoalv1.ConnectRequest_CommandResult:
		s.commandResult(c.hello.GetInstanceId(), msg.CommandResult)
	case *shoalv1.ConnectRequest_Goodbye:
		return s.route(&clusterv1.InstanceReport{Hello: c.hello, Left: true})
	case *shoalv1.ConnectRequest_Hello:
		return status.Error(codes.InvalidArgument, "hello: sent twice on one stream")
	}
	return nil
}

// validate splits samples into accepted and rejected, counting the reasons.
func (s *Service) validate(samples []*shoalv1.Sample, now time.Time) (ok []*shoalv1.Sample, rejected int, reasons string) {
	why := map[string]int{}
	var first []string
	note := func(reason, detail string, n int) {
		if why[reason] == 0 {
			first = append(first, detail)
		}
		why[reason] += n
		rejected += n
		s.m.rejected.WithLabelValues(reason).Add(float64(n))
	}
	if len(samples) > s.cfg.MaxBatchSamples {
		note(reasonOversized, fmt.Sprintf("batch of %d samples exceeds the limit of %d", len(samples), s.cfg.MaxBatchSamples), len(samples))
		return nil, rejected, strings.Join(first, "; ")
	}
	future := now.Add(s.cfg.MaxFuture).UnixMilli()
	old := now.Add(-s.cfg.MaxAge).UnixMilli()
	for _, smp := range samples {
		if r, d := s.checkSample(smp, future, old); r != "" {
			note(r, d, 1)
			continue
		}
		ok = append(ok, smp)
	}
	s.m.accepted.Add(float64(len(ok)))
	sort.Strings(first)
	return ok, rejected, strings.Join(first, "; ")
}

func (s *Service) checkSample(smp *shoalv1.Sample, future, old int64) (reason, detail string) {
	ts := smp.GetUnixMs()
	switch {
	case ts > future:
		return reasonFuture, fmt.Sprintf("unix_ms %d is more than %s ahead of the coordinator's clock", ts, s.cfg.MaxFuture)
	case ts < old:
		return reasonTooOld, fmt.Sprintf("unix_ms %d is older than %s", ts, s.cfg.MaxAge)
	case len(smp.GetValues()) == 0:
		return reasonEmpty, "sample has no values"
	}
	custom := 0
	for name, v := range smp.GetValues() {
		if !builtin[name] {
			if !customName.MatchString(name) {
				return reasonBadName, fmt.Sprintf("metric name %q is not [a-zA-Z_][a-zA-Z0-9_]*", name)
			}
			custom++
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return reasonNotFinite, fmt.Sprintf("%s is %v", name, v)
		}
		if v < 0 {
			return reasonNegative, fmt.Sprintf("%s is negative (%v)", name, v)
		}
	}
	if custom > s.cfg.MaxCustomMetrics {
		return reasonTooManyCustom, fmt.Sprintf("%d custom metrics exceed the limit of %d", custom, s.cfg.MaxCustomMetrics)
	}
	return "", ""
}

// noteDropped counts drops an agent reports, once across its reconnects.
func (s *Service) noteDropped(h *shoalv1.AgentHello, total uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, start := h.GetInstanceId(), uint64(h.GetStartTime().AsTime().UnixNano())
	prev, ok := s.droppedSeen[id]
	switch {
	case !ok || prev[0] != start:
		s.m.agentDropped.Add(float64(total))
	case total > prev[1]:
		s.m.agentDropped.Add(float64(total - prev[1]))
	default:
		return
	}
	s.droppedSeen[id] = [2]uint64{start, total}
}

// route sends a report where it belongs: into the store on the leader, to
// the forwarder's queue on a follower.
func (s *Service) route(rep *clusterv1.InstanceReport) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routeLocked(rep)
}

func (s *Service) routeLocked(rep *clusterv1.InstanceReport) error {
	if s.cluster.IsLeader() {
		now := s.cfg.Now()
		id := rep.GetHello().GetInstanceId()
		if p := s.pending[id]; p != nil && p != rep {
			// Queued while this node was a follower: older samples, which
			// the ring takes only before the newer ones.
			delete(s.pending, id)
			if err := s.store.apply(p, s.cluster.NodeID(), now); err != nil {
				s.cfg.Logger.Warn("queued report refused after taking the lead", "instance", id, "err", err)
			}
		}
		err := s.store.apply(rep, s.cluster.NodeID(), now)
		if err == nil {
			s.m.observeLatency(rep, now)
		}
		if err == nil && s.onApply != nil {
			s.onApply(rep, now)
		}
		if err == nil {
			s.deliverEvents(rep)
		}
		return err
	}
	id := rep.GetHello().GetInstanceId()
	p := s.pending[id]
	if p == nil {
		s.pending[id] = rep
		return nil
	}
	// Merge into the queued report: newest state, all samples (bounded).
	samples := append(p.Samples, rep.GetSamples()...)
	if over := len(samples) - s.cfg.RingSize; over > 0 {
		samples = samples[over:]
	}
	left := p.GetLeft() || rep.GetLeft()
	events := append(p.Events, rep.GetEvents()...)
	if over := len(events) - maxEventsPerReport; over > 0 {
		s.em.rejected.Add(float64(over))
		events = events[over:]
	}
	*p = clusterv1.InstanceReport{Hello: rep.GetHello(), Samples: samples, Ready: rep.GetReady(), ReadyReason: rep.GetReadyReason(),
		DroppedSamplesTotal: max(p.GetDroppedSamplesTotal(), rep.GetDroppedSamplesTotal()), Disconnected: rep.GetDisconnected(), Left: left, Events: events}
	return nil
}

// commandResult hands an agent's result to the leader's waiting Drain.
func (s *Service) commandResult(instanceID string, res *shoalv1.CommandResult) {
	if s.cluster.IsLeader() {
		s.resolve(res)
		return
	}
	s.mu.Lock()
	s.fwdResults = append(s.fwdResults, &clusterv1.ForwardedCommandResult{InstanceId: instanceID, Result: res})
	s.mu.Unlock()
}

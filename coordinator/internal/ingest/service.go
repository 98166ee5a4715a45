package ingest

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Service is AgentService on one coordinator node.
type Service struct {
	shoalv1.UnimplementedAgentServiceServer

	cfg     Config
	cluster Cluster
	reg     Registry
	m       *metrics
	em      *eventMetrics

	mu sync.Mutex
	// conns are the agent streams this node holds.
	conns map[string]*agentConn
	// pending are reports waiting for the follower's next flush.
	pending map[string]*clusterv1.InstanceReport
	// fwdResults are command results waiting to go to the leader.
	fwdResults []*clusterv1.ForwardedCommandResult
	fwdUp      bool
	// Leader only.
	store       *store
	followers   map[string]*followerConn
	waiters     map[string]chan *shoalv1.CommandResult
	draining    map[string]bool
	leaderSince time.Time
	wasLeader   bool
	// droppedSeen is each instance's last reported drop count and agent
	// start, to count drops once across reconnects.
	droppedSeen map[string][2]uint64

	cmdSeq atomic.Uint64
	// onApply, when set (benchmarks), sees every report the leader applied.
	onApply func(rep *clusterv1.InstanceReport, at time.Time)
}

// New returns a Service for cfg (start from DefaultConfig); Register mounts
// it and Run drives its loops.
func New(cfg Config, cluster Cluster, reg Registry) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cluster == nil || reg == nil {
		return nil, fmt.Errorf("%w: cluster and registry are required", ErrConfig)
	}
	return &Service{
		cfg: cfg, cluster: cluster, reg: reg, m: newMetrics(cfg.Registerer), em: newEventMetrics(cfg.Registerer),
		conns: map[string]*agentConn{}, pending: map[string]*clusterv1.InstanceReport{},
		store: newStore(cfg.RingSize, cfg.StaleAfter), followers: map[string]*followerConn{},
		waiters: map[string]chan *shoalv1.CommandResult{}, draining: map[string]bool{},
		droppedSeen: map[string][2]uint64{},
	}, nil
}

// Register mounts AgentService on a gRPC server built by proto/rpc.
func (s *Service) Register(g *grpc.Server) { shoalv1.RegisterAgentServiceServer(g, s) }

// Run drives the follower's forwarding and the leader's reconciliation until
// ctx ends.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.forwardLoop(gctx) })
	g.Go(func() error { return s.reconcileLoop(gctx) })
	return g.Wait()
}

// Aggregates returns each metric's aggregate over fleet's instances in the
// last window. Only the leader has them; a follower returns nil.
func (s *Service) Aggregates(fleet string, window time.Duration) map[string]Agg {
	if !s.cluster.IsLeader() {
		return nil
	}
	since := s.cfg.Now().Add(-window).UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store.aggregates(fleet, since)
}

// Instances lists fleet's instances ("" for all) from the registry, with the
// leader's live view: latest metrics, readiness and last-report age (-1 when
// none). Instances that reported but whose registration is not committed yet
// are included as pending. On a follower it returns ErrNotLeader.
func (s *Service) Instances(fleet string) ([]*shoalv1.Instance, error) {
	if !s.cluster.IsLeader() {
		return nil, ErrNotLeader
	}
	regs := s.reg.ListInstances()
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []*shoalv1.Instance
	for _, r := range regs {
		if fleet != "" && r.GetFleet() != fleet {
			continue
		}
		seen[r.GetId()] = true
		out = append(out, s.store.instance(r, s.store.byID[r.GetId()], now))
	}
	for _, id := range s.store.ids() {
		in := s.store.byID[id]
		if seen[id] || (fleet != "" && in.fleet != fleet) {
			continue
		}
		out = append(out, s.store.instance(nil, in, now))
	}
	return out, nil
}

// Drain marks the instance draining (committed), sends its agent a drain
// command through whichever node holds its stream, and waits for the result
// or ctx. Leader only.
func (s *Service) Drain(ctx context.Context, instanceID string) (*shoalv1.CommandResult, error) {
	if !s.cluster.IsLeader() {
		return nil, ErrNotLeader
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = s.cfg.Now().Add(s.cfg.DrainTimeout)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	s.mu.Lock()
	in := s.store.byID[instanceID]
	if in == nil || !in.connected {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrNotConnected, instanceID)
	}
	s.draining[instanceID] = true
	s.mu.Unlock()
	if reg, ok := s.reg.Instance(instanceID); ok && reg.GetState() != shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
		if err := s.commit(ctx, "state", func(ctx context.Context) error {
			return s.reg.SetInstanceState(ctx, instanceID, shoalv1.InstanceState_INSTANCE_STATE_DRAINING)
		}); err != nil {
			return nil, fmt.Errorf("drain %s: commit draining: %w", instanceID, err)
		}
	}
	cmd := &shoalv1.AgentCommand{
		Id:   s.cluster.NodeID() + "-drain-" + strconv.FormatUint(s.cmdSeq.Add(1), 10),
		Kind: shoalv1.CommandKind_COMMAND_KIND_DRAIN,
	}
	if !deadline.IsZero() { // unset means no deadline; a zero time would be one long past
		cmd.Deadline = timestamppb.New(deadline)
	}
	wait := make(chan *shoalv1.CommandResult, 1)
	s.mu.Lock()
	s.waiters[cmd.Id] = wait
	err := s.deliverLocked(instanceID, cmd)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, cmd.Id)
		s.mu.Unlock()
	}()
	if err != nil {
		return nil, fmt.Errorf("drain %s: %w", instanceID, err)
	}
	select {
	case res := <-wait:
		return res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("drain %s: no result from the agent: %w", instanceID, ctx.Err())
	}
}

// deliverLocked sends cmd to the node holding instanceID's stream.
func (s *Service) deliverLocked(instanceID string, cmd *shoalv1.AgentCommand) error {
	in := s.store.byID[instanceID]
	if in == nil || !in.connected {
		return fmt.Errorf("%w: %s", ErrNotConnected, instanceID)
	}
	if in.owner == s.cluster.NodeID() {
		c := s.conns[instanceID]
		if c == nil {
			return fmt.Errorf("%w: %s (stream just ended)", ErrNotConnected, instanceID)
		}
		return c.send(&shoalv1.ConnectResponse{Msg: &shoalv1.ConnectResponse_Command{Command: cmd}})
	}
	f := s.followers[in.owner]
	if f == nil {
		return fmt.Errorf("%w: %s (node %s has no forward stream)", ErrNotConnected, instanceID, in.owner)
	}
	return f.send(&clusterv1.ForwardAgentsResponse{Msg: &clusterv1.ForwardAgentsResponse_Command{Command: &clusterv1.ForwardedCommand{InstanceId: instanceID, Command: cmd}}})
}

// resolve hands a command result to the Drain waiting for it.
func (s *Service) resolve(res *shoalv1.CommandResult) {
	s.mu.Lock()
	w := s.waiters[res.GetId()]
	s.mu.Unlock()
	if w != nil {
		select {
		case w <- res:
		default:
		}
	}
}

func (s *Service) commit(ctx context.Context, op string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CommitTimeout)
	defer cancel()
	s.m.commits.WithLabelValues(op).Inc()
	return f(ctx)
}

package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/coordinator/internal/authz"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// ErrUnknownFleet is what a BackendsFunc returns for a fleet that does not exist.
var ErrUnknownFleet = errors.New("unknown fleet")

// BackendsFunc returns a fleet's current backends as the leader sees them.
type BackendsFunc func(fleet string) ([]*shoalv1.Backend, error)

// Leadership tells the service whether to serve streams or pipe them to the leader.
type Leadership interface {
	IsLeader() bool
	LeaderRPCAddr() string
}

// Config tunes the service. Start from DefaultConfig.
type Config struct {
	// LeaseTTL is how long an LB stays live after its last report.
	LeaseTTL time.Duration
	// PollEvery is how often a stream looks for a changed set.
	PollEvery time.Duration
	// ResendEvery re-sends an unchanged set so LBs notice a dead stream.
	ResendEvery time.Duration
	// ReconnectGrace is how long an LB whose stream ended still holds drains,
	// and how long a new leader, which never saw the LBs that were on the old
	// one, holds them until some LB of the fleet reports to it. An LB gone
	// longer may be gone for good, so it stops counting.
	ReconnectGrace time.Duration
	// DialOptions are appended to rpc.DialOptions when a follower passes
	// an LB's stream on to the leader (serve adds its TLS credentials).
	DialOptions []grpc.DialOption
	// Now is the clock; tests inject one.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	return Config{
		LeaseTTL:       10 * time.Second,
		PollEvery:      200 * time.Millisecond,
		ResendEvery:    3 * time.Second,
		ReconnectGrace: 10 * time.Second,
		Now:            time.Now,
		Logger:         slog.Default(),
	}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	switch {
	case c.LeaseTTL <= 0:
		return fmt.Errorf("feed lease ttl (%v) must be > 0", c.LeaseTTL)
	case c.PollEvery <= 0:
		return fmt.Errorf("feed poll every (%v) must be > 0", c.PollEvery)
	case c.ResendEvery <= 0:
		return fmt.Errorf("feed resend every (%v) must be > 0", c.ResendEvery)
	case c.ReconnectGrace <= 0:
		return fmt.Errorf("feed reconnect grace (%v) must be > 0", c.ReconnectGrace)
	case c.Now == nil:
		return errors.New("feed now: required")
	case c.Logger == nil:
		return errors.New("feed logger: required")
	}
	return nil
}

// session is what the leader knows of one LB's view of one fleet.
type session struct {
	lbID, fleet string
	// streams counts the LB's open streams: a reconnect may open the new
	// one before the old one is seen to end.
	streams int
	// endedAt is when the last stream ended.
	endedAt    time.Time
	lastReport time.Time
	// reportedAt is when the last report arrived (lastReport also counts
	// the hello).
	reportedAt time.Time
	// sentVersion is the newest set version sent on the stream.
	sentVersion uint64
	// drainVersion[id] is the first version sent to this LB with id draining.
	drainVersion map[string]uint64
	report       *shoalv1.LBReport
	// rps is requests per second over the last report interval; rateKnown
	// says two reports have arrived to measure it.
	rps       float64
	rateKnown bool
}

type fleetSets struct {
	version uint64
	last    []*shoalv1.Backend
}

// Service implements shoalv1.BackendServiceServer.
type Service struct {
	shoalv1.UnimplementedBackendServiceServer

	cfg      Config
	backends BackendsFunc
	lead     Leadership

	mu       sync.Mutex
	sessions map[string]*session // key: fleet + "\x00" + lbID
	sets     map[string]*fleetSets
	conns    map[string]*grpc.ClientConn
	// leading and leaderSince are this node's own view of its leadership,
	// kept up to date by observeLeaderLocked; leadCh, when the Leadership
	// can tell, says that it changed in between.
	leading     bool
	leaderSince time.Time
	leadCh      <-chan bool
	leadCancel  func()

	reports  prometheus.Counter
	proxied  prometheus.Counter
	live     *prometheus.GaugeVec
	rejected *prometheus.CounterVec
}

// New returns a Service. reg may be nil.
func New(cfg Config, backends BackendsFunc, lead Leadership, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		cfg:      cfg,
		backends: backends,
		lead:     lead,
		sessions: map[string]*session{},
		sets:     map[string]*fleetSets{},
		conns:    map[string]*grpc.ClientConn{},
		reports:  prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_feed_reports_total", Help: "LB load reports received by this node."}),
		proxied:  prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_feed_proxied_streams_total", Help: "LB streams this follower piped to the leader."}),
		live:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shoal_feed_live_lbs", Help: "LBs holding a live lease, per fleet."}, []string{"fleet"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_feed_rejected_streams_total", Help: "LB streams refused, by reason."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(s.reports, s.proxied, s.live, s.rejected)
	}
	if sub, ok := lead.(subscriber); ok {
		s.leadCh, s.leadCancel = sub.Subscribe()
	}
	s.observeLeaderLocked(cfg.Now()) // no lock yet: s is not shared
	return s, nil
}

// subscriber is a Leadership that also announces changes (cluster.Node does).
// Without it a lost and regained leadership between two looks goes unseen.
type subscriber interface {
	Subscribe() (ch <-chan bool, cancel func())
}

// observeLeaderLocked reports whether this node leads now and restarts
// leaderSince when a new stretch of leadership began. It runs on every
// stream open, poll and report and on Drained, so a stretch is seen at most that
// late, which only lengthens the grace. s.mu must be held.
func (s *Service) observeLeaderLocked(now time.Time) bool {
	for changed := true; changed && s.leadCh != nil; {
		select {
		case <-s.leadCh:
			// Any change ends the stretch we knew of; IsLeader below says
			// whether a new one runs. Seen late, it only makes the grace
			// start later.
			s.leading = false
		default:
			changed = false
		}
	}
	if !s.lead.IsLeader() {
		s.leading = false
		return false
	}
	if !s.leading {
		s.leading, s.leaderSince = true, now
	}
	return true
}

// Register mounts the service on a gRPC server.
func (s *Service) Register(g *grpc.Server) { shoalv1.RegisterBackendServiceServer(g, s) }

// Close releases the connections used to pipe streams to the leader.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.conns {
		_ = c.Close()
		delete(s.conns, k)
	}
	if s.leadCancel != nil {
		s.leadCancel()
		s.leadCh, s.leadCancel = nil, nil
		s.leading = false
	}
}

// WatchBackends serves one LB stream.
func (s *Service) WatchBackends(stream shoalv1.BackendService_WatchBackendsServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	switch {
	case hello == nil:
		s.rejected.WithLabelValues("no_hello").Inc()
		return status.Error(codes.InvalidArgument, "first message must be hello")
	case hello.LbId == "":
		s.rejected.WithLabelValues("no_lb_id").Inc()
		return status.Error(codes.InvalidArgument, "hello.lb_id: must not be empty")
	case hello.Fleet == "":
		s.rejected.WithLabelValues("no_fleet").Inc()
		return status.Error(codes.InvalidArgument, "hello.fleet: must not be empty")
	}
	if !s.lead.IsLeader() {
		return s.pipe(stream, first)
	}
	if _, err := s.backends(hello.Fleet); err != nil {
		if errors.Is(err, ErrUnknownFleet) {
			s.rejected.WithLabelValues("unknown_fleet").Inc()
			return status.Errorf(codes.NotFound, "hello.fleet: unknown fleet %q", hello.Fleet)
		}
		return status.Errorf(codes.Unavailable, "backends of fleet %q: %v", hello.Fleet, err)
	}
	sess := s.open(hello)
	defer s.disconnect(sess)

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if r := m.GetReport(); r != nil {
				s.record(sess, r)
			}
		}
	}()

	tick := time.NewTicker(s.cfg.PollEvery)
	defer tick.Stop()
	var lastSent time.Time
	for {
		if !s.lead.IsLeader() {
			return status.Error(codes.Unavailable, "no longer the leader; reconnect")
		}
		set, changed, err := s.current(sess)
		if err != nil {
			if errors.Is(err, ErrUnknownFleet) {
				return status.Errorf(codes.NotFound, "fleet %q was deleted", sess.fleet)
			}
			s.cfg.Logger.Warn("feed: backends", "fleet", sess.fleet, "err", err)
		} else if changed || s.cfg.Now().Sub(lastSent) >= s.cfg.ResendEvery {
			if err := stream.Send(&shoalv1.WatchBackendsResponse{Backends: set}); err != nil {
				return err
			}
			lastSent = s.cfg.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-recvErr:
			// The LB closed or lost the stream; its lease runs out on its own.
			return nil
		case <-tick.C:
		}
	}
}

func key(fleet, lb string) string { return fleet + "\x00" + lb }

func (s *Service) open(h *shoalv1.LBHello) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observeLeaderLocked(s.cfg.Now())
	k := key(h.Fleet, h.LbId)
	sess, ok := s.sessions[k]
	if !ok {
		// A reconnecting LB keeps its drain evidence only through its next
		// report, which must again follow a set marked draining.
		sess = &session{lbID: h.LbId, fleet: h.Fleet}
	}
	sess.streams++
	sess.sentVersion = 0
	sess.drainVersion = map[string]uint64{}
	sess.lastReport = s.cfg.Now()
	s.sessions[k] = sess
	return sess
}

func (s *Service) disconnect(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.streams--
	if sess.streams == 0 {
		sess.endedAt = s.cfg.Now()
	}
}

// current returns the set to send on sess and whether it differs from the
// last one sent there.
func (s *Service) current(sess *session) (*shoalv1.BackendSet, bool, error) {
	bs, err := s.backends(sess.fleet)
	if err != nil {
		return nil, false, err
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].InstanceId < bs[j].InstanceId })
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observeLeaderLocked(s.cfg.Now())
	fs := s.sets[sess.fleet]
	if fs == nil {
		fs = &fleetSets{}
		s.sets[sess.fleet] = fs
	}
	if fs.version == 0 || !sameSet(fs.last, bs) {
		fs.version++
		fs.last = bs
	}
	set := &shoalv1.BackendSet{Fleet: sess.fleet, Version: fs.version, Backends: fs.last}
	changed := sess.sentVersion != fs.version
	sess.sentVersion = fs.version
	for _, b := range fs.last {
		if b.State == shoalv1.BackendState_BACKEND_STATE_DRAINING {
			if _, ok := sess.drainVersion[b.InstanceId]; !ok {
				sess.drainVersion[b.InstanceId] = fs.version
			}
		}
	}
	return set, changed, nil
}

func sameSet(a, b []*shoalv1.Backend) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func (s *Service) record(sess *session, r *shoalv1.LBReport) {
	s.reports.Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.observeLeaderLocked(now)
	if prev := sess.report; prev != nil && r.GetReportTime().AsTime().After(prev.GetReportTime().AsTime()) {
		var n uint64
		for _, b := range r.Backends {
			n += b.Requests
		}
		sess.rps = float64(n) / r.GetReportTime().AsTime().Sub(prev.GetReportTime().AsTime()).Seconds()
		sess.rateKnown = true
	}
	sess.report = r
	sess.lastReport = now
	sess.reportedAt = now
}

// liveLocked returns the live sessions of fleet. s.mu must be held.
func (s *Service) liveLocked(fleet string) []*session {
	now := s.cfg.Now()
	var out []*session
	for k, sess := range s.sessions {
		if sess.fleet != fleet {
			continue
		}
		if now.Sub(sess.lastReport) > s.cfg.LeaseTTL {
			if sess.streams == 0 && now.Sub(sess.endedAt) > s.cfg.ReconnectGrace {
				delete(s.sessions, k)
			}
			continue
		}
		out = append(out, sess)
	}
	s.live.WithLabelValues(fleet).Set(float64(len(out)))
	return out
}

// LiveLBs lists the ids of the LBs holding a live lease on fleet.
func (s *Service) LiveLBs(fleet string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, sess := range s.liveLocked(fleet) {
		ids = append(ids, sess.lbID)
	}
	sort.Strings(ids)
	return ids
}

// RequestsPerTarget is the fleet's request rate across its live LBs divided
// by the number of active backends; ok is false with no live LB or no active
// backend.
func (s *Service) RequestsPerTarget(fleet string) (float64, bool) {
	bs, err := s.backends(fleet)
	if err != nil {
		return 0, false
	}
	active := 0
	for _, b := range bs {
		if b.State == shoalv1.BackendState_BACKEND_STATE_ACTIVE {
			active++
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.liveLocked(fleet)
	if len(live) == 0 || active == 0 {
		return 0, false
	}
	var rps float64
	known := false
	for _, sess := range live {
		rps += sess.rps
		known = known || sess.rateKnown
	}
	if !known {
		return 0, false
	}
	return rps / float64(active), true
}

// InFlight sums each backend's in-flight requests across the fleet's live LBs.
func (s *Service) InFlight(fleet string) map[string]uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]uint32{}
	for _, sess := range s.liveLocked(fleet) {
		if sess.report == nil {
			continue
		}
		for _, b := range sess.report.Backends {
			out[b.InstanceId] += b.InFlight
		}
	}
	return out
}

// pipe relays an LB stream to the leader, so LBs need not know who leads.
func (s *Service) pipe(down shoalv1.BackendService_WatchBackendsServer, first *shoalv1.WatchBackendsRequest) error {
	addr := s.lead.LeaderRPCAddr()
	if addr == "" {
		return status.Error(codes.Unavailable, "no leader")
	}
	conn, err := s.conn(addr)
	if err != nil {
		return status.Errorf(codes.Unavailable, "dial leader %s: %v", addr, err)
	}
	s.proxied.Inc()
	// The leader believes the LB's identity, stamped by this node, because
	// this node's own certificate is a server's.
	ctx, cancel := context.WithCancel(authz.ForwardContext(down.Context()))
	defer cancel()
	up, err := shoalv1.NewBackendServiceClient(conn).WatchBackends(ctx)
	if err != nil {
		return status.Errorf(codes.Unavailable, "leader %s: %v", addr, err)
	}
	if err := up.Send(first); err != nil {
		return status.Errorf(codes.Unavailable, "leader %s: %v", addr, err)
	}
	errc := make(chan error, 2)
	go func() {
		for {
			m, err := down.Recv()
			if err != nil {
				_ = up.CloseSend()
				errc <- nil
				return
			}
			if err := up.Send(m); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() {
		for {
			m, err := up.Recv()
			if err != nil {
				errc <- err
				return
			}
			if err := down.Send(m); err != nil {
				errc <- err
				return
			}
		}
	}()
	err = <-errc
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Errorf(codes.Unavailable, "leader %s: %v", addr, err)
}

func (s *Service) conn(addr string) (*grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.conns[addr]; ok {
		return c, nil
	}
	c, err := rpc.Dial(addr, s.cfg.DialOptions...)
	if err != nil {
		return nil, err
	}
	s.conns[addr] = c
	return c, nil
}

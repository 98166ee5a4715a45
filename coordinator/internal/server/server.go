package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/apierr"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/decide"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// PolicyValidator checks a scaling policy against a fleet's bounds. The
// default is decide.Validate, so the API and the scaler agree on what a
// valid policy is.
type PolicyValidator func(p *shoalv1.ScalingPolicy, min, max int32) error

// Config configures a Server.
type Config struct {
	Node   *cluster.Node
	Logger *slog.Logger
	// ValidatePolicy defaults to decide.Validate.
	ValidatePolicy PolicyValidator
	// SnapshotChunk is the SaveSnapshot chunk size; default 64 KiB.
	SnapshotChunk int
	// MaxSnapshotBytes bounds RestoreSnapshot; the snapshot travels through
	// one raft entry and, from a follower, one forwarded gRPC message.
	MaxSnapshotBytes int
	// GRPCOptions are appended to rpc.ServerOptions.
	GRPCOptions []grpc.ServerOption
	// Registry serves /metrics; the node's other services register on the
	// same one. Nil makes a private one.
	Registry *prometheus.Registry
	// Live is the leader's view of what is not in the FSM; nil serves the
	// registry alone.
	Live Live
	// ForwardAgents serves ClusterService.ForwardAgents (ingest owns it);
	// nil refuses forwarded agents.
	ForwardAgents func(clusterv1.ClusterService_ForwardAgentsServer) error
	// Insecure is reported by GetStatus: the node runs without TLS and ACLs.
	Insecure bool
	// LoadBalancers lists a fleet's live LB sessions as last reported (the
	// feed's, on the leader); nil lists none.
	LoadBalancers func(fleet string) []*shoalv1.LoadBalancer
}

// Validate says which field is wrong.
func (c Config) Validate() error {
	if c.Node == nil {
		return errors.New("node: required")
	}
	if c.MaxSnapshotBytes > rpc.MaxMessageBytes-1024 {
		return fmt.Errorf("max snapshot bytes (%d) must leave room in a %d-byte gRPC message", c.MaxSnapshotBytes, rpc.MaxMessageBytes)
	}
	return nil
}

// Server is the coordinator's gRPC and HTTP front: ControlService on the
// --rpc-addr port, /metrics and /healthz on the --http-addr port.
type Server struct {
	shoalv1.UnimplementedControlServiceServer
	cfg  Config
	node *cluster.Node
	log  *slog.Logger
	grpc *grpc.Server
	reg  *prometheus.Registry
	live Live
}

// New builds the gRPC server with ControlService and ClusterService
// registered. Register more services (AgentService, BackendService) on
// GRPC() before Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ValidatePolicy == nil {
		cfg.ValidatePolicy = decide.Validate
	}
	if cfg.SnapshotChunk <= 0 {
		cfg.SnapshotChunk = 64 << 10
	}
	if cfg.MaxSnapshotBytes <= 0 {
		cfg.MaxSnapshotBytes = rpc.MaxMessageBytes - 64<<10
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, node: cfg.Node, log: cfg.Logger, reg: cfg.Registry, live: cfg.Live}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.grpc = rpc.NewServer(cfg.GRPCOptions...)
	shoalv1.RegisterControlServiceServer(s.grpc, s)
	shoalv1.RegisterACLServiceServer(s.grpc, &aclService{s: s})
	clusterv1.RegisterClusterServiceServer(s.grpc, &clusterService{node: cfg.Node, forward: cfg.ForwardAgents})
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.reg.MustRegister(cfg.Node.Collectors()...)
	return s, nil
}

// GRPC is the one gRPC server of the node; later services register here.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Serve serves gRPC on lis until Stop.
func (s *Server) Serve(lis net.Listener) error { return s.grpc.Serve(lis) }

// Stop ends in-flight calls within timeout, then closes the server.
func (s *Server) Stop(timeout time.Duration) {
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.grpc.Stop()
	}
}

// HTTPHandler serves /metrics and /healthz.
func (s *Server) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		// Healthy means: raft runs and this node knows a leader, so it can
		// serve or forward every request.
		if s.node.LeaderID() == "" {
			http.Error(w, "no leader", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok %s leader=%s\n", s.node.Raft().State(), s.node.LeaderID())
	})
	return mux
}

// toStatus maps internal errors to gRPC status errors whose message names
// the field and the reason.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	msg := err.Error()
	switch {
	case errors.Is(err, fsm.ErrInvalid), errors.Is(err, decide.ErrInvalidPolicy):
		return status.Error(codes.InvalidArgument, oneLine(msg))
	case errors.Is(err, cluster.ErrInvalidRequest):
		msg = strings.TrimPrefix(msg, cluster.ErrInvalidRequest.Error()+": ")
		return status.Error(codes.InvalidArgument, oneLine(msg))
	case errors.Is(err, fsm.ErrNotFound), errors.Is(err, cluster.ErrUnknownPeer):
		return status.Error(codes.NotFound, msg)
	case errors.Is(err, fsm.ErrExists):
		return status.Error(codes.AlreadyExists, msg)
	// FAILED_PRECONDITION covers both a conflict and a node that does not
	// lead, and only the second is safe to send again: the reason says which.
	case errors.Is(err, fsm.ErrConflict):
		return apierr.Error(codes.FailedPrecondition, apierr.Conflict, msg)
	case errors.Is(err, cluster.ErrNoLeader):
		return apierr.Error(codes.Unavailable, apierr.NoLeader, msg)
	case errors.Is(err, cluster.ErrNotLeader):
		return apierr.Error(codes.FailedPrecondition, apierr.NotLeader, msg)
	case errors.Is(err, cluster.ErrUnknownOutcome):
		return apierr.Error(codes.Aborted, apierr.UnknownOutcome, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	}
	return status.Error(codes.Internal, msg)
}

// oneLine joins a multi-problem error (errors.Join) for one-line output.
func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", "; ")
}

package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Cluster is what ingest needs to know about raft leadership.
type Cluster interface {
	IsLeader() bool
	// LeaderRPCAddr is the leader's --rpc-addr, "" when there is none.
	LeaderRPCAddr() string
	// LeaderAgentAddr is where agents reach the leader: its --agent-addr,
	// or its --rpc-addr without one; "" when there is no leader.
	LeaderAgentAddr() string
	NodeID() string
}

// Registry reads the replicated state (locally, on any node) and commits
// instance membership through raft (on the leader).
type Registry interface {
	// FleetForASG returns the fleet whose Auto Scaling group is asg.
	FleetForASG(asg string) (fleet string, ok bool)
	FleetExists(name string) bool
	Instance(id string) (*shoalv1.Instance, bool)
	ListInstances() []*shoalv1.Instance
	RegisterInstance(ctx context.Context, in *shoalv1.Instance) error
	SetInstanceState(ctx context.Context, id string, state shoalv1.InstanceState) error
	// LeaveInstance removes the instance from the registry.
	LeaveInstance(ctx context.Context, id string) error
}

var (
	// ErrNotLeader is returned by leader-only calls on a follower.
	ErrNotLeader = errors.New("not the leader")
	// ErrNotConnected means no node holds a live stream for the instance.
	ErrNotConnected = errors.New("instance has no live agent stream")
	// ErrDuplicate means another agent already streams for the instance id.
	ErrDuplicate = errors.New("instance id already streaming")
	// ErrRefused means the leader refused a forwarded report: a malformed
	// identity, or a stream introducing too many new ids.
	ErrRefused = errors.New("instance report refused")
	// ErrConfig wraps configuration errors.
	ErrConfig = errors.New("invalid ingest config")
)

// LeaderHintKey is the trailer naming the node an agent should go to when
// this one refuses its stream (agent/internal/stream uses the same key).
const LeaderHintKey = "shoal-leader-rpc-addr"

// Config tunes the service. Start from DefaultConfig: Validate refuses zero
// values rather than guessing what they meant.
type Config struct {
	// MaxBatchSamples bounds one SampleBatch (default 900: a full agent
	// buffer after 15 minutes away is sent in smaller batches anyway).
	MaxBatchSamples int
	// MaxFuture is how far ahead of this node's clock a sample may be (10 s).
	MaxFuture time.Duration
	// MaxAge is how old a sample may be; older ones would fall out of the
	// ring at once (15 min).
	MaxAge time.Duration
	// MaxCustomMetrics bounds custom names in one sample (32).
	MaxCustomMetrics int
	// RingSize is samples kept per instance (900: 15 min at 1 s).
	RingSize int
	// MaxNewInstancesPerStream bounds the distinct instance ids one Forward
	// stream may introduce to the leader's store and that the store still
	// holds (10,000: above the 7,500
	// agents one node was measured to carry, since a follower replays every
	// stream it holds to a new leader). Past it, reports for further new ids
	// are refused, so one stream cannot fill the registry with invented ids.
	MaxNewInstancesPerStream int
	// StaleAfter is the silence after which an instance is unhealthy (5 s).
	StaleAfter time.Duration
	// ReconcileEvery is how often the leader compares instance states with
	// the registry and commits changes (1 s).
	ReconcileEvery time.Duration
	// ForwardEvery is how often a follower flushes reports to the leader
	// (50 ms). At 1 Hz per agent each report carries one sample whatever the
	// period, so a short one costs wake-ups, not messages, and keeps the
	// sample-to-aggregate latency low.
	ForwardEvery time.Duration
	// CommitTimeout bounds one registry commit (5 s).
	CommitTimeout time.Duration
	// HelloTimeout bounds the wait for an agent's hello (10 s).
	HelloTimeout time.Duration
	// DrainTimeout is a drain's deadline when the caller's ctx has none (5 min).
	DrainTimeout time.Duration
	// DialOptions are appended to rpc.DialOptions for the Forward stream.
	DialOptions []grpc.DialOption
	// Now reads the time that samples and silences are judged by (time.Now).
	// The loops tick on the runtime's timers, so tests that move time run
	// under testing/synctest rather than swap this alone.
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer gets the ingest counters; nil registers nothing.
	Registerer prometheus.Registerer
	// OnEvent, when set, gets every instance event on the leader (the
	// scaler's notice queue).
	OnEvent EventFunc
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	return Config{
		MaxBatchSamples:          900,
		MaxFuture:                10 * time.Second,
		MaxAge:                   15 * time.Minute,
		MaxCustomMetrics:         32,
		RingSize:                 900,
		MaxNewInstancesPerStream: 10_000,
		StaleAfter:               5 * time.Second,
		ReconcileEvery:           time.Second,
		ForwardEvery:             50 * time.Millisecond,
		CommitTimeout:            5 * time.Second,
		HelloTimeout:             10 * time.Second,
		DrainTimeout:             5 * time.Minute,
		Now:                      time.Now,
		Logger:                   slog.Default(),
	}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"max batch samples", c.MaxBatchSamples}, {"max custom metrics", c.MaxCustomMetrics}, {"ring size", c.RingSize}, {"max new instances per stream", c.MaxNewInstancesPerStream}} {
		if f.v < 1 {
			return fmt.Errorf("%w: %s (%d) must be >= 1", ErrConfig, f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"max future", c.MaxFuture}, {"max age", c.MaxAge}, {"stale after", c.StaleAfter}, {"reconcile every", c.ReconcileEvery},
		{"forward every", c.ForwardEvery}, {"commit timeout", c.CommitTimeout}, {"hello timeout", c.HelloTimeout}, {"drain timeout", c.DrainTimeout}} {
		if f.v <= 0 {
			return fmt.Errorf("%w: %s (%s) must be > 0", ErrConfig, f.name, f.v)
		}
	}
	switch {
	case c.Now == nil:
		return fmt.Errorf("%w: now: required (time.Now in production)", ErrConfig)
	case c.Logger == nil:
		return fmt.Errorf("%w: logger: required", ErrConfig)
	}
	return nil
}

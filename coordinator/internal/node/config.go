package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/backup"
	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/feed"
	"github.com/shoal-dev/shoal/coordinator/internal/ingest"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
	"github.com/shoal-dev/shoal/coordinator/internal/scaler"
)

// Clouds a node can run against.
const (
	// CloudAWS is the AWS APIs (AWS_ENDPOINT_URL points them at the local
	// cloud).
	CloudAWS = "aws"
	// CloudNone keeps state only: no scaling and no CloudWatch, as in tests
	// of the cluster itself.
	CloudNone = "none"
)

// Config is everything one coordinator node needs. Start from
// DefaultConfig; serve's flags bind to its fields. Each setting lives in
// exactly one field: the scaler's drain timeout is also the LB feed's drain
// deadline, the publish interval also sizes the heartbeat alarm.
type Config struct {
	// Cluster is the raft node: id, data dir, raft addresses and timings.
	// RaftAdvertise and RPCAdvertise must be set (serve defaults them to
	// the bind addresses).
	Cluster cluster.Config
	// RPCAddr is the gRPC bind address (every service); HTTPAddr serves
	// /metrics and /healthz.
	RPCAddr  string
	HTTPAddr string
	// AgentAddr, when set, is a second gRPC listener that serves only
	// AgentService, so security groups can let the fleet reach that port
	// alone. Empty serves agents on RPCAddr only.
	AgentAddr string

	// Security is TLS, ACLs and agent enrollment.
	Security Security

	// Cloud is CloudAWS or CloudNone.
	Cloud string
	AWS   awscloud.Config

	Scaler scaler.Config
	// Publish carries the cluster name, the publish interval and the
	// custom-metric cap; the alarm reconciler shares the first two.
	Publish publish.Config
	// AlarmEvery is how often alarms are brought in step with policies.
	AlarmEvery time.Duration
	// HeartbeatActions are the dead-man's switch alarm's actions.
	HeartbeatActions []string
	// Ingest's MaxCustomMetrics is Publish.MaxCustomMetrics: an agent may
	// send no more custom names than a fleet may publish.
	Ingest ingest.Config
	Feed   feed.Config
	// Snapshots writes the state to files on a schedule; off without a
	// Dir.
	Snapshots backup.Config

	// LeaderCheckEvery is how often the node looks at its raft state, on
	// top of leadership notifications.
	LeaderCheckEvery time.Duration
	// GRPCStopTimeout bounds gRPC's graceful stop; HTTPStopTimeout the HTTP
	// server's.
	GRPCStopTimeout time.Duration
	HTTPStopTimeout time.Duration

	Logger *slog.Logger
}

// DefaultConfig returns the production settings; addresses, node id and
// data dir are left for the caller.
func DefaultConfig() Config {
	return Config{
		Cluster:          cluster.DefaultConfig(),
		Security:         DefaultSecurity(),
		Cloud:            CloudAWS,
		AWS:              awscloud.DefaultConfig(),
		Scaler:           scaler.DefaultConfig(),
		Publish:          publish.DefaultConfig(),
		AlarmEvery:       10 * time.Second,
		Ingest:           ingest.DefaultConfig(),
		Feed:             feed.DefaultConfig(),
		Snapshots:        backup.DefaultConfig(),
		LeaderCheckEvery: 500 * time.Millisecond,
		GRPCStopTimeout:  2 * time.Second,
		HTTPStopTimeout:  time.Second,
		Logger:           slog.Default(),
	}
}

// Validate names the first wrong field (by serve's flag name where there is
// one) and why. It only reads c.
func (c Config) Validate() error {
	switch {
	case c.Cluster.NodeID == "":
		return errors.New("node-id: required")
	case c.Cluster.DataDir == "" && c.Cluster.LogStoreImpl == nil:
		return errors.New("data-dir: required")
	case c.Cluster.RaftBind == "" && c.Cluster.Transport == nil:
		return errors.New("raft-addr: required")
	case c.RPCAddr == "":
		return errors.New("rpc-addr: required")
	case c.HTTPAddr == "":
		return errors.New("http-addr: required")
	case c.Cloud != CloudAWS && c.Cloud != CloudNone:
		return fmt.Errorf("cloud (%q): want %s or %s", c.Cloud, CloudAWS, CloudNone)
	case c.Publish.Interval < time.Second:
		return fmt.Errorf("publish-interval (%v) must be >= 1s", c.Publish.Interval)
	case c.Publish.Cluster == "":
		return errors.New("cluster-name: required")
	case c.Publish.MaxCustomMetrics < 0:
		return fmt.Errorf("max-custom-metrics (%d) must be >= 0", c.Publish.MaxCustomMetrics)
	case c.AlarmEvery <= 0:
		return fmt.Errorf("alarm-reconcile-interval (%v) must be > 0", c.AlarmEvery)
	case c.Ingest.StaleAfter <= 0:
		return fmt.Errorf("agent-stale-after (%v) must be > 0", c.Ingest.StaleAfter)
	case c.LeaderCheckEvery <= 0:
		return fmt.Errorf("leader check every (%v) must be > 0", c.LeaderCheckEvery)
	case c.GRPCStopTimeout <= 0:
		return fmt.Errorf("grpc stop timeout (%v) must be > 0", c.GRPCStopTimeout)
	case c.HTTPStopTimeout <= 0:
		return fmt.Errorf("http stop timeout (%v) must be > 0", c.HTTPStopTimeout)
	case c.Logger == nil:
		return errors.New("logger: required")
	}
	cc := c.Cluster
	if cc.AgentAdvertise == "" {
		cc.AgentAdvertise = c.AgentAddr // what New does
	}
	if err := cc.Validate(); err != nil {
		return err
	}
	if err := c.Scaler.Validate(); err != nil {
		return err
	}
	if err := c.Publish.Validate(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err := c.Ingest.Validate(); err != nil {
		return err
	}
	if err := c.Feed.Validate(); err != nil {
		return err
	}
	if err := c.Snapshots.Validate(); err != nil {
		return err
	}
	if c.Cloud == CloudAWS {
		if err := c.AWS.Validate(); err != nil {
			return fmt.Errorf("aws: %w", err)
		}
	}
	return c.Security.Validate(c.Cloud)
}

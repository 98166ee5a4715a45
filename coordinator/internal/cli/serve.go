package cli

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/node"
)

// serveFlags are serve's flags that are not a node.Config field as they
// stand: they are resolved into one by config.
type serveFlags struct {
	cfg           node.Config
	advertiseRPC  string
	advertiseRaft string
	join          string
	logLevel      string
	logFormat     string
}

func serveCmd(e *env) *cobra.Command {
	f := serveFlags{cfg: node.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "serve --node-id ID --data-dir DIR --raft-addr HOST:PORT --rpc-addr HOST:PORT --http-addr HOST:PORT (--ca-cert FILE --cert FILE --key FILE | --insecure) [--bootstrap-expect N --join RPCADDR,RPCADDR | --bootstrap | --join RPCADDR[,RPCADDR]]",
		Short: "run a coordinator node",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(e.stderr)
			if err != nil {
				return err
			}
			n, err := node.New(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return n.Run(cmd.Context())
		},
	}
	f.register(cmd)
	return cmd
}

// register binds cmd's flags to f, defaulting to f's current values.
func (f *serveFlags) register(cmd *cobra.Command) {
	c, fl := &f.cfg, cmd.Flags()
	fl.StringVar(&c.Cluster.NodeID, "node-id", c.Cluster.NodeID, "this node's id, stable across restarts")
	fl.StringVar(&c.Cluster.DataDir, "data-dir", c.Cluster.DataDir, "directory for the raft log and snapshots")
	fl.StringVar(&c.Cluster.RaftBind, "raft-addr", c.Cluster.RaftBind, "raft transport bind address")
	fl.StringVar(&c.RPCAddr, "rpc-addr", c.RPCAddr, "gRPC bind address (every service)")
	fl.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP bind address for /metrics and /healthz")
	fl.StringVar(&f.advertiseRaft, "advertise-raft", "", "raft address peers dial (default: --raft-addr; required when binding 0.0.0.0)")
	fl.StringVar(&c.Cluster.AgentAdvertise, "advertise-agent", c.Cluster.AgentAdvertise, "agent address agents dial (default: --agent-addr; needed when binding 0.0.0.0)")
	fl.StringVar(&f.advertiseRPC, "advertise-rpc", "", "gRPC address peers and clients dial (default: --rpc-addr; required when binding 0.0.0.0)")
	fl.BoolVar(&c.Cluster.Bootstrap, "bootstrap", c.Cluster.Bootstrap, "form a new cluster of this node (first start only; prefer --bootstrap-expect, which is safe to leave in place)")
	fl.IntVar(&c.Cluster.BootstrapExpect, "bootstrap-expect", c.Cluster.BootstrapExpect, "form a cluster once N servers with no state find each other through --join; a node with state, or that finds a cluster, joins it instead")
	fl.StringVar(&f.join, "join", "", "comma-separated gRPC addresses of servers to ask to join, retried until one answers (the retry-join list of --bootstrap-expect)")
	fl.StringVar(&c.Snapshots.Dir, "snapshot-dir", c.Snapshots.Dir, "write the state here every --snapshot-interval, as files `snapshot restore` takes (empty: off)")
	fl.DurationVar(&c.Snapshots.Interval, "snapshot-interval", c.Snapshots.Interval, "time between scheduled snapshots")
	fl.IntVar(&c.Snapshots.Retain, "snapshot-retain", c.Snapshots.Retain, "scheduled snapshots of this node kept in --snapshot-dir")
	fl.StringVar(&c.Cluster.LogStore, "log-store", c.Cluster.LogStore, "raft log store: wal or boltdb")
	fl.DurationVar(&c.Cluster.HeartbeatTimeout, "raft-heartbeat-timeout", c.Cluster.HeartbeatTimeout, "raft heartbeat timeout")
	fl.DurationVar(&c.Cluster.ElectionTimeout, "raft-election-timeout", c.Cluster.ElectionTimeout, "raft election timeout")
	fl.DurationVar(&c.Cluster.LeaderLeaseTimeout, "raft-leader-lease-timeout", c.Cluster.LeaderLeaseTimeout, "raft leader lease timeout")
	fl.DurationVar(&c.Cluster.CommitTimeout, "raft-commit-timeout", c.Cluster.CommitTimeout, "raft commit timeout")
	fl.DurationVar(&c.Cluster.NoLeaderWait, "no-leader-wait", c.Cluster.NoLeaderWait, "how long a write waits for a leader before failing")
	fl.DurationVar(&c.Cluster.ShutdownTimeout, "shutdown-timeout", c.Cluster.ShutdownTimeout, "bound on leadership transfer and shutdown")
	fl.Uint64Var(&c.Cluster.SnapshotThreshold, "raft-snapshot-threshold", c.Cluster.SnapshotThreshold, "log entries between raft snapshots")
	fl.DurationVar(&c.Cluster.SnapshotInterval, "raft-snapshot-interval", c.Cluster.SnapshotInterval, "how often raft checks whether to snapshot")
	fl.Uint64Var(&c.Cluster.TrailingLogs, "raft-trailing-logs", c.Cluster.TrailingLogs, "log entries kept after a snapshot; a follower further behind gets the snapshot")
	fl.StringVar(&c.Cloud, "cloud", c.Cloud, "aws (AWS APIs; AWS_ENDPOINT_URL points them at the local cloud) or none (state only: no scaling, no CloudWatch)")
	fl.StringVar(&c.AWS.Region, "aws-region", c.AWS.Region, "AWS region (default: AWS_REGION / shared config)")
	fl.DurationVar(&c.Scaler.EvalInterval, "eval-interval", c.Scaler.EvalInterval, "how often the leader evaluates every fleet")
	fl.DurationVar(&c.Scaler.DrainTimeout, "drain-timeout", c.Scaler.DrainTimeout, "longest wait for LBs to report a scale-in victim idle")
	fl.DurationVar(&c.Scaler.SpotDrainMargin, "spot-drain-margin", c.Scaler.SpotDrainMargin, "a Spot-interrupted instance's drain ends this long before EC2's notice time")
	fl.BoolVar(&c.Scaler.RebalanceReplace, "rebalance-replace", c.Scaler.RebalanceReplace, "on a rebalance recommendation, drain and replace the instance at once (without it the instance is only the first scale-in victim)")
	fl.DurationVar(&c.Scaler.HookHeartbeat, "hook-heartbeat", c.Scaler.HookHeartbeat, "heartbeat timeout of the TERMINATING hook put on a group that lacks one (30s-2h); a group's existing hook keeps its own")
	fl.DurationVar(&c.Feed.ReconnectGrace, "lb-reconnect-grace", c.Feed.ReconnectGrace, "how long an LB that lost its stream, or any LB after a leader change, still holds scale-in drains")
	fl.DurationVar(&c.Scaler.AgentGrace, "agent-grace", c.Scaler.AgentGrace, "how long a launched instance may run before a silent agent gets it flagged")
	fl.DurationVar(&c.Publish.Interval, "publish-interval", c.Publish.Interval, "CloudWatch publishing period (under 60s publishes high-resolution series)")
	fl.DurationVar(&c.Publish.TakeoverGrace, "publish-takeover-grace", c.Publish.TakeoverGrace, "a new leader waits this long for agents to reconnect before it rebuilds the periods its predecessor had not published")
	fl.DurationVar(&c.AlarmEvery, "alarm-reconcile-interval", c.AlarmEvery, "how often CloudWatch alarms are brought in step with policies")
	fl.StringVar(&c.Publish.Cluster, "cluster-name", c.Publish.Cluster, "prefix of this cluster's alarms and its ShoalCluster dimension")
	fl.IntVar(&c.Publish.MaxCustomMetrics, "max-custom-metrics", c.Publish.MaxCustomMetrics, "custom agent metrics published per fleet (each costs money)")
	fl.StringSliceVar(&c.HeartbeatActions, "heartbeat-alarm-action", c.HeartbeatActions, "ARN notified when the coordinator heartbeat alarm fires (repeatable)")
	fl.DurationVar(&c.Scaler.RetireUnknownAfter, "retire-unknown-after", c.Scaler.RetireUnknownAfter, "how long an instance its group does not know may stay unhealthy before it leaves the registry")
	fl.IntVar(&c.Ingest.MaxNewInstancesPerStream, "max-new-instances-per-stream", c.Ingest.MaxNewInstancesPerStream, "new instance ids one follower's forwarding stream may add to the registry")
	fl.DurationVar(&c.Ingest.StaleAfter, "agent-stale-after", c.Ingest.StaleAfter, "silence after which an instance's agent counts as gone")
	sec := &c.Security
	fl.StringVar(&c.AgentAddr, "agent-addr", c.AgentAddr, "gRPC bind address serving agents only (AgentService), so the fleet needs no other port; empty serves agents on --rpc-addr")
	fl.StringVar(&sec.TLS.CAFile, "ca-cert", sec.TLS.CAFile, "PEM bundle of the CAs to trust (old and new together during a CA rotation)")
	fl.StringVar(&sec.TLS.CertFile, "cert", sec.TLS.CertFile, "this server's certificate (role server, name = --node-id); reloaded on change or SIGHUP")
	fl.StringVar(&sec.TLS.KeyFile, "key", sec.TLS.KeyFile, "this server's private key")
	fl.StringVar(&sec.TLS.Cluster, "tls-cluster", sec.TLS.Cluster, "trust domain: the cluster name in every certificate's spiffe:// URI")
	fl.StringVar(&sec.CAKeyFile, "ca-key", sec.CAKeyFile, "the CA's private key (mode 0600), to issue agent certificates; needed with --iid-trust")
	fl.BoolVar(&sec.Insecure, "insecure", sec.Insecure, "DEVELOPMENT ONLY: no TLS, no client identities, no ACL tokens (warns at start and every minute)")
	fl.StringArrayVar(&sec.Enroll.TrustFiles, "iid-trust", sec.Enroll.TrustFiles, "PEM file of AWS's instance identity certificates (<region>.pem, or blocks with a Region: header); repeatable; turns agent enrollment on")
	fl.StringSliceVar(&sec.Enroll.Accounts, "iid-accounts", sec.Enroll.Accounts, "AWS account ids whose instances may enroll (default: the account of this node's own credentials, via STS)")
	fl.DurationVar(&sec.Enroll.AgentCertTTL, "agent-cert-ttl", sec.Enroll.AgentCertTTL, "lifetime of an issued agent certificate (at most 24h); agents renew at two thirds")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
}

// config resolves the flags into the node's Config: the advertised
// addresses default to the bound ones, --join splits on commas, and the
// logger writes to logTo.
func (f serveFlags) config(logTo io.Writer) (node.Config, error) {
	cfg := f.cfg
	cfg.Cluster.RaftAdvertise = f.advertiseRaft
	if cfg.Cluster.RaftAdvertise == "" {
		cfg.Cluster.RaftAdvertise = cfg.Cluster.RaftBind
	}
	cfg.Cluster.RPCAdvertise = f.advertiseRPC
	if cfg.Cluster.RPCAdvertise == "" {
		cfg.Cluster.RPCAdvertise = cfg.RPCAddr
	}
	cfg.Cluster.Join = nil
	for _, j := range strings.Split(f.join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Cluster.Join = append(cfg.Cluster.Join, j)
		}
	}
	if err := cfg.Validate(); err != nil {
		return node.Config{}, err
	}
	log, err := newLogger(logTo, f.logLevel, f.logFormat)
	if err != nil {
		return node.Config{}, err
	}
	cfg.Logger = log
	return cfg, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level (%q): want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format (%q): want text or json", format)
}

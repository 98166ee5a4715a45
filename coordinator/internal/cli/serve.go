package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/engine"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/server"
)

// ServeHook lets later work add services to a node before it serves, e.g.
// registering AgentService on srv.GRPC(). Hooks run in order after the node
// and server exist and before the listeners accept.
type ServeHook func(ctx context.Context, node *cluster.Node, srv *server.Server, log *slog.Logger) error

var serveHooks []ServeHook

// AddServeHook registers a hook for every later `serve`.
func AddServeHook(h ServeHook) { serveHooks = append(serveHooks, h) }

type serveFlags struct {
	cfg           cluster.Config
	rpcAddr       string
	httpAddr      string
	advertiseRPC  string
	advertiseRaft string
	join          string
	logLevel      string
	logFormat     string
	eng           engine.Config
}

func serveCmd() *cobra.Command {
	f := serveFlags{cfg: cluster.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "serve --node-id ID --data-dir DIR --raft-addr HOST:PORT --rpc-addr HOST:PORT --http-addr HOST:PORT [--bootstrap | --join RPCADDR[,RPCADDR]]",
		Short: "run a coordinator node",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.NodeID, "node-id", "", "this node's id, stable across restarts")
	fl.StringVar(&f.cfg.DataDir, "data-dir", "", "directory for the raft log and snapshots")
	fl.StringVar(&f.cfg.RaftBind, "raft-addr", "", "raft transport bind address")
	fl.StringVar(&f.rpcAddr, "rpc-addr", "", "gRPC bind address (every service)")
	fl.StringVar(&f.httpAddr, "http-addr", "", "HTTP bind address for /metrics and /healthz")
	fl.StringVar(&f.advertiseRaft, "advertise-raft", "", "raft address peers dial (default: --raft-addr; required when binding 0.0.0.0)")
	fl.StringVar(&f.advertiseRPC, "advertise-rpc", "", "gRPC address peers and clients dial (default: --rpc-addr; required when binding 0.0.0.0)")
	fl.BoolVar(&f.cfg.Bootstrap, "bootstrap", false, "form a new cluster of this node (first start only)")
	fl.StringVar(&f.join, "join", "", "comma-separated gRPC addresses of members to ask to join")
	fl.StringVar(&f.cfg.LogStore, "log-store", f.cfg.LogStore, "raft log store: wal or boltdb")
	fl.DurationVar(&f.cfg.HeartbeatTimeout, "raft-heartbeat-timeout", f.cfg.HeartbeatTimeout, "raft heartbeat timeout")
	fl.DurationVar(&f.cfg.ElectionTimeout, "raft-election-timeout", f.cfg.ElectionTimeout, "raft election timeout")
	fl.DurationVar(&f.cfg.LeaderLeaseTimeout, "raft-leader-lease-timeout", f.cfg.LeaderLeaseTimeout, "raft leader lease timeout")
	fl.DurationVar(&f.cfg.CommitTimeout, "raft-commit-timeout", f.cfg.CommitTimeout, "raft commit timeout")
	fl.DurationVar(&f.cfg.NoLeaderWait, "no-leader-wait", f.cfg.NoLeaderWait, "how long a write waits for a leader before failing")
	fl.DurationVar(&f.cfg.ShutdownTimeout, "shutdown-timeout", f.cfg.ShutdownTimeout, "bound on leadership transfer and shutdown")
	fl.Uint64Var(&f.cfg.SnapshotThreshold, "raft-snapshot-threshold", f.cfg.SnapshotThreshold, "log entries between raft snapshots")
	fl.DurationVar(&f.cfg.SnapshotInterval, "raft-snapshot-interval", f.cfg.SnapshotInterval, "how often raft checks whether to snapshot")
	fl.Uint64Var(&f.cfg.TrailingLogs, "raft-trailing-logs", f.cfg.TrailingLogs, "log entries kept after a snapshot; a follower further behind gets the snapshot")
	fl.StringVar(&f.eng.Cloud, "cloud", "aws", "aws (AWS APIs; AWS_ENDPOINT_URL points them at the local cloud) or none (state only: no scaling, no CloudWatch)")
	fl.StringVar(&f.eng.AWS.Region, "aws-region", "", "AWS region (default: AWS_REGION / shared config)")
	fl.DurationVar(&f.eng.EvalInterval, "eval-interval", time.Second, "how often the leader evaluates every fleet")
	fl.DurationVar(&f.eng.DrainTimeout, "drain-timeout", 30*time.Second, "longest wait for LBs to report a scale-in victim idle")
	fl.DurationVar(&f.eng.AgentGrace, "agent-grace", time.Minute, "how long a launched instance may run before a silent agent gets it flagged")
	fl.DurationVar(&f.eng.PublishInterval, "publish-interval", 10*time.Second, "CloudWatch publishing period (under 60s publishes high-resolution series)")
	fl.DurationVar(&f.eng.AlarmEvery, "alarm-reconcile-interval", 10*time.Second, "how often CloudWatch alarms are brought in step with policies")
	fl.StringVar(&f.eng.ClusterName, "cluster-name", "shoal", "prefix of this cluster's alarms and its ShoalCluster dimension")
	fl.IntVar(&f.eng.MaxCustomMetrics, "max-custom-metrics", 10, "custom agent metrics published per fleet (each costs money)")
	fl.StringSliceVar(&f.eng.HeartbeatActions, "heartbeat-alarm-action", nil, "ARN notified when the coordinator heartbeat alarm fires (repeatable)")
	fl.DurationVar(&f.eng.Ingest.StaleAfter, "agent-stale-after", 5*time.Second, "silence after which an instance's agent counts as gone")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	return cmd
}

func (f *serveFlags) validate() error {
	switch {
	case f.cfg.NodeID == "":
		return errors.New("node-id: required")
	case f.cfg.DataDir == "":
		return errors.New("data-dir: required")
	case f.cfg.RaftBind == "":
		return errors.New("raft-addr: required")
	case f.rpcAddr == "":
		return errors.New("rpc-addr: required")
	case f.httpAddr == "":
		return errors.New("http-addr: required")
	}
	f.cfg.RaftAdvertise = f.advertiseRaft
	if f.cfg.RaftAdvertise == "" {
		f.cfg.RaftAdvertise = f.cfg.RaftBind
	}
	f.cfg.RPCAdvertise = f.advertiseRPC
	if f.cfg.RPCAdvertise == "" {
		f.cfg.RPCAdvertise = f.rpcAddr
	}
	if f.join != "" {
		for _, j := range strings.Split(f.join, ",") {
			if j = strings.TrimSpace(j); j != "" {
				f.cfg.Join = append(f.cfg.Join, j)
			}
		}
	}
	return f.cfg.Validate()
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level (%q): want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log-format (%q): want text or json", format)
}

func serve(ctx context.Context, f serveFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	f.cfg.Logger = log
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// Listen first so a port clash fails before raft touches the data dir.
	rpcLis, err := net.Listen("tcp", f.rpcAddr)
	if err != nil {
		return fmt.Errorf("rpc-addr (%q): %w", f.rpcAddr, err)
	}
	httpLis, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		rpcLis.Close()
		return fmt.Errorf("http-addr (%q): %w", f.httpAddr, err)
	}
	node, err := cluster.New(f.cfg, fsm.New())
	if err != nil {
		rpcLis.Close()
		httpLis.Close()
		return err
	}
	srv, err := server.New(server.Config{Node: node, Logger: log})
	if err != nil {
		_ = node.Shutdown()
		return err
	}
	f.eng.Logger, f.eng.Registerer = log, srv.Registry()
	eng, err := engine.New(ctx, f.eng, node)
	if err != nil {
		_ = node.Shutdown()
		return err
	}
	eng.Register(srv.GRPC())
	srv.SetLive(eng)
	engCtx, stopEngine := context.WithCancel(context.Background())
	engDone := make(chan struct{})
	go func() {
		defer close(engDone)
		if err := eng.Run(engCtx); err != nil {
			log.Error("engine stopped", "err", err)
		}
	}()
	stopEng := func() { stopEngine(); <-engDone }
	for _, h := range serveHooks {
		if err := h(ctx, node, srv, log); err != nil {
			stopEng()
			_ = node.Shutdown()
			return err
		}
	}
	hs := &http.Server{Handler: srv.HTTPHandler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(rpcLis) }()
	go func() { errc <- hs.Serve(httpLis) }()
	log.Info("serving", "node", f.cfg.NodeID, "rpc", f.rpcAddr, "http", f.httpAddr, "raft", f.cfg.RaftBind, "log_store", f.cfg.LogStore)

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
		log.Error("listener failed", "err", serveErr)
	}
	// The leader's loops stop first (a drain cut short is redone by the next
	// leader), then raft, while gRPC still serves: a leader hands over
	// leadership and peers can still reach it to finish forwarding.
	start := time.Now()
	stopEng()
	if err := node.Shutdown(); err != nil {
		log.Warn("raft shutdown", "err", err)
	}
	srv.Stop(2 * time.Second)
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return serveErr
}

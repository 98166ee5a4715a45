package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/coordinator/internal/authz"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/console"
	"github.com/shoal-dev/shoal/coordinator/internal/feed"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/ingest"
	"github.com/shoal-dev/shoal/coordinator/internal/nemesis"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
	"github.com/shoal-dev/shoal/coordinator/internal/scaler"
	"github.com/shoal-dev/shoal/coordinator/internal/server"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// Node is one running coordinator: listeners, raft, the API and the loops.
type Node struct {
	cfg      Config
	log      *slog.Logger
	rpcLis   net.Listener
	httpLis  net.Listener
	agentLis net.Listener // nil without --agent-addr
	tls      *transport   // nil with --insecure
	raft     *cluster.Node
	srv      *server.Server
	agentSrv *grpc.Server // serves AgentService on agentLis
	ingest   *ingest.Service
	feed     *feed.Service
	enroll   agentEnroller
	// deniedVec is shoal_auth_denied_total, shared by authz and enroll.
	deniedVec *prometheus.CounterVec
	// scaler, pub and rec are nil with CloudNone.
	scaler *scaler.Scaler
	pub    *publish.Publisher
	rec    *publish.Reconciler
	// console serves /ui/ on --http-addr.
	console *console.Console
	az      *authz.Authorizer
}

// New validates cfg, listens on both addresses, opens raft and builds every
// service. With CloudAWS it loads the AWS config (AWS_REGION,
// AWS_ENDPOINT_URL, credentials) now, so a misconfigured node fails at start
// rather than at its first scaling decision. On error nothing is left
// running.
func New(ctx context.Context, cfg Config) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := nemesis.Check(); err != nil {
		return nil, err
	}
	if s := nemesis.Summary(); s != "" {
		cfg.Logger.Warn("node: nemesis fault hooks armed (failpoints build): this node is for chaos tests only", "hooks", s)
	}
	n = &Node{cfg: cfg, log: cfg.Logger}
	// Listen first so a port clash fails before raft touches the data dir.
	if n.rpcLis, err = net.Listen("tcp", cfg.RPCAddr); err != nil {
		return nil, fmt.Errorf("rpc-addr (%q): %w", cfg.RPCAddr, err)
	}
	if n.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		n.rpcLis.Close()
		return nil, fmt.Errorf("http-addr (%q): %w", cfg.HTTPAddr, err)
	}
	// `return nil, err` clears n before this runs; hold on to the node.
	self := n
	defer func() {
		if err != nil {
			self.rpcLis.Close()
			self.httpLis.Close()
			if self.agentLis != nil {
				self.agentLis.Close()
			}
			if self.raft != nil {
				_ = self.raft.Shutdown()
			}
		}
	}()
	if cfg.AgentAddr != "" {
		if n.agentLis, err = net.Listen("tcp", cfg.AgentAddr); err != nil {
			return nil, fmt.Errorf("agent-addr (%q): %w", cfg.AgentAddr, err)
		}
	}
	if n.tls, err = openTransport(cfg.Security, cfg.Cluster.NodeID); err != nil {
		return nil, err
	}
	cc := cfg.Cluster
	cc.Logger = cfg.Logger
	if cc.AgentAdvertise == "" {
		cc.AgentAdvertise = cfg.AgentAddr
	}
	if cc.Dial, err = n.tls.peerDial(); err != nil {
		return nil, err
	}
	if n.tls != nil {
		if cc.StreamLayer, err = n.tls.raftLayer(cc.RaftBind, cc.RaftAdvertise); err != nil {
			return nil, fmt.Errorf("raft-addr (%q): %w", cc.RaftBind, err)
		}
	}
	if n.raft, err = cluster.New(cc, fsm.New()); err != nil {
		if cc.StreamLayer != nil {
			cc.StreamLayer.Close()
		}
		return nil, err
	}
	reg := prometheus.NewRegistry()
	lv, err := n.build(ctx, reg)
	if err != nil {
		return nil, err
	}
	opts, err := n.grpcOptions(reg)
	if err != nil {
		return nil, err
	}
	if n.srv, err = server.New(server.Config{
		Node: n.raft, Logger: cfg.Logger, Registry: reg, Live: lv, GRPCOptions: opts,
		ForwardAgents: n.ingest.ForwardAgents, Insecure: cfg.Security.Insecure, LoadBalancers: n.loadBalancers,
	}); err != nil {
		return nil, err
	}
	if n.console, err = n.buildConsole(n.az); err != nil {
		return nil, err
	}
	agents := agentService{Service: n.ingest, agentEnroller: n.enroll}
	shoalv1.RegisterAgentServiceServer(n.srv.GRPC(), agents)
	n.feed.Register(n.srv.GRPC())
	if n.agentLis != nil {
		n.agentSrv = rpc.NewServer(opts...)
		shoalv1.RegisterAgentServiceServer(n.agentSrv, agents)
	}
	return n, nil
}

// grpcOptions are the credentials and the authorizer every listener of
// the node uses.
func (n *Node) grpcOptions(reg prometheus.Registerer) ([]grpc.ServerOption, error) {
	creds, err := n.tls.serverOptions()
	if err != nil {
		return nil, err
	}
	az, err := authz.New(authz.Config{Insecure: n.cfg.Security.Insecure}, authz.Deps{
		Tokens: n.raft.FSM(), Denied: n.denied(reg), Logger: n.log.With("component", "authz"), Now: time.Now,
		CaughtUp: n.raft.CaughtUp,
	})
	if err != nil {
		return nil, err
	}
	n.az = az
	return append(creds, az.ServerOptions()...), nil
}

// build makes the services beside raft and returns the API's live view.
func (n *Node) build(ctx context.Context, reg prometheus.Registerer) (*live, error) {
	cfg, log := n.cfg, n.cfg.Logger
	st := store{node: n.raft}
	ic := cfg.Ingest
	ic.Logger, ic.Registerer = log.With("component", "ingest"), reg
	// An agent may send no more custom names than a fleet may publish.
	ic.MaxCustomMetrics = cfg.Publish.MaxCustomMetrics
	peerOpts, err := n.tls.peerDialOptions()
	if err != nil {
		return nil, err
	}
	ic.DialOptions = append(append([]grpc.DialOption(nil), ic.DialOptions...), peerOpts...)
	// Agents' notices go to the scaler, built below (none with --cloud
	// none: nothing could act on them). build finishes before any stream is
	// served, so the field is set by the time a notice arrives.
	ic.OnEvent = func(fleet, id string, ev *shoalv1.InstanceEvent) {
		if n.scaler != nil {
			n.scaler.Notify(fleet, id, ev)
		}
	}
	if n.ingest, err = ingest.New(ic, n.raft, st); err != nil {
		return nil, err
	}
	fc := cfg.Feed
	fc.Logger = log.With("component", "feed")
	fc.DialOptions = append(append([]grpc.DialOption(nil), fc.DialOptions...), peerOpts...)
	if n.feed, err = feed.New(fc, backends(n.raft, n.ingest, fc.Now, cfg.Scaler.DrainTimeout), n.raft, reg); err != nil {
		return nil, err
	}
	lv := &live{node: n.raft, ingest: n.ingest, evalInterval: cfg.Scaler.EvalInterval}
	if cfg.Cloud == CloudNone {
		log.Warn("node: --cloud none: no scaling, no CloudWatch and no agent enrollment on this node")
		if n.enroll, err = n.buildEnroll(ctx, nil, reg); err != nil {
			return nil, err
		}
		return lv, nil
	}
	cl, sdkCfg, err := awscloud.Open(ctx, cfg.AWS)
	if err != nil {
		return nil, fmt.Errorf("cloud aws: %w", err)
	}
	if n.enroll, err = n.buildEnroll(ctx, &sdkCfg, reg); err != nil {
		return nil, err
	}
	sc := cfg.Scaler
	// Warm pools are read straight from the cloud: a read needs no
	// leadership fence, and the scaler takes them apart from Cloud.
	sc.WarmPools = cl
	sc.Logger = log.With("component", "scaler")
	sc.NodeID = cfg.Cluster.NodeID
	if n.scaler, err = scaler.New(sc, scaler.Deps{
		Store: leaderStore{st}, Cloud: cloud.Fenced(cl, n.raft), Metrics: liveMetrics{in: n.ingest, stale: cfg.Ingest.StaleAfter}, LBs: n.feed, Agents: agents{in: n.ingest},
	}, reg); err != nil {
		return nil, err
	}
	cw := cloudwatch.NewFromConfig(sdkCfg)
	pc := cfg.Publish
	if pc.Custom, err = publish.NewCustomMetrics(pc.MaxCustomMetrics, reg); err != nil {
		return nil, err
	}
	pc.Registerer, pc.Logger, pc.Commit, pc.CommitSettled = reg, log.With("component", "publish"), leaderStore{st}.commitWatermark, leaderStore{st}.commitSettled
	if n.pub, err = publish.New(cw, pc); err != nil {
		return nil, err
	}
	if n.rec, err = publish.NewReconciler(cw, publish.ReconcilerConfig{
		Cluster: pc.Cluster, HeartbeatPeriod: publish.HeartbeatPeriodFor(pc.Interval), HeartbeatActions: cfg.HeartbeatActions,
		Logger: log.With("component", "alarms"),
	}); err != nil {
		return nil, err
	}
	lv.scaler, lv.rec = n.scaler, n.rec
	return lv, nil
}

// Addrs are the addresses the node listens on (useful with port 0).
func (n *Node) Addrs() (rpcAddr, httpAddr net.Addr) { return n.rpcLis.Addr(), n.httpLis.Addr() }

// Run serves until ctx ends or a listener fails, then stops in order: the
// leader's loops (a drain cut short is redone by the next leader), then
// raft, while gRPC still serves, so a leader hands over leadership and peers
// can still reach it to finish forwarding; then gRPC, then HTTP. It returns
// the listener's error, if one failed, or raft's storage failure.
func (n *Node) Run(ctx context.Context) error {
	loopsCtx, stopLoops := context.WithCancel(context.Background())
	loopsDone := make(chan struct{})
	go func() { defer close(loopsDone); n.runLoops(loopsCtx) }()
	hs := &http.Server{Handler: n.httpHandler(), ReadHeaderTimeout: 5 * time.Second}
	httpLis, err := n.httpListener()
	if err != nil {
		stopLoops()
		<-loopsDone
		return err
	}
	defer n.console.Close()
	errc := make(chan error, 3)
	go func() { errc <- n.srv.Serve(n.rpcLis) }()
	go func() { errc <- hs.Serve(httpLis) }()
	if n.agentSrv != nil {
		go func() { errc <- n.agentSrv.Serve(n.agentLis) }()
	}
	secCtx, stopSec := context.WithCancel(context.Background())
	defer stopSec()
	go n.runSecurity(secCtx)
	if n.cfg.Snapshots.Dir != "" {
		go n.runSnapshots(secCtx)
	}
	c := n.cfg.Cluster
	n.log.Info("serving", "node", c.NodeID, "rpc", n.rpcLis.Addr().String(), "http", n.httpLis.Addr().String(), "agent", n.cfg.AgentAddr, "raft", c.RaftBind, "log_store", c.LogStore, "tls", n.tls != nil)

	var serveErr error
	select {
	case <-ctx.Done():
		n.log.Info("shutting down")
	case serveErr = <-errc:
		n.log.Error("listener failed", "err", serveErr)
	case serveErr = <-n.raft.Fatal():
		// Already logged by raft; stopping with an error lets the
		// supervisor restart the node on stores reopened from disk.
	}
	start := time.Now()
	stopLoops()
	<-loopsDone
	if err := n.raft.Shutdown(); err != nil {
		n.log.Warn("raft shutdown", "err", err)
	}
	if n.agentSrv != nil {
		stopGRPC(n.agentSrv, n.cfg.GRPCStopTimeout)
	}
	n.srv.Stop(n.cfg.GRPCStopTimeout)
	n.console.Close() // ends the event streams, which Shutdown would wait for
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.HTTPStopTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		n.log.Warn("http shutdown", "err", err)
	}
	n.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return serveErr
}

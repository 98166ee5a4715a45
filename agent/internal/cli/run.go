package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/agent/internal/collect"
	"github.com/shoal-dev/shoal/agent/internal/drain"
	"github.com/shoal-dev/shoal/agent/internal/enroll"
	"github.com/shoal-dev/shoal/agent/internal/health"
	"github.com/shoal-dev/shoal/agent/internal/identity"
	"github.com/shoal-dev/shoal/agent/internal/notice"
	"github.com/shoal-dev/shoal/agent/internal/runner"
	"github.com/shoal-dev/shoal/agent/internal/stream"
	"github.com/shoal-dev/shoal/agent/internal/trust"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// ErrFlags wraps invalid flag combinations.
var ErrFlags = errors.New("invalid flags")

// options are the flags: most bind straight to the fields of the packages'
// DefaultConfig; the rest are the CLI's own.
type options struct {
	collect  collect.Config
	identity identity.Config
	stream   stream.Config
	trust    trust.Config
	notice   notice.Config

	dataDir       string
	certFile      string
	keyFile       string
	insecure      bool
	bindPrivateIP bool

	interval      time.Duration
	scrape        string
	metrics       []string
	healthHTTP    string
	healthGRPC    string
	healthTimeout time.Duration

	onDrain      string
	drainTimeout time.Duration

	httpAddr string
	logLevel string
}

func defaultOptions() options {
	return options{
		collect:       collect.DefaultConfig(),
		identity:      identity.DefaultConfig(),
		stream:        stream.DefaultConfig(),
		trust:         trust.DefaultConfig(),
		notice:        notice.DefaultConfig(),
		dataDir:       enroll.DefaultDataDir,
		bindPrivateIP: true,
		interval:      time.Second,
		drainTimeout:  5 * time.Minute,
		logLevel:      "info",
	}
}

func (o *options) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSliceVar(&o.identity.Coordinators, "coordinator", o.identity.Coordinators, "coordinator rpc addresses ADDR[,ADDR...] (default: the instance's shoal:coordinators tag)")
	f.StringVar(&o.identity.Fleet, "fleet", o.identity.Fleet, "fleet name (default: the fleet of the instance's Auto Scaling group)")
	f.StringVar(&o.identity.InstanceID, "instance-id", o.identity.InstanceID, "instance id; with --fleet and --coordinator, IMDS is not used")
	f.DurationVar(&o.interval, "interval", o.interval, "collection and send interval")
	f.StringVar(&o.collect.ProcRoot, "procfs", o.collect.ProcRoot, "procfs mount point")
	f.StringVar(&o.collect.CgroupRoot, "cgroupfs", o.collect.CgroupRoot, "cgroup v2 mount point")
	f.StringVar(&o.collect.DiskPath, "disk-path", o.collect.DiskPath, "filesystem reported as disk")
	f.StringVar((*string)(&o.collect.Scope), "scope", string(o.collect.Scope), "what to measure: host, or cgroup (the workload's cgroup or process tree)")
	f.StringVar(&o.collect.Cgroup, "cgroup", o.collect.Cgroup, "workload cgroup below --cgroupfs for --scope cgroup; \"auto\" uses --scope-pid's cgroup if dedicated (default with --scope-pid)")
	f.IntVar(&o.collect.ScopePID, "scope-pid", o.collect.ScopePID, "workload root pid (and process group) for --scope cgroup")
	f.BoolVar(&o.collect.NetLoopback, "net-loopback", o.collect.NetLoopback, "count the loopback interface in net_rx/net_tx")
	f.StringVar(&o.scrape, "scrape", o.scrape, "application Prometheus endpoint URL to read --metric series from")
	f.StringArrayVar(&o.metrics, "metric", o.metrics, "forward application metric NAME[=ALIAS] from --scrape (repeatable)")
	f.StringVar(&o.healthHTTP, "health-http", o.healthHTTP, "readiness check: GET URL must answer 2xx")
	f.StringVar(&o.healthGRPC, "health-grpc", o.healthGRPC, "readiness check: grpc.health.v1 Check on ADDR must say SERVING")
	f.DurationVar(&o.healthTimeout, "health-timeout", o.healthTimeout, "bound on one readiness check or scrape (default: --interval)")
	f.StringVar(&o.onDrain, "on-drain", o.onDrain, "shell command run when the coordinator drains this instance")
	f.DurationVar(&o.drainTimeout, "drain-timeout", o.drainTimeout, "bound on --on-drain when the command carries no deadline")
	f.StringVar(&o.httpAddr, "http-addr", o.httpAddr, "serve the agent's own /metrics here (off by default)")
	f.IntVar(&o.stream.BufferSize, "buffer", o.stream.BufferSize, "samples kept while disconnected (oldest dropped first)")
	f.DurationVar(&o.notice.Poll, "imds-poll", o.notice.Poll, "how often to read the Spot interruption, rebalance recommendation and target lifecycle state notices from instance metadata (not with --instance-id)")
	f.IntVar(&o.identity.Attempts, "imds-attempts", o.identity.Attempts, "tries to read instance metadata before giving up")
	f.StringVar(&o.logLevel, "log-level", o.logLevel, "debug, info, warn or error")
	f.StringVar(&o.trust.CAFile, "ca-cert", o.trust.CAFile, "PEM bundle of the CAs that sign the coordinators' certificates")
	f.StringVar(&o.trust.Cluster, "cluster", o.trust.Cluster, "cluster name (trust domain) of the coordinators' and this agent's certificates")
	f.StringVar(&o.dataDir, "data-dir", o.dataDir, "where the agent keeps its key, certificate and enrollment nonce (mode 0700)")
	f.StringVar(&o.certFile, "cert", o.certFile, "development with --instance-id only: a hand-issued agent certificate (shoal-coordinator tls cert create --role agent --name ID)")
	f.StringVar(&o.keyFile, "key", o.keyFile, "development with --instance-id only: the key of --cert")
	f.BoolVar(&o.insecure, "insecure", o.insecure, "development only: talk plaintext to coordinators started with --insecure, with no enrollment")
	f.BoolVar(&o.bindPrivateIP, "bind-private-ip", o.bindPrivateIP, "make coordinator connections from the instance's private IP, which enrollment checks")
}

func newRunCmd() *cobra.Command {
	o := defaultOptions()
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent (the same as the root command)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cmd.ErrOrStderr(), o) },
	}
	o.bind(cmd)
	return cmd
}

func (o options) validate() error {
	switch {
	case o.interval < 100*time.Millisecond:
		return fmt.Errorf("%w: --interval (%s) must be >= 100ms", ErrFlags, o.interval)
	case len(o.metrics) > 0 && o.scrape == "":
		return fmt.Errorf("%w: --metric needs --scrape", ErrFlags)
	case o.scrape != "" && len(o.metrics) == 0:
		return fmt.Errorf("%w: --scrape needs at least one --metric", ErrFlags)
	case o.healthHTTP != "" && o.healthGRPC != "":
		return fmt.Errorf("%w: --health-http and --health-grpc are exclusive", ErrFlags)
	case o.notice.Poll < 100*time.Millisecond:
		return fmt.Errorf("%w: --imds-poll (%s) must be >= 100ms", ErrFlags, o.notice.Poll)
	case o.stream.BufferSize < 1:
		return fmt.Errorf("%w: --buffer (%d) must be >= 1", ErrFlags, o.stream.BufferSize)
	case (o.certFile == "") != (o.keyFile == ""):
		return fmt.Errorf("%w: --cert and --key go together", ErrFlags)
	case o.certFile != "" && o.identity.InstanceID == "":
		return fmt.Errorf("%w: --cert and --key are for development with --instance-id; on EC2 the agent enrolls and keeps its certificate in --data-dir", ErrFlags)
	case o.certFile != "" && o.insecure:
		return fmt.Errorf("%w: --insecure and --cert are exclusive", ErrFlags)
	case o.identity.InstanceID != "" && o.certFile == "" && !o.insecure:
		return fmt.Errorf("%w: --instance-id (no IMDS, so no identity document to enroll with) needs a hand-issued agent certificate: shoal-coordinator tls cert create --role agent --name %s, then --cert and --key; or --insecure against an --insecure coordinator", ErrFlags, o.identity.InstanceID)
	}
	return nil
}

// run logs to logw.
func run(ctx context.Context, logw io.Writer, o options) error {
	if err := o.validate(); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level %q: %v", ErrFlags, o.logLevel, err)
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level}))

	ccfg := o.collect
	if ccfg.Scope == collect.ScopeCgroup && ccfg.Cgroup == "" && ccfg.ScopePID != 0 {
		ccfg.Cgroup = "auto"
	}
	set, err := collect.New(ccfg)
	if err != nil {
		return err
	}
	timeout := o.healthTimeout
	if timeout <= 0 {
		timeout = o.interval
	}
	sources := []runner.Source{set}
	if o.scrape != "" {
		sc := &collect.Scrape{URL: o.scrape, Timeout: timeout}
		for _, m := range o.metrics {
			fw, err := collect.ParseForward(m)
			if err != nil {
				return err
			}
			sc.Forwards = append(sc.Forwards, fw)
		}
		sources = append(sources, sc)
	}
	var checker health.Checker = health.None{}
	switch {
	case o.healthHTTP != "":
		checker = health.HTTP{URL: o.healthHTTP}
	case o.healthGRPC != "":
		g := &health.GRPC{Addr: o.healthGRPC}
		defer g.Close()
		checker = g
	}

	icfg := o.identity
	icfg.Coordinators, icfg.Logger = splitAll(icfg.Coordinators), log
	id, err := identity.Resolve(ctx, icfg)
	if err != nil {
		return err
	}
	log.Info("identity", "instance", id.InstanceID, "fleet", id.Fleet, "asg", id.ASG, "ip", id.PrivateIP, "coordinators", id.Coordinators)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	creds, err := credentials(ctx, o, icfg, id, reg, log)
	if err != nil {
		return err
	}
	// Notices come from IMDS, which an agent named by --instance-id does not
	// use.
	var watcher *notice.Watcher
	if icfg.InstanceID == "" {
		ncfg := o.notice
		ncfg.Endpoint, ncfg.HTTPClient, ncfg.Logger, ncfg.Registerer = icfg.Endpoint, icfg.HTTPClient, log, reg
		if watcher, err = notice.New(ncfg); err != nil {
			return err
		}
		checker = watcher.Gate(checker)
	}
	var rn *runner.Runner
	hook := drain.Hook{Command: o.onDrain, DefaultTimeout: o.drainTimeout}
	scfg := o.stream
	scfg.Addrs = id.Coordinators
	scfg.Hello = &shoalv1.AgentHello{
		InstanceId: id.InstanceID, Fleet: id.Fleet, Asg: id.ASG, PrivateIp: id.PrivateIP,
		AvailabilityZone: id.AvailabilityZone, ImageId: id.ImageID, AgentVersion: version(),
		Interval: durationpb.New(o.interval), StartTime: timestamppb.Now(),
	}
	scfg.OnCommand = func(ctx context.Context, cmd *shoalv1.AgentCommand) *shoalv1.CommandResult {
		log.Info("drain requested", "id", cmd.GetId())
		res := hook.Run(ctx, cmd)
		log.Info("drain finished", "id", cmd.GetId(), "ok", res.GetOk(), "error", res.GetError())
		return res
	}
	scfg.OnConfig = func(c *shoalv1.AgentConfig) {
		if d := c.GetInterval(); d.IsValid() && rn != nil {
			rn.SetInterval(d.AsDuration())
		}
	}
	scfg.Logger = log
	scfg.DialOptions = append(scfg.DialOptions, creds.dial...)
	sc, err := stream.New(scfg)
	if err != nil {
		return err
	}
	rn, err = runner.New(runner.Config{
		Interval: o.interval, Scope: ccfg.Scope, Sources: sources, Health: checker, HealthTimeout: timeout,
		Sink: sc, Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	if o.httpAddr != "" {
		lis, err := net.Listen("tcp", o.httpAddr)
		if err != nil {
			return fmt.Errorf("--http-addr %s: %w", o.httpAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		log.Info("serving own metrics", "addr", lis.Addr().String())
		g.Go(func() error {
			if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	if creds.run != nil {
		g.Go(func() error { return creds.run(gctx) })
	}
	g.Go(func() error { return sc.Run(gctx) })
	if watcher != nil {
		g.Go(func() error { return watcher.Run(gctx, sc.Event) })
	}
	g.Go(func() error { return rn.Run(gctx) })
	err = g.Wait()
	if ctx.Err() != nil {
		log.Info("stopped", "reason", context.Cause(ctx))
		return nil
	}
	return err
}

// splitAll accepts both repeated flags and comma lists.
func splitAll(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, identity.SplitAddrs(s)...)
	}
	return out
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/feed"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/ingest"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
	"github.com/shoal-dev/shoal/coordinator/internal/scaler"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// WatermarkKey is the FSM watermark holding the start of the newest
// CloudWatch period whose publication was committed.
const WatermarkKey = "cloudwatch.published_up_to"

// Config configures the engine. Zero durations take the defaults.
type Config struct {
	// Cloud is "aws" (the AWS APIs, or the local cloud via
	// AWS_ENDPOINT_URL) or "none" (no scaling, no CloudWatch: a cluster
	// that only keeps state, as in tests of the cluster itself).
	Cloud string
	AWS   awscloud.Config
	// EvalInterval is the scaler's period (1 s).
	EvalInterval time.Duration
	// DrainTimeout bounds a drain (30 s).
	DrainTimeout time.Duration
	// AgentGrace is how long a launched instance may go unreported before
	// it is flagged (60 s).
	AgentGrace time.Duration
	// PublishInterval is the CloudWatch period (10 s).
	PublishInterval time.Duration
	// AlarmEvery is how often alarms are reconciled (10 s).
	AlarmEvery time.Duration
	// ClusterName names this cluster's alarms and ShoalCluster dimension.
	ClusterName string
	// MaxCustomMetrics caps custom metrics per fleet (10).
	MaxCustomMetrics int
	// HeartbeatActions are the dead-man's switch alarm's actions.
	HeartbeatActions []string
	Ingest           ingest.Config
	Feed             feed.Config
	Now              func() time.Time
	Logger           *slog.Logger
	Registerer       prometheus.Registerer
}

// Validate names the first wrong field.
func (c *Config) Validate() error {
	if c.Cloud == "" {
		c.Cloud = "aws"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.EvalInterval, time.Second)
	def(&c.DrainTimeout, 30*time.Second)
	def(&c.AgentGrace, time.Minute)
	def(&c.PublishInterval, 10*time.Second)
	def(&c.AlarmEvery, 10*time.Second)
	if c.ClusterName == "" {
		c.ClusterName = "shoal"
	}
	if c.MaxCustomMetrics == 0 {
		c.MaxCustomMetrics = publish.DefaultMaxCustomMetrics
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Cloud != "aws" && c.Cloud != "none":
		return fmt.Errorf("cloud (%q): want aws or none", c.Cloud)
	case c.EvalInterval < 0:
		return fmt.Errorf("eval-interval (%v) must be > 0", c.EvalInterval)
	case c.DrainTimeout < 0:
		return fmt.Errorf("drain-timeout (%v) must be > 0", c.DrainTimeout)
	case c.PublishInterval < time.Second:
		return fmt.Errorf("publish-interval (%v) must be >= 1s", c.PublishInterval)
	case c.MaxCustomMetrics < 0:
		return fmt.Errorf("max-custom-metrics (%d) must be >= 0", c.MaxCustomMetrics)
	}
	return nil
}

// Engine is everything a coordinator node runs beside raft: ingestion and
// the LB feed on every node, and, on the leader only, the scaler, the
// CloudWatch publisher and the alarm reconciler.
type Engine struct {
	cfg    Config
	node   *cluster.Node
	ingest *ingest.Service
	feed   *feed.Service
	scaler *scaler.Scaler
	pub    *publish.Publisher
	rec    *publish.Reconciler
	custom *publish.CustomMetrics
}

// New builds the engine for node. With Cloud "aws" it loads the AWS config
// (AWS_REGION, AWS_ENDPOINT_URL, credentials) now, so a misconfigured node
// fails at start rather than at its first scaling decision.
func New(ctx context.Context, cfg Config, node *cluster.Node) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, node: node}
	// Only --agent-stale-after reaches ingest from the flags; the rest of
	// cfg.Ingest is not read.
	ic := ingest.DefaultConfig()
	if cfg.Ingest.StaleAfter != 0 {
		ic.StaleAfter = cfg.Ingest.StaleAfter
	}
	ic.Logger, ic.Registerer = cfg.Logger.With("component", "ingest"), cfg.Registerer
	if cfg.MaxCustomMetrics > 0 {
		ic.MaxCustomMetrics = cfg.MaxCustomMetrics
	}
	st := store{node: node}
	in, err := ingest.New(ic, node, st)
	if err != nil {
		return nil, err
	}
	e.ingest = in
	fc := cfg.Feed
	fc.Logger = cfg.Logger.With("component", "feed")
	e.feed = feed.New(fc, e.backends, node, cfg.Registerer)
	if cfg.Cloud == "none" {
		cfg.Logger.Warn("engine: --cloud none: no scaling and no CloudWatch on this node")
		return e, nil
	}
	awsCfg := cfg.AWS
	if awsCfg.MaxAttempts == 0 {
		awsCfg = awscloud.DefaultConfig()
		awsCfg.Region, awsCfg.Endpoint = cfg.AWS.Region, cfg.AWS.Endpoint
	}
	cl, sdkCfg, err := awscloud.Open(ctx, awsCfg)
	if err != nil {
		return nil, fmt.Errorf("cloud aws: %w", err)
	}
	e.scaler = scaler.New(scaler.Config{
		EvalInterval: cfg.EvalInterval, DrainTimeout: cfg.DrainTimeout, AgentGrace: cfg.AgentGrace,
		Now: cfg.Now, Logger: cfg.Logger.With("component", "scaler"),
	}, scaler.Deps{
		Store: st, Cloud: cl, Metrics: liveMetrics{in: in, stale: 5 * time.Second}, LBs: e.feed, Agents: agents{in: in},
	}, cfg.Registerer)
	cw := cloudwatch.NewFromConfig(sdkCfg)
	custom, err := publish.NewCustomMetrics(cfg.MaxCustomMetrics, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	e.custom = custom
	pc := publish.DefaultConfig()
	pc.Cluster, pc.Interval, pc.Custom = cfg.ClusterName, cfg.PublishInterval, custom
	pc.Registerer, pc.Logger = cfg.Registerer, cfg.Logger.With("component", "publish")
	pc.Commit = func(ctx context.Context, start time.Time) error {
		return st.applyErr(ctx, fsm.SetWatermark(WatermarkKey, start.UnixMilli()))
	}
	if e.pub, err = publish.New(cw, pc); err != nil {
		return nil, err
	}
	if e.rec, err = publish.NewReconciler(cw, publish.ReconcilerConfig{
		Cluster: cfg.ClusterName, HeartbeatPeriod: publish.HeartbeatPeriodFor(cfg.PublishInterval), HeartbeatActions: cfg.HeartbeatActions,
	}); err != nil {
		return nil, err
	}
	return e, nil
}

// Register mounts AgentService and BackendService on the node's gRPC server.
func (e *Engine) Register(g *grpc.Server) {
	e.ingest.Register(g)
	e.feed.Register(g)
}

// Run drives ingestion on every node and the leader-only loops while this
// node leads, until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	defer e.feed.Close()
	ingestDone := make(chan struct{})
	go func() {
		defer close(ingestDone)
		if err := e.ingest.Run(ctx); err != nil {
			e.cfg.Logger.Error("engine: ingest stopped", "err", err)
		}
	}()
	// Returning means nothing of the engine touches raft any more.
	defer func() { <-ingestDone }()
	ch, cancel := e.node.Subscribe()
	defer cancel()
	t := &term{}
	defer t.end()
	check := time.NewTicker(500 * time.Millisecond)
	defer check.Stop()
	for {
		leader := e.node.IsLeader()
		if leader && !t.running() {
			t.start(ctx, e)
		} else if !leader && t.running() {
			t.end()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		case <-check.C:
		}
	}
}

// term is one stretch of leadership: its loops run under their own context,
// ended when leadership goes.
type term struct {
	stop context.CancelFunc
	done chan struct{}
}

func (t *term) running() bool { return t.stop != nil }

func (t *term) start(ctx context.Context, e *Engine) {
	lctx, stop := context.WithCancel(ctx)
	t.stop, t.done = stop, make(chan struct{})
	go func() { defer close(t.done); e.lead(lctx) }()
}

func (t *term) end() {
	if t.stop != nil {
		t.stop()
		<-t.done
		t.stop = nil
	}
}

// lead runs the leader-only loops for one term.
func (e *Engine) lead(ctx context.Context) {
	log := e.cfg.Logger.With("component", "engine")
	log.Info("engine: leading", "cloud", e.cfg.Cloud)
	if e.scaler == nil {
		<-ctx.Done()
		return
	}
	// A new leader may not have applied every entry its predecessor
	// committed (a decision committed just before a crash, say). Nothing
	// reads the FSM to act until it has: otherwise a pending decision would
	// be invisible and decided again.
	for {
		err := e.node.ReadBarrier(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil || errors.Is(err, cluster.ErrNotLeader) {
			return
		}
		log.Warn("engine: waiting to catch up before acting", "err", err)
	}
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); e.scaler.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := e.pub.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("engine: publisher stopped", "err", err)
		}
	}()
	go func() { defer wg.Done(); e.publishLoop(ctx) }()
	go func() { defer wg.Done(); e.alarmLoop(ctx) }()
	wg.Wait()
	log.Info("engine: no longer leading")
}

// publishLoop hands the publisher each complete period, starting after the
// committed watermark so a new leader neither repeats nor skips a period
// beyond the one in flight.
func (e *Engine) publishLoop(ctx context.Context) {
	if wm, ok := e.node.FSM().Watermark(WatermarkKey); ok {
		e.pub.Restore(time.UnixMilli(wm))
	}
	t := time.NewTicker(min(e.cfg.PublishInterval/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := e.cfg.Now()
		for {
			start := e.pub.NextPeriod(now)
			end := start.Add(e.cfg.PublishInterval)
			if end.After(now) {
				break
			}
			per := publish.Period{Start: start}
			for _, f := range e.node.FSM().Fleets() {
				fs := e.periodStats(f, start, end)
				if len(fs.Metrics) > 0 {
					per.Fleets = append(per.Fleets, fs)
				}
			}
			if err := e.pub.Publish(per); err != nil {
				if errors.Is(err, publish.ErrAlreadyPublished) {
					break
				}
				e.cfg.Logger.Warn("engine: publish", "period", start, "err", err)
				break
			}
		}
	}
}

func (e *Engine) periodStats(f *shoalv1.Fleet, from, to time.Time) publish.FleetStats {
	fleetStats, perInstance := e.ingest.PeriodStats(f.Name, from, to)
	fs := publish.FleetStats{Fleet: f.Name, Group: f.Asg, Metrics: map[string]publish.Stats{}, PerInstance: f.PublishPerInstance}
	conv := func(s ingest.Stats) publish.Stats {
		return publish.Stats{SampleCount: float64(s.Count), Sum: s.Sum, Min: s.Min, Max: s.Max}
	}
	for m, s := range fleetStats {
		if s.Count == 0 {
			continue
		}
		if publish.IsCustom(m) {
			if err := e.custom.Admit(f.Name, m); err != nil {
				continue
			}
		}
		fs.Metrics[m] = conv(s)
	}
	if rpt, ok := e.feed.RequestsPerTarget(f.Name); ok {
		fs.Metrics["requests_per_target"] = publish.Stats{SampleCount: 1, Sum: rpt, Min: rpt, Max: rpt}
	}
	if f.PublishPerInstance {
		fs.Instances = map[string]map[string]publish.Stats{}
		for id, ms := range perInstance {
			fs.Instances[id] = map[string]publish.Stats{}
			for m, s := range ms {
				if _, ok := fs.Metrics[m]; ok && s.Count > 0 {
					fs.Instances[id][m] = conv(s)
				}
			}
		}
	}
	return fs
}

// alarmLoop keeps CloudWatch's alarms in step with the fleets' policies.
func (e *Engine) alarmLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.AlarmEvery)
	defer t.Stop()
	for {
		var fas []publish.FleetAlarms
		for _, f := range e.node.FSM().Fleets() {
			fas = append(fas, publish.FleetAlarms{Fleet: f.Name, Group: f.Asg, Policy: f.Policy, Actions: f.AlarmActions})
		}
		if ch, err := e.rec.Reconcile(ctx, fas); err != nil {
			if ctx.Err() == nil {
				e.cfg.Logger.Warn("engine: reconcile alarms", "err", err)
			}
		} else if len(ch.Created)+len(ch.Updated)+len(ch.Deleted) > 0 {
			e.cfg.Logger.Info("engine: alarms reconciled", "created", ch.Created, "updated", ch.Updated, "deleted", ch.Deleted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ErrNoCloud is returned by cloud-backed views on a node run with --cloud none.
var ErrNoCloud = errors.New("this cluster runs with --cloud none: no scaling engine or CloudWatch")

// Instances is the leader's live view of fleet's instances, with flags.
func (e *Engine) Instances(fleet string) ([]*shoalv1.Instance, error) {
	ins, err := e.ingest.Instances(fleet)
	if err != nil {
		return nil, err
	}
	if e.scaler != nil {
		flags := map[string]map[string]string{}
		for _, in := range ins {
			if _, ok := flags[in.Fleet]; !ok {
				flags[in.Fleet] = e.scaler.Flags(in.Fleet)
			}
			if f := flags[in.Fleet][in.Id]; f != "" {
				in.Flag = f
			}
		}
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].Id < ins[j].Id })
	return ins, nil
}

// Explain is the scaler's last evaluation of fleet.
func (e *Engine) Explain(fleet string) (*shoalv1.ExplainFleetResponse, error) {
	if e.scaler == nil {
		return nil, ErrNoCloud
	}
	x, ok := e.scaler.Explain(fleet)
	if !ok {
		return nil, fmt.Errorf("fleet %q: not evaluated yet on this leader; try again in %v", fleet, e.cfg.EvalInterval)
	}
	if gs := e.scaler.GroupStatus(fleet); gs != "" && x.Blocked == "" {
		x.Blocked = gs
	}
	return &shoalv1.ExplainFleetResponse{Fleet: fleet, Current: x.Current, Recommended: x.Recommended, Reason: x.Reason,
		Details: x.Details, Inputs: x.Inputs, Blocked: x.Blocked}, nil
}

// GroupStatus is "group not found" while a fleet's group is missing.
func (e *Engine) GroupStatus(fleet string) string {
	if e.scaler == nil {
		return ""
	}
	return e.scaler.GroupStatus(fleet)
}

// Alarms lists this cluster's alarms, for one fleet or all.
func (e *Engine) Alarms(ctx context.Context, fleet string) ([]*shoalv1.Alarm, error) {
	if e.rec == nil {
		return nil, ErrNoCloud
	}
	var names []string
	for _, f := range e.node.FSM().Fleets() {
		names = append(names, f.Name)
	}
	sts, err := e.rec.List(ctx, names, fleet)
	if err != nil {
		return nil, err
	}
	out := make([]*shoalv1.Alarm, 0, len(sts))
	for _, s := range sts {
		out = append(out, s.Proto())
	}
	return out, nil
}

var _ cloud.Scaling = (*awscloud.Cloud)(nil)

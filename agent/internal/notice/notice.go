package notice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/agent/internal/health"
	"github.com/shoal-dev/shoal/agent/internal/identity"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// The meta-data paths the watcher reads. Each answers 404 while there is no
// notice.
const (
	PathSpot        = "spot/instance-action"
	PathRebalance   = "events/recommendations/rebalance"
	PathTargetState = "autoscaling/target-lifecycle-state"
)

// WarmedPrefix starts every warm-pool lifecycle state (Warmed:Pending,
// Warmed:Stopped, Warmed:Running...).
const WarmedPrefix = "Warmed:"

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("invalid notice config")

// Kind names, as the notice counter's label and the vocabulary spell them.
const (
	KindSpot        = "spot_interruption"
	KindRebalance   = "rebalance_recommendation"
	KindTargetState = "target_lifecycle_state"
)

// Config of a Watcher; start from DefaultConfig.
type Config struct {
	// Endpoint overrides IMDS's address; empty means the SDK's default.
	Endpoint   string
	HTTPClient *http.Client
	// Poll is the period between reads of the three paths (--imds-poll).
	Poll time.Duration
	// Timeout bounds one poll of the three paths.
	Timeout time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
	// Registerer gets the notice counters; nil registers nothing.
	Registerer prometheus.Registerer
}

// DefaultConfig polls every second, as cheap as IMDS is local; AWS gives a
// Spot notice two minutes ahead, so a second is under 1 % of it.
func DefaultConfig() Config {
	return Config{Poll: time.Second, Timeout: 2 * time.Second, Now: time.Now, Logger: slog.Default()}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	switch {
	case c.Poll < 100*time.Millisecond:
		return fmt.Errorf("%w: imds-poll (%s) must be >= 100ms", ErrConfig, c.Poll)
	case c.Timeout <= 0:
		return fmt.Errorf("%w: timeout (%s) must be > 0", ErrConfig, c.Timeout)
	case c.Now == nil:
		return fmt.Errorf("%w: now is required", ErrConfig)
	case c.Logger == nil:
		return fmt.Errorf("%w: logger is required", ErrConfig)
	}
	return nil
}

// Watcher polls IMDS and turns new notices into events.
type Watcher struct {
	cfg    Config
	client *imds.Client

	mu     sync.Mutex
	last   map[shoalv1.InstanceEventKind]string // content key of the last notice sent, per kind
	target string
	// polled is set once the first poll has ended: until then the target
	// lifecycle state is unknown, and a warm-pool instance must not look
	// ready in the meantime (the runner's first check races the first poll).
	polled bool

	notices *prometheus.CounterVec
	errs    *prometheus.CounterVec
}

// New validates cfg and registers the watcher's counters.
func New(cfg Config) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Watcher{
		cfg: cfg, client: identity.NewClient(cfg.Endpoint, cfg.HTTPClient),
		last: map[shoalv1.InstanceEventKind]string{},
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_agent_instance_notices_total",
			Help: "New instance-metadata notices sent to the coordinator, by kind (spot_interruption, rebalance_recommendation, target_lifecycle_state).",
		}, []string{"kind"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_agent_imds_poll_errors_total",
			Help: "Notice reads that failed (IMDS unreachable, or a body that does not parse), by path.",
		}, []string{"path"}),
	}
	for _, k := range []string{KindSpot, KindRebalance, KindTargetState} {
		w.notices.WithLabelValues(k)
	}
	for _, p := range []string{PathSpot, PathRebalance, PathTargetState} {
		w.errs.WithLabelValues(p)
	}
	if reg := cfg.Registerer; reg != nil {
		for _, c := range []prometheus.Collector{w.notices, w.errs} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register notice metrics: %w", err)
			}
		}
	}
	return w, nil
}

// Run polls every Poll until ctx ends, handing each new notice to emit.
func (w *Watcher) Run(ctx context.Context, emit func(*shoalv1.InstanceEvent)) error {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		for _, e := range w.Poll(ctx) {
			emit(e)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Poll reads the three paths once and returns the notices not seen before,
// in path order. A path that fails is counted and logged, and tried again
// on the next poll.
func (w *Watcher) Poll(ctx context.Context) []*shoalv1.InstanceEvent {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	now := timestamppb.New(w.cfg.Now())
	var out []*shoalv1.InstanceEvent
	for _, p := range []string{PathSpot, PathRebalance, PathTargetState} {
		v, found, err := identity.Get(ctx, w.client, p)
		if err == nil && found {
			var e *shoalv1.InstanceEvent
			e, err = parse(p, v)
			if err == nil && w.fresh(e) {
				e.ObserveTime = now
				out = append(out, e)
				w.notices.WithLabelValues(kindLabel(e.Kind)).Inc()
				w.cfg.Logger.Info("instance notice", "kind", kindLabel(e.Kind), "action", e.GetAction(), "time", e.GetTime().AsTime(), "state", e.GetState())
			}
		}
		if err != nil {
			w.errs.WithLabelValues(p).Inc()
			w.cfg.Logger.Warn("instance notice read", "path", p, "err", err)
		}
	}
	w.mu.Lock()
	w.polled = true
	w.mu.Unlock()
	return out
}

// fresh records e's content as the kind's last and reports whether it
// differs from the one before.
func (w *Watcher) fresh(e *shoalv1.InstanceEvent) bool {
	key := e.GetAction() + "|" + e.GetState()
	if e.GetTime() != nil {
		key += "|" + e.GetTime().AsTime().UTC().Format(time.RFC3339Nano)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.Kind == shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_TARGET_LIFECYCLE_STATE {
		w.target = e.GetState()
	}
	if w.last[e.Kind] == key {
		return false
	}
	w.last[e.Kind] = key
	return true
}

// TargetState is the last target lifecycle state read, "" before one was.
func (w *Watcher) TargetState() string {
	st, _ := w.targetState()
	return st
}

// targetState is TargetState and whether a poll has ended yet.
func (w *Watcher) targetState() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.target, w.polled
}

// Gate wraps a readiness check: while the instance's target lifecycle state
// is a warm-pool state the agent reports not ready, whatever the
// application says, so the coordinator never counts it in service. Before
// the first poll has ended the state is unknown, so it is not ready either:
// an instance booting into the warm pool would otherwise report ready once
// and be fed to the LBs. A poll that fails to read the state leaves it
// unknown and the application decides, as outside an Auto Scaling group.
func (w *Watcher) Gate(inner health.Checker) health.Checker { return gate{w: w, inner: inner} }

type gate struct {
	w     *Watcher
	inner health.Checker
}

func (g gate) Check(ctx context.Context) health.Result {
	st, polled := g.w.targetState()
	if !polled {
		return health.Result{Ready: false, Reason: "reading the target lifecycle state from instance metadata"}
	}
	if strings.HasPrefix(st, WarmedPrefix) {
		return health.Result{Ready: false, Reason: "in the warm pool (" + st + ")"}
	}
	return g.inner.Check(ctx)
}

// maxStateLen bounds the target lifecycle state the agent passes on;
// Auto Scaling's longest is under 30 characters.
const maxStateLen = 64

func parse(path, body string) (*shoalv1.InstanceEvent, error) {
	switch path {
	case PathSpot:
		var v struct {
			Action string `json:"action"`
			Time   string `json:"time"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		switch v.Action {
		case "terminate", "stop", "hibernate":
		default:
			return nil, fmt.Errorf("%s: action %q: want terminate, stop or hibernate", path, v.Action)
		}
		t, err := time.Parse(time.RFC3339, v.Time)
		if err != nil {
			return nil, fmt.Errorf("%s: time: %w", path, err)
		}
		return &shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION, Action: v.Action, Time: timestamppb.New(t)}, nil
	case PathRebalance:
		var v struct {
			NoticeTime string `json:"noticeTime"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		t, err := time.Parse(time.RFC3339, v.NoticeTime)
		if err != nil {
			return nil, fmt.Errorf("%s: noticeTime: %w", path, err)
		}
		return &shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_REBALANCE_RECOMMENDATION, Time: timestamppb.New(t)}, nil
	default:
		st := strings.TrimSpace(body)
		if st == "" || len(st) > maxStateLen {
			return nil, fmt.Errorf("%s: state %q: want 1..%d characters", path, st, maxStateLen)
		}
		return &shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_TARGET_LIFECYCLE_STATE, State: st}, nil
	}
}

func kindLabel(k shoalv1.InstanceEventKind) string {
	switch k {
	case shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION:
		return KindSpot
	case shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_REBALANCE_RECOMMENDATION:
		return KindRebalance
	default:
		return KindTargetState
	}
}

package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

var idPrefixRE = regexp.MustCompile(`^[0-9a-f]{1,8}$`)

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("invalid loadgen config")

// builtin are the vocabulary metrics a real agent sends, in the order the
// first Metrics values are taken from.
var builtin = []string{"cpu", "mem", "load1", "net_rx", "net_tx", "disk"}

// Config describes the simulated fleet; start from DefaultConfig.
type Config struct {
	// Coordinators are the rpc addresses streams are spread over.
	Coordinators []string
	Fleet        string
	Agents       int
	// Metrics per sample: the six built-in ones first, then custom_N (10).
	Metrics int
	// Interval between one stream's batches (1 s).
	Interval time.Duration
	// Duration bounds the whole run.
	Duration time.Duration
	// Warmup is left out of the summary (0: count from the start).
	Warmup time.Duration
	// Measure is the summary's window after the warm-up (0: to the end), so
	// the run can outlast it and its end stays out of the figures.
	Measure time.Duration
	// Ramp spreads the streams' first connects (5 s); their sends are spread
	// over one interval on top, so they never all fire in one millisecond.
	Ramp time.Duration
	// StreamsPerConn is how many streams share one client connection (500).
	StreamsPerConn int
	// Backoff is the wait before a failed stream reconnects (500 ms).
	Backoff time.Duration
	// IDPrefix makes instance ids i-<prefix><hex index> ("10ad", lower-case
	// hex as instance ids are); the same prefix in a later run reuses the
	// instances.
	IDPrefix string
	// CACert (--ca-cert) turns on mutual TLS: the bundle that verifies the
	// coordinators. Each simulated agent then has its own ECDSA P-256 key,
	// an agent certificate naming its instance id, and its own connection
	// (a connection carries one client certificate), as real agents do;
	// StreamsPerConn does not apply.
	CACert string
	// CAKey (--ca-key) is the CA's key, which signs the agents'
	// certificates in-process (see agentCA); required with CACert.
	CAKey string
	// Cluster is the cluster name in the certificates ("shoal").
	Cluster string
	// Progress gets one line per ProgressEvery (1 s); nil prints nothing.
	Progress      io.Writer
	ProgressEvery time.Duration
	// DialOptions are appended to rpc.DialOptions.
	DialOptions []grpc.DialOption
	Now         func() time.Time
}

// DefaultConfig is the benchmark's usual shape: 10 metrics a second per
// agent, connects ramped over 5 s, 500 streams a connection. Coordinators,
// Fleet and Agents have no default.
func DefaultConfig() Config {
	return Config{
		Metrics:        10,
		Interval:       time.Second,
		Duration:       30 * time.Second,
		Ramp:           5 * time.Second,
		StreamsPerConn: 500,
		Backoff:        500 * time.Millisecond,
		IDPrefix:       "10ad",
		Cluster:        tlsconf.DefaultCluster,
		ProgressEvery:  time.Second,
		Now:            time.Now,
	}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	switch {
	case len(c.Coordinators) == 0:
		return fmt.Errorf("%w: coordinator: at least one address is required", ErrConfig)
	case c.Fleet == "":
		return fmt.Errorf("%w: fleet is required", ErrConfig)
	case c.Agents < 1:
		return fmt.Errorf("%w: agents (%d) must be >= 1", ErrConfig, c.Agents)
	case c.Metrics < 1:
		return fmt.Errorf("%w: metrics (%d) must be >= 1", ErrConfig, c.Metrics)
	case c.Interval <= 0:
		return fmt.Errorf("%w: interval (%s) must be > 0", ErrConfig, c.Interval)
	case c.Duration <= 0:
		return fmt.Errorf("%w: duration (%s) must be > 0", ErrConfig, c.Duration)
	case c.Warmup < 0 || c.Warmup >= c.Duration:
		return fmt.Errorf("%w: warmup (%s) must be >= 0 and < duration (%s)", ErrConfig, c.Warmup, c.Duration)
	case c.Measure < 0 || c.Warmup+c.Measure > c.Duration:
		return fmt.Errorf("%w: measure (%s) must be >= 0 and warmup + measure (%s) <= duration (%s)", ErrConfig, c.Measure, c.Warmup+c.Measure, c.Duration)
	case c.Ramp < 0:
		return fmt.Errorf("%w: ramp (%s) must be >= 0", ErrConfig, c.Ramp)
	case c.StreamsPerConn < 1:
		return fmt.Errorf("%w: streams per conn (%d) must be >= 1", ErrConfig, c.StreamsPerConn)
	case c.Backoff <= 0:
		return fmt.Errorf("%w: backoff (%s) must be > 0", ErrConfig, c.Backoff)
	case c.ProgressEvery <= 0:
		return fmt.Errorf("%w: progress every (%s) must be > 0", ErrConfig, c.ProgressEvery)
	case !idPrefixRE.MatchString(c.IDPrefix):
		return fmt.Errorf("%w: id prefix (%q) must be 1 to 8 lower-case hex digits (instance ids are i-<hex>)", ErrConfig, c.IDPrefix)
	case (c.CACert == "") != (c.CAKey == ""):
		return fmt.Errorf("%w: ca-cert and ca-key: give both for mutual TLS, or neither for plaintext", ErrConfig)
	case c.CACert != "" && tlsconf.CheckCluster(c.Cluster) != nil:
		return fmt.Errorf("%w: cluster: %v", ErrConfig, tlsconf.CheckCluster(c.Cluster))
	case c.Now == nil:
		return fmt.Errorf("%w: now: a clock is required", ErrConfig)
	}
	for _, a := range c.Coordinators {
		if a == "" || !strings.Contains(a, ":") {
			return fmt.Errorf("%w: coordinator %q must be host:port", ErrConfig, a)
		}
	}
	return nil
}

// Summary is what happened after the warm-up.
type Summary struct {
	Agents int
	// UpMin and UpEnd are streams up: the fewest seen at a progress tick
	// after the warm-up, and at the end.
	UpMin, UpEnd int
	// Expected is the batches Agents streams owe in the measured window.
	Expected uint64
	Sent     uint64
	// Failed is batches whose send failed (the stream then reconnects).
	Failed uint64
	// Late is batches sent more than a quarter interval after their slot:
	// the generator itself could not keep up.
	Late uint64
	// Rejected is samples the coordinator refused (BatchAck).
	Rejected uint64
	// Connects and Refused count stream opens that got a welcome and that
	// failed.
	Connects, Refused uint64
	Window            time.Duration
}

// KeptUp says the generator delivered its load: every stream up at the end,
// at least 95 % of the batches sent, and at most 1 % of them late.
func (s Summary) KeptUp() bool {
	return s.UpEnd == s.Agents && s.Sent*100 >= s.Expected*95 && s.Late*100 <= s.Sent
}

func (s Summary) String() string {
	return fmt.Sprintf("agents=%d up_min=%d up_end=%d expected=%d sent=%d failed=%d late=%d rejected=%d connects=%d refused=%d window=%s kept_up=%t",
		s.Agents, s.UpMin, s.UpEnd, s.Expected, s.Sent, s.Failed, s.Late, s.Rejected, s.Connects, s.Refused, s.Window.Round(time.Millisecond), s.KeptUp())
}

type counters struct {
	up                                              atomic.Int64
	sent, failed, late, rejected, connects, refused atomic.Uint64
}

// Run drives the streams until cfg.Duration passes or ctx ends, and returns
// the summary of the window after the warm-up.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	conns, err := dialAll(cfg)
	if err != nil {
		return Summary{}, err
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	var c counters
	start := cfg.Now()
	var wg sync.WaitGroup
	for i := range cfg.Agents {
		s := &stream{cfg: &cfg, c: &c, i: i, start: start,
			client: shoalv1.NewAgentServiceClient(conns[i%len(conns)])}
		wg.Go(func() { s.run(ctx) })
	}
	sum := watch(ctx, cfg, &c, start)
	wg.Wait()
	return sum, nil
}

// dialAll makes enough client connections for StreamsPerConn streams each
// (one per agent with TLS), and a multiple of the coordinators so that
// stream i % len(conns) spreads the streams evenly over the nodes.
func dialAll(cfg Config) ([]*grpc.ClientConn, error) {
	var ca *agentCA
	perConn := cfg.StreamsPerConn
	if cfg.CACert != "" {
		var err error
		if ca, err = loadAgentCA(cfg.CACert, cfg.CAKey, cfg.Cluster, cfg.Now); err != nil {
			return nil, err
		}
		perConn = 1
	}
	n := (cfg.Agents + perConn - 1) / perConn
	k := len(cfg.Coordinators)
	n = (n + k - 1) / k * k
	conns := make([]*grpc.ClientConn, 0, n)
	for j := range n {
		opts := cfg.DialOptions
		if ca != nil {
			cert, err := ca.issue(instanceID(cfg.IDPrefix, j))
			if err != nil {
				closeAll(conns)
				return nil, fmt.Errorf("agent certificate: %w", err)
			}
			opts = append(slices.Clip(opts), tlsconf.DialOption(ca.clientConfig(cert)))
		}
		cc, err := rpc.Dial(cfg.Coordinators[j%k], opts...)
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("dial %s: %w", cfg.Coordinators[j%k], err)
		}
		conns = append(conns, cc)
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// instanceID is simulated agent i's instance id (and certificate name).
func instanceID(prefix string, i int) string { return fmt.Sprintf("i-%s%05x", prefix, i) }

// watch prints progress every tick and returns the summary of the measured
// window: from Warmup for Measure (or to the end).
func watch(ctx context.Context, cfg Config, c *counters, start time.Time) Summary {
	tick := time.NewTicker(cfg.ProgressEvery)
	defer tick.Stop()
	sum := Summary{Agents: cfg.Agents, UpMin: -1}
	var base [6]uint64
	measuring, measureStart := cfg.Warmup == 0, start
	lastUp := -1
	var done *Summary
	snap := func() [6]uint64 {
		return [6]uint64{c.sent.Load(), c.failed.Load(), c.late.Load(), c.rejected.Load(), c.connects.Load(), c.refused.Load()}
	}
	finish := func(now time.Time, end [6]uint64) *Summary {
		s := sum
		if !measuring {
			measureStart, base = now, end
		}
		s.UpEnd = lastUp
		if lastUp < 0 {
			s.UpEnd = int(c.up.Load())
		}
		if s.UpMin < 0 {
			s.UpMin = s.UpEnd
		}
		s.Window = now.Sub(measureStart)
		s.Expected = uint64(float64(cfg.Agents) * s.Window.Seconds() / cfg.Interval.Seconds())
		s.Sent, s.Failed, s.Late = end[0]-base[0], end[1]-base[1], end[2]-base[2]
		s.Rejected, s.Connects, s.Refused = end[3]-base[3], end[4]-base[4], end[5]-base[5]
		return &s
	}
	prev, prevAt := snap(), start
	for {
		select {
		case <-ctx.Done():
			if done == nil {
				// Streams are closing by now: the last tick saw the end state.
				done = finish(cfg.Now(), snap())
			}
			return *done
		case <-tick.C:
		}
		now := cfg.Now()
		cur := snap()
		up := int(c.up.Load())
		// Read before this check: a tick that races the end would count
		// streams already closing.
		if ctx.Err() != nil {
			continue
		}
		if !measuring && now.Sub(start) >= cfg.Warmup {
			measuring, measureStart, base = true, now, cur
		}
		if measuring && done == nil {
			if sum.UpMin < 0 || up < sum.UpMin {
				sum.UpMin = up
			}
			lastUp = up
			if cfg.Measure > 0 && now.Sub(measureStart) >= cfg.Measure {
				done = finish(now, cur)
			}
		}
		if cfg.Progress != nil {
			dt := now.Sub(prevAt).Seconds()
			rate := func(k int) float64 { return float64(cur[k]-prev[k]) / dt }
			fmt.Fprintf(cfg.Progress, "loadgen t=%4.0fs up=%d/%d sent=%.0f/s failed=%.0f/s late=%.0f/s rejected=%.0f/s connects=%.0f/s refused=%.0f/s\n",
				now.Sub(start).Seconds(), up, cfg.Agents, rate(0), rate(1), rate(2), rate(3), rate(4), rate(5))
		}
		prev, prevAt = cur, now
	}
}

// metricNames returns the names a sample carries for Metrics values.
func metricNames(n int) []string {
	names := make([]string, 0, n)
	for i := range n {
		if i < len(builtin) {
			names = append(names, builtin[i])
		} else {
			names = append(names, fmt.Sprintf("custom_%d", i-len(builtin)+1))
		}
	}
	sort.Strings(names)
	return names
}

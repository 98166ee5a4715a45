package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// ErrFleetMismatch is returned when the coordinator sends another fleet.
var ErrFleetMismatch = errors.New("backend set for another fleet")

// Config tunes the feed client. Start from DefaultConfig and override
// fields.
type Config struct {
	// Addrs are coordinator --rpc-addr addresses, tried in turn.
	Addrs          []string
	Fleet          string
	LBID           string
	ReportInterval time.Duration
	BackoffMin     time.Duration
	BackoffMax     time.Duration
	// DialOptions are appended to rpc.DialOptions (tests add a bufconn
	// dialer here).
	DialOptions []grpc.DialOption
	Logger      *slog.Logger
	Now         func() time.Time
}

// Validate reports the first bad field, naming it and the reason. It only
// checks.
func (c Config) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("coordinator: at least one address is required")
	case c.Fleet == "":
		return errors.New("fleet: must not be empty with --coordinator")
	case c.LBID == "":
		return errors.New("lb-id: must not be empty")
	case c.ReportInterval <= 0:
		return fmt.Errorf("report-interval (%s) must be > 0", c.ReportInterval)
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("backoff min (%s) must be > 0 and <= max (%s)", c.BackoffMin, c.BackoffMax)
	case c.Logger == nil:
		return errors.New("logger: must be set")
	case c.Now == nil:
		return errors.New("now: the clock must be set")
	}
	for i, a := range c.Addrs {
		if a == "" {
			return fmt.Errorf("coordinator address %d: must not be empty", i)
		}
	}
	return nil
}

// DefaultConfig returns the defaults; Addrs, Fleet and LBID have none.
func DefaultConfig() Config {
	return Config{
		ReportInterval: time.Second,
		BackoffMin:     100 * time.Millisecond,
		BackoffMax:     5 * time.Second,
		Logger:         slog.Default(),
		Now:            time.Now,
	}
}

// Client keeps one balancer in step with the coordinator.
type Client struct {
	cfg Config
	bal *balance.Balancer

	connected atomic.Bool
	sets      atomic.Uint64
	dropped   [nDropReasons]atomic.Uint64

	mu   sync.Mutex
	prev map[string]balance.Stats
}

// New returns a feed client for bal.
func New(cfg Config, bal *balance.Balancer) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, bal: bal, prev: map[string]balance.Stats{}}, nil
}

// Connected reports whether a stream is up.
func (c *Client) Connected() bool { return c.connected.Load() }

// SetsApplied counts BackendSets applied.
func (c *Client) SetsApplied() uint64 { return c.sets.Load() }

// Run keeps a stream open, moving through the addresses with backoff, until
// ctx ends.
func (c *Client) Run(ctx context.Context) error {
	conns := make([]*grpc.ClientConn, len(c.cfg.Addrs))
	defer func() {
		for _, cc := range conns {
			if cc != nil {
				cc.Close()
			}
		}
	}()
	backoff := c.cfg.BackoffMin
	for i := 0; ; i = (i + 1) % len(c.cfg.Addrs) {
		if conns[i] == nil {
			cc, err := rpc.Dial(c.cfg.Addrs[i], c.cfg.DialOptions...)
			if err != nil {
				return fmt.Errorf("coordinator %s: %w", c.cfg.Addrs[i], err)
			}
			conns[i] = cc
		}
		got, err := c.session(ctx, conns[i])
		c.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if got {
			backoff = c.cfg.BackoffMin
		}
		c.cfg.Logger.Warn("coordinator feed lost; serving last-known backends",
			"coordinator", c.cfg.Addrs[i], "err", err, "backends", len(c.bal.Backends()), "retry_in", backoff)
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
		backoff = min(backoff*2, c.cfg.BackoffMax)
	}
}

// session runs one stream; got reports whether a set arrived on it.
func (c *Client) session(ctx context.Context, cc *grpc.ClientConn) (got bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := shoalv1.NewBackendServiceClient(cc).WatchBackends(sctx)
	if err != nil {
		return false, err
	}
	hello := &shoalv1.WatchBackendsRequest{Msg: &shoalv1.WatchBackendsRequest_Hello{Hello: &shoalv1.LBHello{LbId: c.cfg.LBID, Fleet: c.cfg.Fleet}}}
	if err := st.Send(hello); err != nil {
		return false, err
	}
	var gotSet atomic.Bool
	recvErr := make(chan error, 1)
	go func() {
		for {
			resp, err := st.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if err := c.Apply(resp.GetBackends()); err != nil {
				c.cfg.Logger.Error("backend set rejected", "err", err)
				continue
			}
			gotSet.Store(true)
			c.connected.Store(true)
		}
	}()
	t := time.NewTicker(c.cfg.ReportInterval)
	defer t.Stop()
	for {
		select {
		case err := <-recvErr:
			return gotSet.Load(), err
		case <-t.C:
			if err := st.Send(&shoalv1.WatchBackendsRequest{Msg: &shoalv1.WatchBackendsRequest_Report{Report: c.Report()}}); err != nil {
				cancel()
				return gotSet.Load(), <-recvErr
			}
		}
	}
}

// Why a backend entry was dropped from a set, the reason label of
// shoal_lb_feed_entries_dropped_total.
type DropReason int

const (
	// DropDuplicate: an address listed again; the first entry is kept.
	DropDuplicate DropReason = iota
	// DropBadAddress: not host:port with a port in 1..65535.
	DropBadAddress
	// DropUnknownState: a state this LB does not know (a newer
	// coordinator's); guessing one could send traffic to a backend that
	// must not get it.
	DropUnknownState
	// DropBadDeadline: a drain deadline that is not a valid timestamp;
	// the moment to end the backend's streams would be a guess.
	DropBadDeadline
	nDropReasons
)

func (r DropReason) String() string {
	return [...]string{"duplicate", "bad_address", "unknown_state", "bad_deadline"}[r]
}

// Dropped counts the backend entries dropped for reason r.
func (c *Client) Dropped(r DropReason) uint64 { return c.dropped[r].Load() }

// Apply installs a BackendSet in the balancer. Bad entries are dropped,
// counted and logged one by one; the rest of the set is applied. Before,
// one duplicate made the balancer refuse every update, freezing the LB on
// its old set so that new backends never reached it.
func (c *Client) Apply(set *shoalv1.BackendSet) error {
	if set == nil {
		return errors.New("empty WatchBackendsResponse")
	}
	if set.GetFleet() != "" && set.GetFleet() != c.cfg.Fleet {
		return fmt.Errorf("%w: got %q, want %q", ErrFleetMismatch, set.GetFleet(), c.cfg.Fleet)
	}
	specs := make([]balance.Spec, 0, len(set.GetBackends()))
	seen := make(map[string]bool, len(set.GetBackends()))
	drop := func(r DropReason, b *shoalv1.Backend, why string) {
		c.dropped[r].Add(1)
		c.cfg.Logger.Warn("backend entry dropped from the set", "reason", r.String(), "why", why,
			"instance", b.GetInstanceId(), "address", b.GetAddress(), "version", set.GetVersion())
	}
	for _, b := range set.GetBackends() {
		s := balance.Spec{ID: b.GetInstanceId(), Addr: b.GetAddress(), Load: b.GetLoad()}
		if err := checkAddr(s.Addr); err != nil {
			drop(DropBadAddress, b, err.Error())
			continue
		}
		switch b.GetState() {
		case shoalv1.BackendState_BACKEND_STATE_WARMING:
			s.State = balance.Warming
		case shoalv1.BackendState_BACKEND_STATE_DRAINING:
			s.State = balance.Draining
		case shoalv1.BackendState_BACKEND_STATE_ACTIVE, shoalv1.BackendState_BACKEND_STATE_UNSPECIFIED:
			// Unspecified is what coordinators that send no state mean.
			s.State = balance.Active
		default:
			drop(DropUnknownState, b, fmt.Sprintf("state %d", b.GetState()))
			continue
		}
		if dl := b.GetDrainDeadline(); dl != nil {
			if err := dl.CheckValid(); err != nil {
				drop(DropBadDeadline, b, "drain_deadline: "+err.Error())
				continue
			}
			s.DrainDeadline = dl.AsTime()
		}
		if seen[s.Addr] {
			drop(DropDuplicate, b, "address listed earlier in the set")
			continue
		}
		seen[s.Addr] = true
		specs = append(specs, s)
	}
	if err := c.bal.Update(set.GetVersion(), specs); err != nil {
		return err
	}
	c.sets.Add(1)
	return nil
}

// checkAddr accepts host:port with a non-empty host and a port in
// 1..65535, what the balancer can dial.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("empty host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not in 1..65535", port)
	}
	return nil
}

var droppedDesc = prometheus.NewDesc("shoal_lb_feed_entries_dropped_total",
	"Backend entries dropped from coordinator sets (duplicate address, bad address, unknown state, bad drain deadline); the rest of each set is applied.",
	[]string{"reason"}, nil)

// Describe and Collect export the feed's counters.
func (c *Client) Describe(ch chan<- *prometheus.Desc) { ch <- droppedDesc }

func (c *Client) Collect(ch chan<- prometheus.Metric) {
	for r := range nDropReasons {
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(c.dropped[r].Load()), r.String())
	}
}

// Report builds the per-backend report since the previous one.
func (c *Client) Report() *shoalv1.LBReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &shoalv1.LBReport{ReportTime: timestamppb.New(c.cfg.Now()), Version: c.bal.Version()}
	next := make(map[string]balance.Stats, len(c.prev))
	for _, be := range c.bal.Backends() {
		cur := be.Stats()
		d := cur.Sub(c.prev[be.Addr])
		next[be.Addr] = cur
		r.Backends = append(r.Backends, &shoalv1.BackendLoad{
			InstanceId:   be.ID,
			Address:      be.Addr,
			Requests:     d.Requests,
			InFlight:     uint32(max(cur.InFlight, 0)),
			Errors:       d.Errors,
			LatencyP50Ms: d.Quantile(0.5) * 1000,
			LatencyP99Ms: d.Quantile(0.99) * 1000,
			State:        protoState(be.State()),
			Healthy:      be.Healthy(),
		})
	}
	c.prev = next
	return r
}

func protoState(s balance.State) shoalv1.BackendState {
	switch s {
	case balance.Warming:
		return shoalv1.BackendState_BACKEND_STATE_WARMING
	case balance.Draining:
		return shoalv1.BackendState_BACKEND_STATE_DRAINING
	}
	return shoalv1.BackendState_BACKEND_STATE_ACTIVE
}

// SplitAddrs parses "a:1,b:2".
func SplitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

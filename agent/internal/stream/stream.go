package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// LeaderHintKey is the trailer a coordinator node sets when it refuses a
// stream and names the node to go to instead (agent.proto, Connect).
const LeaderHintKey = "shoal-leader-rpc-addr"

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("invalid stream config")

// CommandFunc runs a coordinator command and returns its result. It gets a
// context that ends at the command's deadline.
type CommandFunc func(ctx context.Context, cmd *shoalv1.AgentCommand) *shoalv1.CommandResult

// Config of a Client; start from DefaultConfig. Durations are fields so
// tests run fast.
type Config struct {
	Addrs []string
	// Hello is sent first on every stream; dropped_samples_total is filled in.
	Hello *shoalv1.AgentHello
	// BufferSize bounds the samples held while disconnected.
	BufferSize int
	// MaxBatch bounds the samples in one SampleBatch.
	MaxBatch int
	// Backoff is the first wait before reconnecting, doubled per failure up
	// to MaxBackoff, with full jitter.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// WelcomeTimeout bounds the wait for Welcome after hello.
	WelcomeTimeout time.Duration
	// GoodbyeTimeout bounds the wait, when stopping, for the node to close
	// the stream after the goodbye.
	GoodbyeTimeout time.Duration
	OnCommand      CommandFunc
	// OnConfig sees every AgentConfig (from Welcome or pushed later).
	OnConfig    func(*shoalv1.AgentConfig)
	DialOptions []grpc.DialOption
	Logger      *slog.Logger
}

// DefaultConfig holds 15 minutes of 1 s samples while disconnected, sends
// at most 120 a batch, and reconnects with backoff from 200 ms up to 10 s.
// Addrs and Hello have no default.
func DefaultConfig() Config {
	return Config{
		BufferSize:     900,
		MaxBatch:       120,
		Backoff:        200 * time.Millisecond,
		MaxBackoff:     10 * time.Second,
		WelcomeTimeout: 10 * time.Second,
		GoodbyeTimeout: 2 * time.Second,
		Logger:         slog.Default(),
	}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return fmt.Errorf("%w: no coordinator address", ErrConfig)
	case c.Hello == nil || c.Hello.GetInstanceId() == "":
		return fmt.Errorf("%w: hello must name the instance", ErrConfig)
	case c.BufferSize < 1:
		return fmt.Errorf("%w: buffer size (%d) must be >= 1", ErrConfig, c.BufferSize)
	case c.MaxBatch < 1:
		return fmt.Errorf("%w: max batch (%d) must be >= 1", ErrConfig, c.MaxBatch)
	case c.Backoff <= 0 || c.MaxBackoff < c.Backoff:
		return fmt.Errorf("%w: backoff (%s) must be > 0 and <= max backoff (%s)", ErrConfig, c.Backoff, c.MaxBackoff)
	case c.WelcomeTimeout <= 0:
		return fmt.Errorf("%w: welcome timeout (%s) must be > 0", ErrConfig, c.WelcomeTimeout)
	case c.GoodbyeTimeout <= 0:
		return fmt.Errorf("%w: goodbye timeout (%s) must be > 0", ErrConfig, c.GoodbyeTimeout)
	case c.Logger == nil:
		return fmt.Errorf("%w: logger is required", ErrConfig)
	}
	for i, a := range c.Addrs {
		if a == "" {
			return fmt.Errorf("%w: coordinator address %d is empty", ErrConfig, i)
		}
	}
	return nil
}

// Stats is what the agent exposes about its stream.
type Stats struct {
	Connected   bool
	Addr        string
	Buffered    int
	Dropped     uint64
	Reconnects  uint64
	SentSamples uint64
	Rejected    uint64
	// EventsSent and EventsDropped count instance events (notices).
	EventsSent    uint64
	EventsDropped uint64
}

// Client is the agent side of AgentService.Connect.
type Client struct {
	cfg Config

	mu        sync.Mutex
	ring      *ring
	events    events
	ready     bool
	reason    string
	hint      string
	addr      string
	connected bool
	wake      chan struct{}
	// results holds command results until a stream can carry them, so a
	// drain that outlives its stream is still reported.
	results chan *shoalv1.CommandResult

	reconnects atomic.Uint64
	sent       atomic.Uint64
	rejected   atomic.Uint64
}

// New validates cfg and returns a Client; Run connects.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, ring: newRing(cfg.BufferSize), wake: make(chan struct{}, 1), results: make(chan *shoalv1.CommandResult, 16)}, nil
}

// Push queues one sample and the readiness as of it. It never blocks.
func (c *Client) Push(s *shoalv1.Sample, ready bool, reason string) {
	c.mu.Lock()
	c.ring.push(s)
	c.ready, c.reason = ready, reason
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		Connected: c.connected, Addr: c.addr, Buffered: c.ring.n, Dropped: c.ring.dropped,
		Reconnects: c.reconnects.Load(), SentSamples: c.sent.Load(), Rejected: c.rejected.Load(),
		EventsSent: c.events.sent, EventsDropped: c.events.dropped,
	}
}

// Run keeps a stream up until ctx ends. It returns ctx's error.
func (c *Client) Run(ctx context.Context) error {
	wait := c.cfg.Backoff
	next := 0
	for {
		addr := c.cfg.Addrs[next%len(c.cfg.Addrs)]
		c.mu.Lock()
		if c.hint != "" {
			addr, c.hint = c.hint, ""
		} else {
			next++
		}
		c.mu.Unlock()

		welcomed, err := c.session(ctx, addr)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.reconnects.Add(1)
		if welcomed {
			wait = c.cfg.Backoff
		}
		c.mu.Lock()
		hinted := c.hint != ""
		c.mu.Unlock()
		c.cfg.Logger.Warn("coordinator stream ended", "addr", addr, "err", err, "redirect", hinted)
		if hinted {
			continue // a redirect is not a failure: go there at once
		}
		// Full jitter spreads a fleet of agents reconnecting at once.
		d := rand.N(wait) + time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		wait = min(2*wait, c.cfg.MaxBackoff)
	}
}

// session runs one stream to addr. welcomed says the node accepted us.
func (c *Client) session(ctx context.Context, addr string) (welcomed bool, err error) {
	conn, err := rpc.Dial(addr, c.cfg.DialOptions...)
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	// The stream outlives ctx by a moment, so a stopping agent can still say
	// goodbye; it ends when session returns.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	st, err := shoalv1.NewAgentServiceClient(conn).Connect(sctx)
	if err != nil {
		return false, fmt.Errorf("connect %s: %w", addr, err)
	}
	var sendMu sync.Mutex
	send := func(m *shoalv1.ConnectRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return st.Send(m)
	}

	hello := proto.Clone(c.cfg.Hello).(*shoalv1.AgentHello)
	c.mu.Lock()
	hello.DroppedSamplesTotal = c.ring.dropped
	c.mu.Unlock()
	if err := send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		return false, c.recvErr(st, err)
	}

	welcome := make(chan *shoalv1.Welcome, 1)
	recvDone := make(chan error, 1)
	go func() { recvDone <- c.receive(ctx, st, welcome) }()

	timer := time.NewTimer(c.cfg.WelcomeTimeout)
	defer timer.Stop()
	select {
	case w := <-welcome:
		c.cfg.Logger.Info("connected to coordinator", "addr", addr, "node", w.GetNodeId(), "fleet", w.GetFleet(), "leader", w.GetLeaderRpcAddr())
		if w.GetConfig() != nil && c.cfg.OnConfig != nil {
			c.cfg.OnConfig(w.GetConfig())
		}
	case err := <-recvDone:
		return false, err
	case <-timer.C:
		return false, fmt.Errorf("%s: no welcome within %s", addr, c.cfg.WelcomeTimeout)
	case <-ctx.Done():
		return false, ctx.Err()
	}

	c.mu.Lock()
	c.connected, c.addr = true, addr
	c.events.replay()
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.connected = false
		c.mu.Unlock()
	}()

	var seq uint64
	for {
		// Notices first: they are what the coordinator must act on within
		// seconds, and a full sample buffer must not delay them.
		if err := c.sendEvents(send); err != nil {
			return true, c.recvErr(st, err)
		}
		// Drain the buffer, one batch at a time, then wait for more.
		for {
			c.mu.Lock()
			samples := c.ring.peek(c.cfg.MaxBatch)
			b := &shoalv1.SampleBatch{Samples: samples, DroppedSamplesTotal: c.ring.dropped, Ready: c.ready, ReadyReason: c.reason}
			c.mu.Unlock()
			if len(samples) == 0 {
				break
			}
			seq++
			b.Seq = seq
			if err := send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Batch{Batch: b}}); err != nil {
				return true, c.recvErr(st, err)
			}
			c.mu.Lock()
			// Samples in flight are popped only once sent; if the ring
			// wrapped meanwhile, the dropped ones were the oldest of these.
			c.ring.pop(len(samples) - dropDelta(b.DroppedSamplesTotal, c.ring.dropped, len(samples)))
			c.mu.Unlock()
			c.sent.Add(uint64(len(samples)))
		}
		select {
		case <-c.wake:
		case r := <-c.results:
			if err := send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_CommandResult{CommandResult: r}}); err != nil {
				c.queueResult(r)
				return true, c.recvErr(st, err)
			}
		case err := <-recvDone:
			return true, err
		case <-ctx.Done():
			_ = send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Goodbye{Goodbye: &shoalv1.AgentGoodbye{Reason: "agent stopping"}}})
			sendMu.Lock()
			_ = st.CloseSend()
			sendMu.Unlock()
			// Wait for the node to end the stream, so the goodbye is read
			// before the connection goes.
			select {
			case <-recvDone:
			case <-time.After(c.cfg.GoodbyeTimeout):
			}
			return true, ctx.Err()
		}
	}
}

// dropDelta is how many of the n samples just sent were already dropped from
// the ring (pushed out as oldest) while the lock was released.
func dropDelta(before, after uint64, n int) int {
	return int(min(after-before, uint64(n)))
}

// recvErr turns a failed Send into the stream's real status, which only Recv
// reports, and records a leader hint from the trailer.
func (c *Client) recvErr(st grpc.BidiStreamingClient[shoalv1.ConnectRequest, shoalv1.ConnectResponse], sendErr error) error {
	if !errors.Is(sendErr, io.EOF) {
		return sendErr
	}
	for {
		if _, err := st.Recv(); err != nil {
			c.noteHint(st.Trailer())
			return err
		}
	}
}

func (c *Client) noteHint(md metadata.MD) {
	if v := md.Get(LeaderHintKey); len(v) > 0 && v[0] != "" {
		c.mu.Lock()
		c.hint = v[0]
		c.mu.Unlock()
	}
}

// receive reads the stream; ctx is Run's, so commands outlive the stream.
func (c *Client) receive(ctx context.Context, st grpc.BidiStreamingClient[shoalv1.ConnectRequest, shoalv1.ConnectResponse], welcome chan<- *shoalv1.Welcome) error {
	for {
		m, err := st.Recv()
		if err != nil {
			c.noteHint(st.Trailer())
			if s, ok := status.FromError(err); ok && s.Code() != codes.Canceled {
				return fmt.Errorf("coordinator closed the stream: %s: %s", s.Code(), s.Message())
			}
			return err
		}
		switch msg := m.GetMsg().(type) {
		case *shoalv1.ConnectResponse_Welcome:
			select {
			case welcome <- msg.Welcome:
			default:
			}
		case *shoalv1.ConnectResponse_Config:
			if c.cfg.OnConfig != nil {
				c.cfg.OnConfig(msg.Config)
			}
		case *shoalv1.ConnectResponse_Ack:
			if r := msg.Ack.GetRejected(); r > 0 {
				c.rejected.Add(uint64(r))
				c.cfg.Logger.Warn("coordinator rejected samples", "seq", msg.Ack.GetSeq(), "rejected", r, "reason", msg.Ack.GetRejectReason())
			}
		case *shoalv1.ConnectResponse_Command:
			go c.runCommand(ctx, msg.Command)
		}
	}
}

func (c *Client) runCommand(ctx context.Context, cmd *shoalv1.AgentCommand) {
	res := &shoalv1.CommandResult{Id: cmd.GetId(), Kind: cmd.GetKind()}
	switch dl := cmd.GetDeadline(); {
	case c.cfg.OnCommand == nil || cmd.GetKind() != shoalv1.CommandKind_COMMAND_KIND_DRAIN:
		res.Error = fmt.Sprintf("command kind %s not supported by this agent", cmd.GetKind())
	case dl != nil && !dl.IsValid():
		res.Error = fmt.Sprintf("command deadline: %v", dl.CheckValid())
	default:
		// An unset deadline leaves the hook to its own timeout.
		cctx := ctx
		if dl != nil {
			var cancel context.CancelFunc
			cctx, cancel = context.WithDeadline(ctx, dl.AsTime())
			defer cancel()
		}
		res = c.cfg.OnCommand(cctx, cmd)
		res.Id, res.Kind = cmd.GetId(), cmd.GetKind()
	}
	c.queueResult(res)
}

func (c *Client) queueResult(r *shoalv1.CommandResult) {
	select {
	case c.results <- r:
	default:
		c.cfg.Logger.Warn("command result dropped: too many undelivered results", "id", r.GetId())
	}
}

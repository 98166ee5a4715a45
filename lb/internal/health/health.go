package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// Mode is the kind of check.
type Mode string

const (
	TCP  Mode = "tcp"
	HTTP Mode = "http"
	GRPC Mode = "grpc"
)

// Config tunes the checker.
type Config struct {
	Mode Mode
	// Path is the HTTP path for Mode HTTP.
	Path string
	// Service is the gRPC health service name ("" = the server).
	Service  string
	Interval time.Duration
	Timeout  time.Duration
	// Rise consecutive passes make an unhealthy backend healthy again,
	// Fall consecutive failures make a healthy one unhealthy.
	Rise, Fall int
}

// DefaultConfig is a TCP connect every 5 s.
func DefaultConfig() Config {
	return Config{Mode: TCP, Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 1, Fall: 1}
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Mode != TCP && c.Mode != HTTP && c.Mode != GRPC:
		return fmt.Errorf("health mode (%q) must be tcp, http or grpc", c.Mode)
	case c.Mode == HTTP && (c.Path == "" || c.Path[0] != '/'):
		return fmt.Errorf("health-path (%q) must start with /", c.Path)
	case c.Interval <= 0:
		return fmt.Errorf("health-interval (%s) must be > 0", c.Interval)
	case c.Timeout <= 0:
		return fmt.Errorf("health-timeout (%s) must be > 0", c.Timeout)
	case c.Timeout > c.Interval:
		return fmt.Errorf("health-timeout (%s) must be <= health-interval (%s)", c.Timeout, c.Interval)
	case c.Rise < 1 || c.Fall < 1:
		return fmt.Errorf("health rise (%d) and fall (%d) must be >= 1", c.Rise, c.Fall)
	}
	return nil
}

// Checker checks one balancer's backends.
type Checker struct {
	cfg    Config
	bal    *balance.Balancer
	client *http.Client

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	streak map[string]int // >0 passes in a row, <0 failures in a row
}

// New returns a checker; Run starts it.
func New(cfg Config, bal *balance.Balancer) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Checker{
		cfg: cfg, bal: bal,
		client: &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{
			DisableKeepAlives: true, // a check must prove a new connection works
			DialContext:       (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		}},
		conns:  map[string]*grpc.ClientConn{},
		streak: map[string]int{},
	}, nil
}

// Run checks every backend now and then every interval until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	defer c.closeConns()
	for {
		c.CheckAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CheckAll checks every backend once, concurrently.
func (c *Checker) CheckAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, be := range c.bal.Backends() {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
			defer cancel()
			err := c.check(cctx, be.Addr)
			c.record(be, err)
		})
	}
	wg.Wait()
}

func (c *Checker) record(be *balance.Backend, err error) {
	c.mu.Lock()
	s := c.streak[be.Addr]
	if err == nil {
		s = max(s, 0) + 1
	} else {
		s = min(s, 0) - 1
	}
	c.streak[be.Addr] = s
	c.mu.Unlock()
	switch {
	case err == nil && (be.Healthy() || s >= c.cfg.Rise):
		be.SetHealth(true, "")
	case err != nil && (!be.Healthy() || -s >= c.cfg.Fall):
		be.SetHealth(false, err.Error())
		c.bal.NoteError(err.Error())
	}
}

func (c *Checker) check(ctx context.Context, addr string) error {
	switch c.cfg.Mode {
	case HTTP:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+c.cfg.Path, nil)
		if err != nil {
			return err
		}
		resp, err := c.client.Do(req)
		if err != nil {
			return describe(addr, err)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 399 {
			return fmt.Errorf("GET %s on %s: status %d", c.cfg.Path, addr, resp.StatusCode)
		}
		return nil
	case GRPC:
		cc, err := c.conn(addr)
		if err != nil {
			return err
		}
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: c.cfg.Service})
		if err != nil {
			return fmt.Errorf("grpc health on %s: %w", addr, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("grpc health on %s: %s", addr, resp.GetStatus())
		}
		return nil
	}
	d := net.Dialer{Timeout: c.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return describe(addr, err)
	}
	return conn.Close()
}

func (c *Checker) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.conns[addr]; cc != nil {
		return cc, nil
	}
	cc, err := rpc.Dial(addr)
	if err != nil {
		return nil, fmt.Errorf("grpc health on %s: %w", addr, err)
	}
	c.conns[addr] = cc
	return cc, nil
}

func (c *Checker) closeConns() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a, cc := range c.conns {
		cc.Close()
		delete(c.conns, a)
	}
}

// ErrCheck wraps every failed check.
var ErrCheck = errors.New("health check failed")

func describe(addr string, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return &checkError{"connect refused " + addr}
	case errors.As(err, &ne) && ne.Timeout():
		return &checkError{"connect timeout " + addr}
	}
	return &checkError{fmt.Sprintf("%s: %v", addr, err)}
}

// checkError reads like the examples ("connect refused 10.0.0.4:80")
// and still matches ErrCheck.
type checkError struct{ msg string }

func (e *checkError) Error() string { return e.msg }
func (e *checkError) Unwrap() error { return ErrCheck }

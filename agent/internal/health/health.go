package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoal-dev/shoal/proto/rpc"
)

// Result is one check's outcome. Reason is empty when ready.
type Result struct {
	Ready  bool
	Reason string
}

// Checker checks readiness once, within ctx's deadline.
type Checker interface {
	Check(ctx context.Context) Result
}

// None is used when no check is configured: an application with no health
// endpoint is ready once its agent reports.
type None struct{}

// Check reports ready.
func (None) Check(context.Context) Result { return Result{Ready: true} }

// HTTP is ready when GET URL answers 2xx.
type HTTP struct {
	URL    string
	Client *http.Client
}

// Check runs one GET.
func (h HTTP) Check(ctx context.Context) Result {
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return Result{Reason: fmt.Sprintf("health %s: %v", h.URL, err)}
	}
	resp, err := c.Do(req)
	if err != nil {
		return Result{Reason: fmt.Sprintf("health %s: %v", h.URL, err)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Result{Reason: fmt.Sprintf("health %s: status %s", h.URL, resp.Status)}
	}
	return Result{Ready: true}
}

// GRPC is ready when grpc.health.v1.Health/Check answers SERVING.
type GRPC struct {
	Addr string
	// Service is the name checked; "" is the whole server.
	Service string
	// DialOptions are appended to rpc.DialOptions (tests pass a bufconn dialer).
	DialOptions []grpc.DialOption

	mu   sync.Mutex
	conn *grpc.ClientConn
}

// Check runs one Health/Check call over a connection kept between checks.
func (g *GRPC) Check(ctx context.Context) Result {
	conn, err := g.dial()
	if err != nil {
		return Result{Reason: fmt.Sprintf("health grpc %s: %v", g.Addr, err)}
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: g.Service})
	if err != nil {
		return Result{Reason: fmt.Sprintf("health grpc %s: %v", g.Addr, err)}
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return Result{Reason: fmt.Sprintf("health grpc %s: %s", g.Addr, resp.GetStatus())}
	}
	return Result{Ready: true}
}

func (g *GRPC) dial() (*grpc.ClientConn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		c, err := rpc.Dial(g.Addr, g.DialOptions...)
		if err != nil {
			return nil, err
		}
		g.conn = c
	}
	return g.conn, nil
}

// Close releases the connection.
func (g *GRPC) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		return nil
	}
	err := g.conn.Close()
	g.conn = nil
	return err
}

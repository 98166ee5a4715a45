package demoapp

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"time"
)

// ErrConfig marks a configuration error; the message names the field.
var ErrConfig = errors.New("invalid demoapp config")

// Config is how one demoapp instance serves and what it models.
type Config struct {
	// Listen is the one address serving HTTP/1.1, h2c and gRPC.
	Listen string
	// InstanceID names the instance in responses; empty asks IMDS, then
	// falls back to the hostname.
	InstanceID string
	// IMDSEndpoint overrides the metadata endpoint (the SDK also honours
	// AWS_EC2_METADATA_SERVICE_ENDPOINT).
	IMDSEndpoint string
	// IMDSTimeout bounds the instance id lookup.
	IMDSTimeout time.Duration
	// Capacity is the most requests per second the instance serves.
	Capacity float64
	// QueueSize is how many requests may wait for capacity; beyond it
	// requests are rejected (HTTP 503, gRPC RESOURCE_EXHAUSTED).
	QueueSize int
	// Work is the real CPU time burnt per request.
	Work time.Duration
	// UtilWindow is the sliding window over which utilisation is measured.
	UtilWindow time.Duration
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after SIGTERM.
	ShutdownTimeout time.Duration
	// Clock drives the capacity model.
	Clock Clock
	// Logger receives the server's logs.
	Logger *slog.Logger
}

// DefaultConfig is one instance of the demo's usual size: 50 requests/s,
// a queue of 500, 200µs of real CPU a request, on :8080 and the wall clock.
// InstanceID and IMDSEndpoint stay empty (ask IMDS at the SDK's endpoint).
func DefaultConfig() Config {
	return Config{
		Listen:          ":8080",
		IMDSTimeout:     2 * time.Second,
		Capacity:        50,
		QueueSize:       500,
		Work:            200 * time.Microsecond,
		UtilWindow:      2 * time.Second,
		ShutdownTimeout: 30 * time.Second,
		Clock:           wallClock{},
		Logger:          slog.Default(),
	}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("%w: listen (%q) must be host:port: %v", ErrConfig, c.Listen, err)
	}
	if math.IsNaN(c.Capacity) || math.IsInf(c.Capacity, 0) || c.Capacity <= 0 {
		return fmt.Errorf("%w: capacity (%v) must be a finite number of requests/s > 0", ErrConfig, c.Capacity)
	}
	if c.QueueSize < 0 {
		return fmt.Errorf("%w: queue (%d) must be >= 0", ErrConfig, c.QueueSize)
	}
	if c.Work < 0 {
		return fmt.Errorf("%w: work (%s) must be >= 0", ErrConfig, c.Work)
	}
	if service := time.Duration(float64(time.Second) / c.Capacity); c.Work > service {
		return fmt.Errorf("%w: work (%s) must be <= 1/capacity (%s): real CPU per request may not exceed the modelled service time", ErrConfig, c.Work, service)
	}
	if c.UtilWindow <= 0 {
		return fmt.Errorf("%w: util-window (%s) must be > 0", ErrConfig, c.UtilWindow)
	}
	if c.IMDSTimeout <= 0 {
		return fmt.Errorf("%w: imds-timeout (%s) must be > 0", ErrConfig, c.IMDSTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("%w: shutdown-timeout (%s) must be > 0", ErrConfig, c.ShutdownTimeout)
	}
	if c.Clock == nil {
		return fmt.Errorf("%w: clock is required", ErrConfig)
	}
	if c.Logger == nil {
		return fmt.Errorf("%w: logger is required", ErrConfig)
	}
	return nil
}

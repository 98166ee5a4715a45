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
	// Clock drives the capacity model; nil means the wall clock.
	Clock Clock
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults are the values used for unset fields.
var Defaults = Config{
	Listen:          ":8080",
	IMDSTimeout:     2 * time.Second,
	Capacity:        50,
	QueueSize:       500,
	Work:            200 * time.Microsecond,
	UtilWindow:      2 * time.Second,
	ShutdownTimeout: 30 * time.Second,
}

// WithDefaults returns c with every unset field whose zero value is invalid
// taken from Defaults. QueueSize and Work keep their zero: no queue and no CPU
// burnt are meaningful choices.
func (c Config) WithDefaults() Config {
	if c.Listen == "" {
		c.Listen = Defaults.Listen
	}
	if c.IMDSTimeout == 0 {
		c.IMDSTimeout = Defaults.IMDSTimeout
	}
	if c.Capacity == 0 {
		c.Capacity = Defaults.Capacity
	}
	if c.UtilWindow == 0 {
		c.UtilWindow = Defaults.UtilWindow
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Defaults.ShutdownTimeout
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
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
	return nil
}

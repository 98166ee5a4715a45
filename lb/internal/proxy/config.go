package proxy

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/proxy/h1"
)

// BackendProtocol is how non-gRPC requests reach backends.
type BackendProtocol string

const (
	HTTP1 BackendProtocol = "http1"
	H2C   BackendProtocol = "h2c"
	H2    BackendProtocol = "h2"
)

// Config tunes the proxy. Start from DefaultConfig and override fields.
type Config struct {
	// HeaderTimeout bounds reading a request's headers and body, and an h2
	// client's preface (slowloris).
	HeaderTimeout time.Duration
	// IdleTimeout closes a client connection with no request in flight.
	IdleTimeout time.Duration
	// ConnectTimeout bounds dialing a backend.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds waiting for a backend's response
	// headers (for HTTP/1.1 backends: the whole response).
	ResponseHeaderTimeout time.Duration
	// MaxConns bounds open client connections per listener set; a
	// connection over it is closed at once and counted
	// (shoal_lb_connections_refused_total{reason="max_conns"}), so a flood
	// cannot exhaust file descriptors or memory.
	MaxConns int
	// MaxHeaderBytes bounds a request's header block.
	MaxHeaderBytes int
	// MaxConcurrentStreams bounds streams per h2 client connection.
	MaxConcurrentStreams uint32
	// MaxBodyBytes bounds buffered HTTP/1.1 request and response bodies.
	MaxBodyBytes int
	// BackendProtocol is used for non-gRPC requests; gRPC always uses h2c,
	// or h2 when BackendTLS is set.
	BackendProtocol BackendProtocol
	// BackendTLS, when set, makes h2 to backends use TLS with this config.
	BackendTLS *tls.Config
	// TLS, when set, makes the listener speak TLS, choosing h2 or
	// http/1.1 by ALPN.
	TLS *tls.Config
	// Engine names the HTTP/2 engine; only "mux" (package h2mux) is left.
	// The field and its flag stay so that configurations naming it keep
	// working; the measured losers (nethttp, fasthttp) were removed.
	Engine string
	// H1Engine names the HTTP/1.1 engine (package h1): "loop", event
	// loops for plain-TCP clients that hand anything else to the
	// goroutine code (h1/loop.go; the default where epoll exists), or
	// "raw", a goroutine per connection (the default elsewhere).
	H1Engine string
	// H1Loops is the number of event loops of --h1-engine loop; 0 is
	// h1.DefaultLoops: one per P (GOMAXPROCS) but one, at least one.
	H1Loops int
	// DrainPoll is how often a draining backend's in-flight count is read.
	DrainPoll time.Duration
	Logger    *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		HeaderTimeout:         10 * time.Second,
		IdleTimeout:           120 * time.Second,
		ConnectTimeout:        2 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxConns:              10_000,
		MaxHeaderBytes:        16 << 10,
		MaxConcurrentStreams:  1000,
		MaxBodyBytes:          64 << 20,
		BackendProtocol:       HTTP1,
		DrainPoll:             50 * time.Millisecond,
		Engine:                "mux",
		H1Engine:              defaultH1Engine(),
		Logger:                slog.Default(),
	}
}

// defaultH1Engine is the event loops where they run (epoll), else raw:
// the loops cost less CPU per request and have a shorter tail (bench-lb,
// ARCHITECTURE.md's Load balancer).
func defaultH1Engine() string {
	if h1.LoopSupported {
		return "loop"
	}
	return "raw"
}

// Validate reports the first bad field, naming it and the reason. It
// only checks.
func (c Config) Validate() error {
	switch {
	case c.HeaderTimeout <= 0:
		return fmt.Errorf("header-timeout (%s) must be > 0", c.HeaderTimeout)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("idle-timeout (%s) must be > 0", c.IdleTimeout)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("connect-timeout (%s) must be > 0", c.ConnectTimeout)
	case c.ResponseHeaderTimeout <= 0:
		return fmt.Errorf("response-header-timeout (%s) must be > 0", c.ResponseHeaderTimeout)
	case c.MaxConns < 1:
		return fmt.Errorf("max-conns (%d) must be >= 1", c.MaxConns)
	case c.MaxHeaderBytes < 1024:
		return fmt.Errorf("max-header-bytes (%d) must be >= 1024", c.MaxHeaderBytes)
	case c.MaxConcurrentStreams < 1:
		return fmt.Errorf("max-concurrent-streams (%d) must be >= 1", c.MaxConcurrentStreams)
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("max-body-bytes (%d) must be >= 0", c.MaxBodyBytes)
	case c.H1Loops < 0:
		return fmt.Errorf("h1-loops (%d) must be >= 0 (0: one per GOMAXPROCS but one)", c.H1Loops)
	case c.DrainPoll <= 0:
		return fmt.Errorf("drain-poll (%s) must be > 0", c.DrainPoll)
	case c.Logger == nil:
		return fmt.Errorf("logger: must be set")
	}
	switch c.Engine {
	case "mux":
	case "nethttp":
		return fmt.Errorf("h2-engine (%q) was removed: it cost several times mux's CPU per call (ARCHITECTURE.md, Load balancer); use mux", c.Engine)
	default:
		return fmt.Errorf("h2-engine (%q) must be mux", c.Engine)
	}
	switch c.H1Engine {
	case "raw":
	case "loop":
		if !h1.LoopSupported {
			return fmt.Errorf("h1-engine (%q) needs Linux (epoll); use raw", c.H1Engine)
		}
	case "fasthttp":
		return fmt.Errorf("h1-engine (%q) was removed: it cost more CPU per request than raw (ARCHITECTURE.md, Load balancer); use raw", c.H1Engine)
	default:
		return fmt.Errorf("h1-engine (%q) must be raw or loop", c.H1Engine)
	}
	switch c.BackendProtocol {
	case HTTP1, H2C, H2:
	default:
		return fmt.Errorf("backend-protocol (%q) must be http1, h2c or h2", c.BackendProtocol)
	}
	if c.BackendProtocol == H2 && c.BackendTLS == nil {
		return fmt.Errorf("backend-protocol h2 needs backend TLS (--backend-tls)")
	}
	return nil
}

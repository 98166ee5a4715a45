package proxy

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"
)

// BackendProtocol is how non-gRPC requests reach backends.
type BackendProtocol string

const (
	HTTP1 BackendProtocol = "http1"
	H2C   BackendProtocol = "h2c"
	H2    BackendProtocol = "h2"
)

// Config tunes the proxy. Zero fields take the defaults of DefaultConfig.
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
	// MaxHeaderBytes bounds a request's header block.
	MaxHeaderBytes int
	// MaxConcurrentStreams bounds streams per h2 client connection.
	MaxConcurrentStreams uint32
	// MaxBodyBytes bounds buffered HTTP/1.1 request and response bodies.
	MaxBodyBytes int
	// MaxConnsPerBackend bounds HTTP/1.1 connections to one backend.
	MaxConnsPerBackend int
	// BackendProtocol is used for non-gRPC requests; gRPC always uses h2c,
	// or h2 when BackendTLS is set.
	BackendProtocol BackendProtocol
	// BackendTLS, when set, makes h2 to backends use TLS with this config.
	BackendTLS *tls.Config
	// TLS, when set, makes the listener speak TLS, choosing h2 or
	// http/1.1 by ALPN.
	TLS *tls.Config
	// Engine serves HTTP/2 clients: "mux" forwards frames (the default,
	// cheapest), "nethttp" uses x/net/http2's Server and Transport.
	Engine string
	// H1Engine serves HTTP/1.1 clients: "raw" copies heads and bodies
	// (the default, cheapest), "fasthttp" uses valyala/fasthttp.
	H1Engine string
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
		MaxHeaderBytes:        16 << 10,
		MaxConcurrentStreams:  1000,
		MaxBodyBytes:          64 << 20,
		MaxConnsPerBackend:    1024,
		BackendProtocol:       HTTP1,
		DrainPoll:             50 * time.Millisecond,
		Engine:                "mux",
		H1Engine:              "raw",
		Logger:                slog.Default(),
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = d.HeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.ResponseHeaderTimeout == 0 {
		c.ResponseHeaderTimeout = d.ResponseHeaderTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxConnsPerBackend == 0 {
		c.MaxConnsPerBackend = d.MaxConnsPerBackend
	}
	if c.BackendProtocol == "" {
		c.BackendProtocol = d.BackendProtocol
	}
	if c.Engine == "" {
		c.Engine = d.Engine
	}
	if c.H1Engine == "" {
		c.H1Engine = d.H1Engine
	}
	if c.DrainPoll == 0 {
		c.DrainPoll = d.DrainPoll
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	switch {
	case c.HeaderTimeout < 0:
		return fmt.Errorf("header-timeout (%s) must be > 0", c.HeaderTimeout)
	case c.IdleTimeout < 0:
		return fmt.Errorf("idle-timeout (%s) must be > 0", c.IdleTimeout)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("connect-timeout (%s) must be > 0", c.ConnectTimeout)
	case c.ResponseHeaderTimeout < 0:
		return fmt.Errorf("response-header-timeout (%s) must be > 0", c.ResponseHeaderTimeout)
	case c.MaxHeaderBytes < 0 || (c.MaxHeaderBytes > 0 && c.MaxHeaderBytes < 1024):
		return fmt.Errorf("max-header-bytes (%d) must be >= 1024", c.MaxHeaderBytes)
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("max-body-bytes (%d) must be >= 0", c.MaxBodyBytes)
	case c.MaxConnsPerBackend < 0:
		return fmt.Errorf("max-conns-per-backend (%d) must be >= 0", c.MaxConnsPerBackend)
	}
	switch c.Engine {
	case "", "mux", "nethttp":
	default:
		return fmt.Errorf("h2-engine (%q) must be mux or nethttp", c.Engine)
	}
	switch c.H1Engine {
	case "", "raw", "fasthttp":
	default:
		return fmt.Errorf("h1-engine (%q) must be raw or fasthttp", c.H1Engine)
	}
	switch c.BackendProtocol {
	case "", HTTP1, H2C, H2:
	default:
		return fmt.Errorf("backend-protocol (%q) must be http1, h2c or h2", c.BackendProtocol)
	}
	if c.BackendProtocol == H2 && c.BackendTLS == nil {
		return fmt.Errorf("backend-protocol h2 needs backend TLS (--backend-tls)")
	}
	return nil
}

package h2mux

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/h1"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// Config is what the engine needs of the proxy's configuration.
type Config struct {
	HeaderTimeout        time.Duration
	IdleTimeout          time.Duration
	ConnectTimeout       time.Duration
	MaxHeaderBytes       int
	MaxBodyBytes         int
	MaxConcurrentStreams uint32
	// BackendTLS makes backend connections h2 over TLS (scheme https).
	BackendTLS bool
	// H1, when set, answers non-gRPC requests from HTTP/1.1 backends;
	// otherwise every stream is forwarded to h2c/h2 backends.
	H1 *h1.Engine
}

// Engine serves HTTP/2 client connections.
type Engine struct {
	cfg Config
	bal *balance.Balancer
	// ctx bounds backend dials; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	closing atomic.Bool
	mu      sync.Mutex
	conns   map[*muxConn]struct{}
}

// New returns an engine picking backends from bal.
func New(cfg Config, bal *balance.Balancer) *Engine {
	e := &Engine{cfg: cfg, bal: bal, conns: map[*muxConn]struct{}{}}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// Attach gives a new backend the engine's pool.
func (e *Engine) Attach(up *upstream.Upstream) { up.Mux = &muxPool{} }

// ServeConn serves one HTTP/2 client connection (its preface unread)
// until it closes.
func (e *Engine) ServeConn(c net.Conn) {
	if e.closing.Load() {
		c.Close()
		return
	}
	e.serveMux(c)
}

// track registers client connections for Shutdown.
func (e *Engine) track(d *muxConn, add bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if add {
		e.conns[d] = struct{}{}
		return
	}
	delete(e.conns, d)
}

// Shutdown sends GOAWAY to every client connection; each closes once its
// streams ended.
func (e *Engine) Shutdown() {
	e.closing.Store(true)
	e.mu.Lock()
	conns := make([]*muxConn, 0, len(e.conns))
	for d := range e.conns {
		conns = append(conns, d)
	}
	e.mu.Unlock()
	for _, d := range conns {
		d.mu.Lock()
		if !d.closed {
			d.goaway = true
			d.wf.WriteGoAway(d.lastPeerID, http2.ErrCodeNo, []byte("shutting down"))
			d.bw.Flush()
			if len(d.streams) == 0 {
				d.failLocked(errors.New("shutdown"))
			}
		}
		d.mu.Unlock()
	}
}

// Close closes every client connection and stops backend dials.
func (e *Engine) Close() {
	e.cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	for d := range e.conns {
		d.c.Close()
	}
}

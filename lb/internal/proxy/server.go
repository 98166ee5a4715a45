package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/h1"
	"github.com/shoal-dev/shoal/lb/internal/proxy/h2mux"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = errors.New("proxy: closed")

var h2Preface = []byte(http2.ClientPreface)

// engine serves the client connections of one protocol.
type engine interface {
	// ServeConn serves c until it closes.
	ServeConn(c net.Conn)
	// Attach gives a new backend the engine's connection pools.
	Attach(up *upstream.Upstream)
	// Shutdown stops taking requests and closes each connection once
	// the requests in flight on it ended.
	Shutdown()
	// Close closes every connection now.
	Close()
}

var (
	_ engine = (*h1.Engine)(nil)
	_ engine = (*h2mux.Engine)(nil)
)

// Proxy serves one listener for one fleet.
type Proxy struct {
	cfg Config
	bal *balance.Balancer
	log *slog.Logger
	h1  engine
	h2  engine

	ctx    context.Context // ends drains at Shutdown
	cancel context.CancelFunc

	mu      sync.Mutex
	lns     []net.Listener
	conns   sync.WaitGroup
	closing atomic.Bool

	open          atomic.Int64  // client connections being served
	refusedMaxCon atomic.Uint64 // closed at accept: MaxConns were open
}

// New builds a proxy and its balancer (bcfg) for one fleet. Both configs
// start from their DefaultConfig.
func New(cfg Config, bcfg balance.Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	bal, err := balance.New(bcfg, balance.Hooks{
		Added: func(be *balance.Backend) {
			up := upstream.New(be, cfg.ConnectTimeout, cfg.BackendTLS)
			p.h1.Attach(up)
			p.h2.Attach(up)
			be.Transport = up
		},
		Draining: func(be *balance.Backend) { go upstream.Of(be).Drain(p.ctx, cfg.DrainPoll) },
		Removed:  func(be *balance.Backend) { go upstream.Of(be).Drain(p.ctx, cfg.DrainPoll) },
	})
	if err != nil {
		return nil, err
	}
	p.bal = bal
	h1e := h1.New(h1.Config{
		HeaderTimeout:         cfg.HeaderTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		MaxHeaderBytes:        cfg.MaxHeaderBytes,
		MaxBodyBytes:          cfg.MaxBodyBytes,
		ViaH2:                 cfg.BackendProtocol != HTTP1,
		BackendTLS:            cfg.BackendTLS,
		Loop:                  cfg.H1Engine == "loop",
		Loops:                 cfg.H1Loops,
	}, bal)
	h2cfg := h2mux.Config{
		HeaderTimeout:        cfg.HeaderTimeout,
		IdleTimeout:          cfg.IdleTimeout,
		ConnectTimeout:       cfg.ConnectTimeout,
		MaxHeaderBytes:       cfg.MaxHeaderBytes,
		MaxBodyBytes:         cfg.MaxBodyBytes,
		MaxConcurrentStreams: cfg.MaxConcurrentStreams,
		BackendTLS:           cfg.BackendTLS != nil,
	}
	if cfg.BackendProtocol == HTTP1 {
		h2cfg.H1 = h1e
	}
	p.h1, p.h2 = h1e, h2mux.New(h2cfg, bal)
	return p, nil
}

// OpenConns is the number of client connections being served.
func (p *Proxy) OpenConns() int64 { return p.open.Load() }

// RefusedMaxConns counts connections closed at accept because MaxConns
// were open.
func (p *Proxy) RefusedMaxConns() uint64 { return p.refusedMaxCon.Load() }

// H1LoopStats counts the HTTP/1.1 event loops' work (--h1-engine loop).
func (p *Proxy) H1LoopStats() h1.LoopStats { return p.h1.(*h1.Engine).LoopStats() }

// Balancer is the proxy's balancing core (feed and health update it).
func (p *Proxy) Balancer() *balance.Balancer { return p.bal }

// Serve accepts connections on ln until Shutdown. Each connection is
// classified by its first bytes: the HTTP/2 preface goes to the h2 engine,
// anything else to the HTTP/1.1 engine. With TLS, ALPN decides.
func (p *Proxy) Serve(ln net.Listener) error {
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		return ErrClosed
	}
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.closing.Load() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return err
		}
		p.mu.Lock()
		if p.closing.Load() {
			p.mu.Unlock()
			c.Close()
			return ErrClosed
		}
		// Over the limit the connection is closed before a byte is read:
		// the protocol (TLS, h2, HTTP/1.1) is not known yet, so no error
		// response could be written that every client reads, and a 503
		// would cost the work the limit is there to spare.
		if p.open.Add(1) > int64(p.cfg.MaxConns) {
			p.open.Add(-1)
			p.mu.Unlock()
			p.refusedMaxCon.Add(1)
			c.Close()
			continue
		}
		p.conns.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.conns.Done()
			defer p.open.Add(-1)
			p.classify(c)
		}()
	}
}

func (p *Proxy) classify(c net.Conn) {
	deadline := time.Now().Add(p.cfg.HeaderTimeout)
	if p.cfg.TLS != nil {
		tc := p.cfg.TLS.Clone()
		tc.NextProtos = []string{"h2", "http/1.1"}
		tlsConn := tls.Server(c, tc)
		tlsConn.SetDeadline(deadline)
		if err := tlsConn.Handshake(); err != nil {
			p.log.Debug("tls handshake", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			return
		}
		tlsConn.SetDeadline(time.Time{})
		if tlsConn.ConnectionState().NegotiatedProtocol == "h2" {
			p.h2.ServeConn(tlsConn)
			return
		}
		p.h1.ServeConn(tlsConn)
		return
	}
	c.SetReadDeadline(deadline)
	buf := make([]byte, len(h2Preface))
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if !bytes.HasPrefix(h2Preface, buf[:n]) {
			break
		}
		if err != nil {
			// Slow or silent clients are cut off here (slowloris).
			c.Close()
			return
		}
	}
	c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, buf: buf[:n]}
	if n == len(h2Preface) && bytes.Equal(buf, h2Preface) {
		p.h2.ServeConn(pc)
		return
	}
	p.h1.ServeConn(pc)
}

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// then closes what is left.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closing.Store(true)
	for _, ln := range p.lns {
		ln.Close()
	}
	p.mu.Unlock()
	p.h1.Shutdown()
	p.h2.Shutdown()
	done := make(chan struct{})
	go func() { p.conns.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		p.h1.Close()
		p.h2.Close()
	}
	p.cancel()
	p.h2.Close() // stops backend dials
	for _, be := range p.bal.Backends() {
		upstream.Of(be).Close(ctx)
	}
	return err
}

// peekedConn replays the bytes read while classifying a connection.
type peekedConn struct {
	net.Conn
	buf []byte
}

// Peeked returns the connection and the bytes not replayed yet, for an
// engine that reads the socket itself (h1's raw reads).
func (c *peekedConn) Peeked() (net.Conn, []byte) {
	b := c.buf
	c.buf = nil
	return c.Conn, b
}

func (c *peekedConn) Read(b []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(b, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

package proxy

//lint:file-ignore SA1019 the nethttp engine serves connections already classified by their first bytes; net/http has no per-connection ServeConn, x/net/http2 does.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"

	"github.com/shoal-dev/shoal/lb/internal/balance"
)

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = errors.New("proxy: closed")

var h2Preface = []byte(http2.ClientPreface)

// Proxy serves one listener for one fleet.
type Proxy struct {
	cfg Config
	bal *balance.Balancer
	log *slog.Logger

	fast   *fasthttp.Server
	h1ln   *chanListener
	h2s    *http2.Server
	h2base *http.Server

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	lns      []net.Listener
	h2conns  map[net.Conn]struct{}
	muxConns map[*muxConn]struct{}
	rawConns map[net.Conn]struct{}
	rawWG    sync.WaitGroup
	h2wg     sync.WaitGroup
	fastRun  sync.Once
	closing  atomic.Bool
}

// New builds a proxy and its balancer (bcfg) for one fleet.
func New(cfg Config, bcfg balance.Config) (*Proxy, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, h2conns: map[net.Conn]struct{}{}, muxConns: map[*muxConn]struct{}{}, rawConns: map[net.Conn]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	bal, err := balance.New(bcfg, balance.Hooks{
		Added:    func(be *balance.Backend) { be.Transport = newUpstream(be, &p.cfg) },
		Draining: func(be *balance.Backend) { go be.Transport.(*upstream).drain(p.ctx, p.cfg.DrainPoll) },
		Removed:  func(be *balance.Backend) { go be.Transport.(*upstream).drain(p.ctx, p.cfg.DrainPoll) },
	})
	if err != nil {
		return nil, err
	}
	p.bal = bal
	p.fast = &fasthttp.Server{
		Handler:                       p.serveH1,
		ReadTimeout:                   cfg.HeaderTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		ReadBufferSize:                cfg.MaxHeaderBytes,
		MaxRequestBodySize:            cfg.MaxBodyBytes,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		Logger:                        fastLogger{p.log},
	}
	p.h1ln = newChanListener()
	p.h2s = &http2.Server{
		MaxConcurrentStreams: cfg.MaxConcurrentStreams,
		IdleTimeout:          cfg.IdleTimeout,
	}
	p.h2base = &http.Server{
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.HeaderTimeout,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	if err := http2.ConfigureServer(p.h2base, p.h2s); err != nil {
		return nil, fmt.Errorf("configure http2: %w", err)
	}
	return p, nil
}

// Balancer is the proxy's balancing core (feed and health update it).
func (p *Proxy) Balancer() *balance.Balancer { return p.bal }

// Serve accepts connections on ln until Shutdown. Each connection is
// classified by its first bytes: the HTTP/2 preface goes to the h2 server,
// anything else to the HTTP/1.1 server. With TLS, ALPN decides.
func (p *Proxy) Serve(ln net.Listener) error {
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		return ErrClosed
	}
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	p.fastRun.Do(func() {
		go func() {
			if err := p.fast.Serve(p.h1ln); err != nil && !p.closing.Load() {
				p.log.Error("http/1.1 server stopped", "err", err)
			}
		}()
	})
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
		go p.classify(c)
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
			p.serveH2Conn(tlsConn)
			return
		}
		p.serveH1Conn(tlsConn)
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
		p.serveH2Conn(pc)
		return
	}
	p.serveH1Conn(pc)
}

func (p *Proxy) serveH1Conn(c net.Conn) {
	if p.cfg.H1Engine == "raw" && p.cfg.BackendProtocol == HTTP1 {
		p.serveRaw(c)
		return
	}
	p.h1ln.push(c)
}

func (p *Proxy) serveH2Conn(c net.Conn) {
	if p.cfg.Engine == "mux" {
		if p.closing.Load() {
			c.Close()
			return
		}
		p.serveMux(c)
		return
	}
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.h2conns[c] = struct{}{}
	p.h2wg.Add(1)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.h2conns, c)
		p.mu.Unlock()
		p.h2wg.Done()
	}()
	p.h2s.ServeConn(c, &http2.ServeConnOpts{Context: p.ctx, BaseConfig: p.h2base, Handler: p})
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
	p.h1ln.Close()
	errc := make(chan error, 1)
	go func() { errc <- p.fast.ShutdownWithContext(ctx) }()
	p.h2base.Shutdown(ctx) // sends GOAWAY on every h2 connection
	p.shutdownMux()
	p.mu.Lock()
	for c := range p.rawConns {
		// Wakes connections waiting for their next request; one in the
		// middle of an exchange finishes it and then sees closing.
		c.SetReadDeadline(time.Now())
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.h2wg.Wait(); p.rawWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		p.mu.Lock()
		for c := range p.h2conns {
			c.Close()
		}
		for c := range p.rawConns {
			c.Close()
		}
		p.mu.Unlock()
		p.closeMux()
	}
	err := <-errc
	p.cancel()
	for _, be := range p.bal.Backends() {
		up := be.Transport.(*upstream)
		up.h1.CloseIdleConnections()
		up.h2.shutdown(ctx)
	}
	return err
}

// peekedConn replays the bytes read while classifying a connection.
type peekedConn struct {
	net.Conn
	buf []byte
}

func (c *peekedConn) Read(b []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(b, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// chanListener hands classified HTTP/1.1 connections to fasthttp's Serve,
// which gives us its worker pool and graceful shutdown.
type chanListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }

type fastLogger struct{ l *slog.Logger }

func (f fastLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...), "server", "http/1.1")
}

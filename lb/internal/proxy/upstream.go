package proxy

//lint:file-ignore SA1019 per-backend graceful GOAWAY on drain needs x/net/http2's ClientConnPool and ClientConn.Shutdown, which net/http does not expose.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"

	"github.com/shoal-dev/shoal/lb/internal/balance"
)

// upstream is the proxy's per-backend state, hung off balance.Backend.
type upstream struct {
	be  *balance.Backend
	h1  *fasthttp.HostClient
	h2  *h2pool
	mux *muxPool
	raw *rawPool
	cfg *Config

	mu      sync.Mutex
	streams map[*stream]struct{}
}

// stream is a long-lived exchange (gRPC call, h2 request, upgraded
// connection) that a drain deadline may have to end.
type stream struct {
	cancel func(cause error)
}

// errDrainDeadline ends streams still open at a draining backend's deadline.
var errDrainDeadline = errors.New("backend draining: drain deadline reached")

func newUpstream(be *balance.Backend, cfg *Config) *upstream {
	up := &upstream{be: be, cfg: cfg, streams: map[*stream]struct{}{}}
	dialTimeout := cfg.ConnectTimeout
	up.h1 = &fasthttp.HostClient{
		Addr:                          be.Addr,
		MaxConns:                      cfg.MaxConnsPerBackend,
		MaxIdleConnDuration:           60 * time.Second,
		ReadTimeout:                   cfg.ResponseHeaderTimeout,
		WriteTimeout:                  cfg.ResponseHeaderTimeout,
		MaxResponseBodySize:           cfg.MaxBodyBytes,
		ReadBufferSize:                cfg.MaxHeaderBytes,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		Dial: func(addr string) (net.Conn, error) {
			return fasthttp.DialTimeout(addr, dialTimeout)
		},
	}
	up.h2 = &h2pool{addr: be.Addr}
	up.mux = &muxPool{}
	up.raw = &rawPool{}
	t := &http2.Transport{
		AllowHTTP:          cfg.BackendTLS == nil,
		ReadIdleTimeout:    30 * time.Second,
		PingTimeout:        5 * time.Second,
		MaxHeaderListSize:  uint32(cfg.MaxHeaderBytes) * 4,
		DisableCompression: true,
		ConnPool:           up.h2,
	}
	up.h2.t = t
	up.h2.dial = func(ctx context.Context) (net.Conn, error) {
		d := net.Dialer{Timeout: dialTimeout}
		c, err := d.DialContext(ctx, "tcp", be.Addr)
		if err != nil || cfg.BackendTLS == nil {
			return c, err
		}
		tc := cfg.BackendTLS.Clone()
		tc.NextProtos = []string{"h2"}
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(be.Addr)
		}
		tlsConn := tls.Client(c, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tlsConn, nil
	}
	return up
}

func (up *upstream) track(cancel func(cause error)) *stream {
	s := &stream{cancel: cancel}
	up.mu.Lock()
	up.streams[s] = struct{}{}
	up.mu.Unlock()
	return s
}

func (up *upstream) untrack(s *stream) {
	up.mu.Lock()
	delete(up.streams, s)
	up.mu.Unlock()
}

// endStreams ends every tracked stream with cause.
func (up *upstream) endStreams(cause error) int {
	up.mu.Lock()
	ss := make([]*stream, 0, len(up.streams))
	for s := range up.streams {
		ss = append(ss, s)
	}
	up.mu.Unlock()
	for _, s := range ss {
		s.cancel(cause)
	}
	return len(ss)
}

// closeConns closes idle HTTP/1.1 connections and sends GOAWAY on every h2
// connection, letting running streams finish.
func (up *upstream) closeConns(ctx context.Context) {
	up.h1.CloseIdleConnections()
	up.raw.closeIdle()
	up.mux.shutdown()
	up.h2.shutdown(ctx)
}

// drain waits for in-flight requests to finish (or the deadline), ends what
// is left, then closes the backend's connections gracefully.
func (up *upstream) drain(ctx context.Context, poll time.Duration) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for up.be.InFlight() > 0 {
		if dl := up.be.DrainDeadline(); !dl.IsZero() && !time.Now().Before(dl) {
			up.endStreams(errDrainDeadline)
			break
		}
		if up.be.State() != balance.Draining && !up.be.Removed() {
			return // undrained: back in service
		}
		select {
		case <-ctx.Done():
			up.endStreams(errDrainDeadline)
			return
		case <-tick.C:
		}
	}
	if up.be.State() != balance.Draining && !up.be.Removed() {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	up.closeConns(sctx)
}

// h2pool is an http2.ClientConnPool holding one backend's connections, so a
// drain can GOAWAY exactly that backend's connections.
type h2pool struct {
	addr string
	t    *http2.Transport
	dial func(context.Context) (net.Conn, error)

	mu    sync.Mutex
	conns []*http2.ClientConn
}

var _ http2.ClientConnPool = (*h2pool)(nil)

func (p *h2pool) GetClientConn(req *http.Request, _ string) (*http2.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cc := range p.conns {
		if cc.ReserveNewRequest() {
			return cc, nil
		}
	}
	// Dialing under the lock keeps a burst from opening one connection per
	// request; other backends are not affected.
	c, err := p.dial(req.Context())
	if err != nil {
		return nil, &dialError{addr: p.addr, err: err}
	}
	cc, err := p.t.NewClientConn(c)
	if err != nil {
		c.Close()
		return nil, &dialError{addr: p.addr, err: err}
	}
	if !cc.ReserveNewRequest() {
		cc.Close()
		return nil, &dialError{addr: p.addr, err: errors.New("new connection refused a stream")}
	}
	p.conns = append(p.conns, cc)
	return cc, nil
}

func (p *h2pool) MarkDead(cc *http2.ClientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.conns {
		if c == cc {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			return
		}
	}
}

func (p *h2pool) shutdown(ctx context.Context) {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, cc := range conns {
		wg.Go(func() {
			if err := cc.Shutdown(ctx); err != nil {
				cc.Close()
			}
		})
	}
	wg.Wait()
}

func (p *h2pool) numConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// dialError marks a failure to reach a backend: nothing was sent.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return describeDial(e.addr, e.err) }
func (e *dialError) Unwrap() error { return e.err }

func describeDial(addr string, err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connect refused " + addr
	case errors.Is(err, fasthttp.ErrDialTimeout), errors.As(err, &ne) && ne.Timeout():
		return "connect timeout " + addr
	}
	return fmt.Sprintf("connect %s: %v", addr, err)
}

// isDialErr reports whether err happened before any byte reached the backend.
func isDialErr(err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		return true
	}
	if errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

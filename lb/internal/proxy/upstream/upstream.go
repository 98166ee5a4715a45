package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/balance"
)

// Pool is an engine's set of connections to one backend.
type Pool interface {
	// Shutdown closes idle connections and asks busy ones to close once
	// their requests end (GOAWAY on HTTP/2).
	Shutdown(ctx context.Context)
	// Conns is the number of open connections (idle ones for HTTP/1.1,
	// whose busy connections belong to their exchange).
	Conns() int
}

// Upstream is the proxy's per-backend state, hung off balance.Backend.
type Upstream struct {
	Backend *balance.Backend
	// Pools are set once, before the backend becomes pickable; each
	// engine reads its own.
	H1, H2, Mux Pool

	dialTimeout time.Duration
	tls         *tls.Config

	mu      sync.Mutex
	streams map[*Stream]struct{}
}

// Of returns be's Upstream.
func Of(be *balance.Backend) *Upstream { return be.Transport.(*Upstream) }

// New returns be's state; backendTLS, when set, makes DialH2 speak TLS.
func New(be *balance.Backend, dialTimeout time.Duration, backendTLS *tls.Config) *Upstream {
	return &Upstream{Backend: be, dialTimeout: dialTimeout, tls: backendTLS, streams: map[*Stream]struct{}{}}
}

// Dial opens a plain TCP connection to the backend.
func (u *Upstream) Dial() (net.Conn, error) {
	c, err := net.DialTimeout("tcp", u.Backend.Addr, u.dialTimeout)
	if err != nil {
		return nil, &DialError{Addr: u.Backend.Addr, Err: err}
	}
	return c, nil
}

// DialH2 opens a connection for HTTP/2: h2c, or h2 over TLS (ALPN h2)
// when backend TLS is configured.
func (u *Upstream) DialH2(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: u.dialTimeout}
	c, err := d.DialContext(ctx, "tcp", u.Backend.Addr)
	if err != nil {
		return nil, &DialError{Addr: u.Backend.Addr, Err: err}
	}
	if u.tls == nil {
		return c, nil
	}
	tc := u.tls.Clone()
	tc.NextProtos = []string{"h2"}
	if tc.ServerName == "" {
		tc.ServerName, _, _ = net.SplitHostPort(u.Backend.Addr)
	}
	tlsConn := tls.Client(c, tc)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, &DialError{Addr: u.Backend.Addr, Err: err}
	}
	return tlsConn, nil
}

// Stream is a long-lived exchange (gRPC call, h2 request, upgraded
// connection) that a drain deadline may have to end.
type Stream struct {
	cancel func(cause error)
}

// ErrDrainDeadline ends streams still open at a draining backend's deadline.
var ErrDrainDeadline = errors.New("backend draining: drain deadline reached")

// Track registers a stream; cancel ends it.
func (u *Upstream) Track(cancel func(cause error)) *Stream {
	s := &Stream{cancel: cancel}
	u.mu.Lock()
	u.streams[s] = struct{}{}
	u.mu.Unlock()
	return s
}

// Untrack forgets a stream that ended.
func (u *Upstream) Untrack(s *Stream) {
	u.mu.Lock()
	delete(u.streams, s)
	u.mu.Unlock()
}

// EndStreams ends every tracked stream with cause and returns how many.
func (u *Upstream) EndStreams(cause error) int {
	u.mu.Lock()
	ss := make([]*Stream, 0, len(u.streams))
	for s := range u.streams {
		ss = append(ss, s)
	}
	u.mu.Unlock()
	for _, s := range ss {
		s.cancel(cause)
	}
	return len(ss)
}

// Conns is the number of open connections over all pools.
func (u *Upstream) Conns() int {
	n := 0
	for _, p := range []Pool{u.H1, u.H2, u.Mux} {
		if p != nil {
			n += p.Conns()
		}
	}
	return n
}

// Close shuts every pool down gracefully.
func (u *Upstream) Close(ctx context.Context) {
	for _, p := range []Pool{u.H1, u.H2, u.Mux} {
		if p != nil {
			p.Shutdown(ctx)
		}
	}
}

// Drain waits for in-flight requests to finish (or the drain deadline),
// ends what is left, then closes the backend's connections gracefully. It
// returns early when the backend is back in service.
func (u *Upstream) Drain(ctx context.Context, poll time.Duration) {
	be := u.Backend
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for be.InFlight() > 0 {
		if dl := be.DrainDeadline(); !dl.IsZero() && !time.Now().Before(dl) {
			u.EndStreams(ErrDrainDeadline)
			break
		}
		if be.State() != balance.Draining && !be.Removed() {
			return // undrained: back in service
		}
		select {
		case <-ctx.Done():
			u.EndStreams(ErrDrainDeadline)
			return
		case <-tick.C:
		}
	}
	if be.State() != balance.Draining && !be.Removed() {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u.Close(sctx)
}

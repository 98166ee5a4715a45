package h1

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// Config is what the engine needs of the proxy's configuration; the proxy
// fills it from its own, validated one.
type Config struct {
	HeaderTimeout         time.Duration
	IdleTimeout           time.Duration
	ResponseHeaderTimeout time.Duration
	MaxHeaderBytes        int
	MaxBodyBytes          int
	// ViaH2, when set, sends requests to backends over HTTP/2 (h2c, or h2
	// when BackendTLS is set) with buffered bodies, instead of copying
	// them to pooled HTTP/1.1 connections.
	ViaH2      bool
	BackendTLS *tls.Config
	// Loop serves plain-TCP clients from event loops (loop.go) instead
	// of a goroutine each; what a loop does not serve it hands back.
	Loop bool
	// Loops is the number of loops; 0 is DefaultLoops(GOMAXPROCS).
	Loops int
}

// DefaultLoops is the number of event loops for procs Ps when none is
// configured: one per P but one, and at least one. The P left over runs
// everything that is not a loop (the goroutine engine's hand-overs, h2
// and gRPC, health checks, the GC, the runtime's network poll that wakes
// a parked loop). With a loop on every P, bench-lb on two cores had a p99
// of 1.6-1.9x nginx's against 1.1x with one loop (ARCHITECTURE.md, Load
// balancer).
func DefaultLoops(procs int) int { return max(1, procs-1) }

// Engine serves HTTP/1.1 client connections.
type Engine struct {
	cfg Config
	bal *balance.Balancer

	closing atomic.Bool
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	loops   loops

	// Requests the loops served, connections they handed to the
	// goroutine engine (before an exchange, or with a response to copy),
	// and times a response body waited for a slow client.
	loopServed, loopHanded, loopStalls atomic.Uint64
}

// LoopStats is what LoopStats of the proxy says.
func (e *Engine) LoopStats() LoopStats {
	return LoopStats{Served: e.loopServed.Load(), Handed: e.loopHanded.Load(), Stalled: e.loopStalls.Load()}
}

// LoopStats counts the event loops' work (--h1-engine loop).
type LoopStats struct {
	// Served is the number of requests the loops served themselves.
	Served uint64
	// Handed is the number of connections handed to the goroutine
	// engine (a request with a body, Upgrade or Expect; a chunked or
	// close-delimited response).
	Handed uint64
	// Stalled is the number of times a loop stopped reading a backend
	// because its client had not taken the output yet.
	Stalled uint64
}

// New returns an engine picking backends from bal.
func New(cfg Config, bal *balance.Balancer) *Engine {
	return &Engine{cfg: cfg, bal: bal, conns: map[net.Conn]struct{}{}}
}

// Attach gives a new backend the engine's pools.
func (e *Engine) Attach(up *upstream.Upstream) {
	up.H1 = &pool{be: up.Backend}
	if e.cfg.ViaH2 {
		up.H2 = newH2Pool(up, e.cfg)
	}
}

var bufWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// client is the per-connection state.
type client struct {
	e        *Engine
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	ip       string
	deadline time.Time
	// handed: a loop read the head of the next request and handed the
	// connection over; it is served even if Shutdown began meanwhile.
	handed bool
}

// ServeConn serves one HTTP/1.1 client connection until it closes.
func (e *Engine) ServeConn(c net.Conn) {
	if e.cfg.Loop && !e.cfg.ViaH2 {
		e.serveOnLoop(c)
		return
	}
	e.serve(c)
}

// serve serves c from this goroutine.
func (e *Engine) serve(c net.Conn) {
	cl := e.newClient(c)
	defer e.endClient(cl)
	cl.serve()
}

func (e *Engine) newClient(c net.Conn) *client {
	s := newSock(c)
	cl := &client{e: e, c: c, br: bufio.NewReaderSize(s, e.cfg.MaxHeaderBytes), bw: bufWriterPool.Get().(*bufio.Writer)}
	cl.bw.Reset(s)
	if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		cl.ip = host
	}
	e.track(c, true)
	return cl
}

func (e *Engine) endClient(cl *client) {
	e.track(cl.c, false)
	cl.c.Close()
	cl.bw.Reset(nil)
	bufWriterPool.Put(cl.bw)
}

// serve serves the client's requests until the connection closes.
func (cl *client) serve() {
	e, c := cl.e, cl.c
	var h head
	for ; cl.handed || !e.closing.Load(); cl.handed = false {
		// Deadlines are moved lazily: a busy connection pays for a timer
		// update once per quarter of the timeout, not per request. The
		// header timeout bounds the wait for a whole request head, so a
		// slowloris client is cut off; between requests it doubles as
		// the idle timeout while it is the shorter one.
		wait := min(e.cfg.HeaderTimeout, e.cfg.IdleTimeout)
		now := time.Now()
		if cl.deadline.Sub(now) < wait*3/4 {
			cl.deadline = now.Add(wait)
			c.SetReadDeadline(cl.deadline)
		}
		n, err := readHead(cl.br, e.cfg.MaxHeaderBytes)
		if err != nil {
			if errors.Is(err, errHeadTooLarge) {
				cl.reply(431, "request head exceeds max-header-bytes "+strconv.Itoa(e.cfg.MaxHeaderBytes), true)
			}
			if errors.Is(err, errBareLF) {
				cl.reply(400, err.Error(), true)
			}
			return
		}
		raw, _ := cl.br.Peek(n)
		if err := parseHead(raw, true, &h); err != nil {
			cl.reply(400, err.Error(), true)
			return
		}
		keep := (h.minor == 1 && !h.connClose) || (h.minor == 0 && h.connKeep)
		if h.upgrade && h.connUpg {
			e.upgrade(cl, &h, n)
			return
		}
		if h.expect100 {
			cl.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		}
		var ok bool
		if e.cfg.ViaH2 {
			ok = e.exchangeViaH2(cl, &h, n, keep)
		} else {
			ok = e.exchange(cl, &h, n, keep)
		}
		if !ok || !keep {
			cl.bw.Flush()
			return
		}
		if err := cl.bw.Flush(); err != nil {
			return
		}
	}
}

// refresh moves the client's read deadline before a body read blocks: a
// body may take long, but each stall is bounded by the idle timeout.
func (cl *client) refresh() {
	cl.deadline = time.Now().Add(cl.e.cfg.IdleTimeout)
	cl.c.SetReadDeadline(cl.deadline)
}

// reply writes a response made up by the proxy.
func (cl *client) reply(status int, msg string, closeConn bool) {
	writeReply(cl.bw, status, msg, closeConn)
	cl.bw.Flush()
}

func writeReply(bw *bufio.Writer, status int, msg string, closeConn bool) {
	body := msg + "\n"
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(status))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(status))
	bw.WriteString("\r\nContent-Type: " + upstream.ContentTypeText + "\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(body)))
	bw.WriteString("\r\n")
	if closeConn {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	bw.WriteString(body)
}

func (e *Engine) track(c net.Conn, add bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if add {
		e.conns[c] = struct{}{}
		return
	}
	delete(e.conns, c)
}

// Shutdown lets each connection finish the exchange it is in and closes
// it before the next request.
func (e *Engine) Shutdown() {
	e.closing.Store(true)
	e.loops.each(func(l *loop) { l.shutdown() })
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.conns {
		// Wakes connections waiting for their next request; one in the
		// middle of an exchange finishes it and then sees closing.
		c.SetReadDeadline(time.Now())
	}
}

// Close closes every client connection.
func (e *Engine) Close() {
	e.loops.each(func(l *loop) { l.closeAll() })
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.conns {
		c.Close()
	}
}

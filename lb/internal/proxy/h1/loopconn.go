//go:build linux

package h1

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// lstate is where a loop's client connection is.
type lstate uint8

const (
	stHead  lstate = iota // waiting for a request head
	stDial                // waiting for a backend dial
	stWait                // request sent, waiting for the response head
	stBody                // copying a Content-Length response body
	stDrain               // writing the last output, then closing
	stGone                // closed or handed to the goroutine engine
)

// maxLoopOut bounds a client's unwritten output: past it the loop stops
// reading the backend until the client takes some.
const maxLoopOut = 64 << 10

// lconn is a client connection served by a loop.
type lconn struct {
	lsock
	br       *bufio.Reader
	ip       string
	state    lstate
	deadline time.Time // of the current wait
	// outWait: in stHead, the last response is still being written, and
	// deadline is the client's to take it (step).
	outWait bool
	done    chan lhandoff

	// the exchange in progress
	h     head
	n     int
	keep  bool
	a     balance.Attempt
	be    *balance.Backend
	bc    *lback
	fresh bool
	start time.Time
	resp  head
	left  int64 // response body bytes still to copy
}

// lback is a backend connection owned by a loop.
type lback struct {
	lsock
	br       *bufio.Reader
	up       *upstream.Upstream
	owner    *lconn
	reused   bool
	idleAt   time.Time
	deadline time.Time
}

// lhandoff is what a loop sends the goroutine waiting in ServeConn: the
// end of the connection (c nil), or the connection to serve on, with what
// the loop had read and not written, and for a handover in the middle of
// an exchange, the response to copy.
type lhandoff struct {
	c   net.Conn
	pre []byte // client bytes read, not served
	out []byte // client output not written yet
	mid *lmid
}

type lmid struct {
	bc    net.Conn
	bpre  []byte // backend bytes read, starting with the response head
	h     head
	resp  head
	keep  bool
	be    *balance.Backend
	start time.Time
	a     balance.Attempt
}

func (b *lback) sockFD() *lsock { return &b.lsock }

func (b *lback) event(ev uint32) {
	b.mark(ev)
	if b.owner != nil {
		b.owner.backendStep()
		return
	}
	// Idle: an edge for data read already, or the backend closed the
	// connection or sent what no request asked for.
	if ev&evErr != 0 || b.hup {
		b.close()
	} else if _, err := b.br.Peek(1); !errors.Is(err, errWouldBlock) {
		b.close()
	}
	if b.closed {
		b.up.H1.(*pool).ldrop(b.l, b)
	}
}

func (b *lback) close() {
	b.closeFD()
}

func (c *lconn) sockFD() *lsock { return &c.lsock }

func (s *lsock) mark(ev uint32) {
	if ev&(evIn|evErr) != 0 {
		s.readable = true
	}
	if ev&(unix.EPOLLRDHUP|evErr) != 0 {
		s.hup = true
	}
	if ev&(evOut|evErr) != 0 {
		s.writable = true
	}
}

func (c *lconn) event(ev uint32) {
	c.mark(ev)
	if c.state == stBody || c.state == stWait {
		// Output the client took may let the body go on.
		c.backendStep()
		return
	}
	c.step()
}

// step moves the connection on after a client event.
func (c *lconn) step() {
	n := len(c.out)
	if err := c.flush(); err != nil {
		c.close()
		return
	}
	switch c.state {
	case stDrain:
		if len(c.out) == 0 {
			c.close()
		} else if len(c.out) < n {
			c.deadline = time.Now().Add(c.l.e.cfg.IdleTimeout)
		}
	case stHead:
		if len(c.out) > 0 {
			// The last response first. Its client has the idle timeout
			// to take each part of it, as during a body; the header
			// timeout starts once it is written (raw sets its read
			// deadline after the flush): a slow reader of a response's
			// tail is not cut off by the header timeout.
			if !c.outWait || len(c.out) < n {
				c.outWait = true
				c.deadline = time.Now().Add(c.l.e.cfg.IdleTimeout)
			}
			return
		}
		if c.outWait {
			c.outWait = false
			c.deadline = time.Now().Add(min(c.l.e.cfg.HeaderTimeout, c.l.e.cfg.IdleTimeout))
		}
		c.readRequest()
	}
}

func (c *lconn) enterHead() {
	c.state = stHead
	c.outWait = false
	c.deadline = time.Now().Add(min(c.l.e.cfg.HeaderTimeout, c.l.e.cfg.IdleTimeout))
}

// readRequest parses the next request head, as ServeConn does, and starts
// its exchange or hands the connection over.
func (c *lconn) readRequest() {
	e := c.l.e
	if e.closing.Load() {
		c.close()
		return
	}
	n, err := readHead(c.br, e.cfg.MaxHeaderBytes)
	if errors.Is(err, errWouldBlock) {
		return
	}
	if err != nil {
		switch {
		case errors.Is(err, errHeadTooLarge):
			c.reply(431, "request head exceeds max-header-bytes "+strconv.Itoa(e.cfg.MaxHeaderBytes), true)
		case errors.Is(err, errBareLF):
			c.reply(400, err.Error(), true)
		}
		c.drain()
		return
	}
	raw, _ := c.br.Peek(n)
	if err := parseHead(raw, true, &c.h); err != nil {
		c.reply(400, err.Error(), true)
		c.drain()
		return
	}
	if c.h.chunked || c.h.length > 0 || c.h.expect100 || (c.h.upgrade && c.h.connUpg) {
		c.handOver(nil)
		return
	}
	c.n = n
	c.keep = (c.h.minor == 1 && !c.h.connClose) || (c.h.minor == 0 && c.h.connKeep)
	c.a = e.bal.Attempt()
	c.fresh = false
	c.pick()
}

// pick tries the next backend.
func (c *lconn) pick() {
	be, err := c.a.Pick()
	if err != nil {
		if c.a.Tried() {
			c.fail(502, c.a.Last())
		} else {
			c.fail(503, err.Error())
		}
		return
	}
	c.be, c.start = be, time.Now()
	up := upstream.Of(be)
	if !c.fresh {
		if b := up.H1.(*pool).lget(c.l.id); b != nil {
			c.send(b)
			return
		}
	}
	c.state = stDial
	l := c.l
	go func() {
		var fd int
		var laddr, raddr net.Addr
		nc, err := up.Dial()
		if err == nil {
			laddr, raddr = nc.LocalAddr(), nc.RemoteAddr()
			if fd, err = takeFD(nc); err != nil {
				nc.Close()
			}
		}
		if !l.post(func() { c.dialed(up, fd, laddr, raddr, err) }) && err == nil {
			closeRaw(fd)
		}
	}()
}

func (c *lconn) dialed(up *upstream.Upstream, fd int, laddr, raddr net.Addr, err error) {
	if c.state != stDial {
		// The client went away meanwhile (Close).
		if err == nil {
			closeRaw(fd)
		}
		return
	}
	if err != nil {
		c.connectFailed(err.Error())
		return
	}
	b := &lback{up: up}
	b.fd, b.laddr, b.raddr = fd, laddr, raddr
	b.br = bufio.NewReaderSize(&b.lsock, 16<<10)
	if err := c.l.add(&b.lsock, b); err != nil {
		closeRaw(fd)
		c.connectFailed("backend " + up.Backend.Addr + ": " + err.Error())
		return
	}
	c.send(b)
}

// connectFailed records a try that reached no backend: the next backend
// is picked, or the client gets the 502.
func (c *lconn) connectFailed(msg string) {
	o := balance.Outcome{ConnectFailed: true, Failed: true, Err: msg, Latency: time.Since(c.start)}
	retry := c.a.Failed(c.be, o, balance.Unsent)
	c.be = nil
	if retry {
		c.pick()
		return
	}
	c.fail(502, c.a.Last())
}

// send writes the request head to b (writeRequestHead, as sendRequest).
func (c *lconn) send(b *lback) {
	c.bc, b.owner = b, c
	h := &c.h
	bw := c.l.hw.to(&b.lsock)
	writeRequestHead(bw, h, c.ip)
	bw.Flush()
	c.state = stWait
	b.deadline = c.start.Add(c.l.e.cfg.ResponseHeaderTimeout)
	if err := b.flush(); err != nil {
		c.tryFailed(err)
		return
	}
	c.backendStep()
}

// backendStep moves the exchange on after an event on either side.
func (c *lconn) backendStep() {
	if err := c.flush(); err != nil {
		c.abort("client " + err.Error())
		return
	}
	b := c.bc
	if b == nil {
		return
	}
	if err := b.flush(); err != nil {
		if c.state == stWait {
			c.tryFailed(err)
		} else {
			c.abort(err.Error())
		}
		return
	}
	if c.state == stWait {
		if len(b.out) > 0 {
			return
		}
		if !c.readResponse() {
			return
		}
	}
	if c.state == stBody {
		c.copyBody()
	}
}

// readResponse reads the response head; it reports whether the body may
// be copied now.
func (c *lconn) readResponse() bool {
	b := c.bc
	for {
		// Informational responses the client has not taken yet: the
		// backend is read no further until it does (as in copyBody), so
		// what a loop holds for a client stays bounded.
		if c.stalled() {
			return false
		}
		n, err := readHead(b.br, b.br.Size())
		if errors.Is(err, errWouldBlock) {
			// 1xx forwarded so far go out now (as in readResponseHead).
			if err := c.flush(); err != nil {
				c.abort("client " + err.Error())
			}
			return false
		}
		if err == nil {
			raw, _ := b.br.Peek(n)
			err = parseHead(raw, false, &c.resp)
		}
		if err != nil {
			c.tryFailed(err)
			return false
		}
		if c.resp.status >= 200 {
			break
		}
		if c.resp.status == 101 {
			c.tryFailed(errors.New("unexpected 101 Switching Protocols to a request without Upgrade"))
			return false
		}
		raw, _ := b.br.Peek(n)
		c.Write(raw)
		b.br.Discard(n)
	}
	resp := &c.resp
	noBody := bodyless(&c.h, resp)
	if !noBody && (resp.chunked || resp.length < 0) {
		c.handOver(b)
		return false
	}
	bw := c.l.hw.to(&c.lsock)
	writeResponseHead(bw, resp, c.keep, c.h.minor)
	bw.Flush()
	b.br.Discard(len(resp.raw))
	c.state, c.left = stBody, 0
	if !noBody {
		c.left = resp.length
	}
	return true
}

// copyBody copies what the backend has of the body, as far as the client
// takes it.
func (c *lconn) copyBody() {
	b := c.bc
	for c.left > 0 {
		if c.stalled() {
			return
		}
		if b.br.Buffered() == 0 {
			if _, err := b.br.Peek(1); err != nil {
				if errors.Is(err, errWouldBlock) {
					now := time.Now()
					b.deadline = now.Add(c.l.e.cfg.ResponseHeaderTimeout)
					c.deadline = now.Add(c.l.e.cfg.IdleTimeout)
					if err := c.flush(); err != nil {
						c.abort("client " + err.Error())
					}
					return
				}
				c.finish(unexpected(err))
				return
			}
		}
		buf, _ := b.br.Peek(int(min(int64(b.br.Buffered()), c.left)))
		c.Write(buf)
		b.br.Discard(len(buf))
		c.left -= int64(len(buf))
	}
	c.finish(nil)
}

// stalled reports whether the backend must wait for the client: its
// output holds maxLoopOut or more after a flush (counted, and the client
// has the idle timeout to take some), or the flush failed (the exchange
// is aborted).
func (c *lconn) stalled() bool {
	if len(c.out) < maxLoopOut {
		return false
	}
	if err := c.flush(); err != nil {
		c.abort("client " + err.Error())
		return true
	}
	if len(c.out) < maxLoopOut {
		return false
	}
	c.l.e.loopStalls.Add(1)
	c.deadline = time.Now().Add(c.l.e.cfg.IdleTimeout)
	return true
}

// finish ends the exchange, as sendResponse's end does.
func (c *lconn) finish(err error) {
	b, be := c.bc, c.be
	o := balance.Outcome{Status: c.resp.status, Latency: time.Since(c.start)}
	if err != nil {
		o.Failed, o.Err = true, "backend "+be.Addr+": "+err.Error()
	}
	c.l.e.bal.Done(be, o)
	c.l.e.loopServed.Add(1)
	c.bc, c.be, b.owner = nil, nil, nil
	// A backend that hung up (its FIN read with the response, whose edge
	// is gone) is not pooled.
	if err == nil && !c.resp.connClose && c.resp.minor == 1 && c.h.minor == 1 && b.br.Buffered() == 0 && !b.hup {
		b.up.H1.(*pool).lput(c.l, b)
	} else {
		b.close()
	}
	c.endExchange(err == nil && c.keep)
}

// endExchange moves to the next request, or to closing.
func (c *lconn) endExchange(keep bool) {
	c.a.Close()
	c.br.Discard(c.n)
	c.n = 0
	if !keep || c.l.e.closing.Load() {
		c.drain()
		return
	}
	c.enterHead()
	l := c.l
	if l.nested >= maxNested {
		// Exchanges the proxy answers itself (503, 502) end inside the
		// step that read them: pipelined, they recursed as deep as a
		// client kept its socket fed (fatal at 1 GB of stack), holding
		// the loop. Past a few, the next waits for the loop's next round.
		l.post(func() {
			if c.state == stHead {
				c.step()
			}
		})
		return
	}
	l.nested++
	c.step()
	l.nested--
}

// maxNested bounds the exchanges one step ends without the loop polling
// (endExchange).
const maxNested = 8

// tryFailed handles a try that got no response, as exchange does.
func (c *lconn) tryFailed(err error) {
	b, be := c.bc, c.be
	c.bc, c.be, b.owner = nil, nil, nil
	b.close()
	retry, status, o := c.l.e.tryFailed(be, b.reused, err, c.start, false, upstream.Idempotent(c.h.method))
	if c.a.Failed(be, o, retry) {
		c.fresh = retry == balance.Stale
		c.pick()
		return
	}
	c.reply(status, c.a.Last(), !c.keep)
	c.endExchange(c.keep)
}

// fail answers from the proxy before any backend took the request.
func (c *lconn) fail(status int, msg string) {
	c.reply(status, msg, !c.keep)
	c.endExchange(c.keep)
}

// abort ends an exchange whose response was started: both connections
// close, as when sendResponse fails.
func (c *lconn) abort(msg string) {
	if c.be != nil {
		c.cutExchange("backend " + c.be.Addr + ": " + msg)
	}
	c.close()
}

// cutExchange ends the exchange in progress, if any, as failed with msg:
// its backend connection closes.
func (c *lconn) cutExchange(msg string) {
	if c.be == nil {
		return
	}
	if c.bc != nil {
		c.bc.owner = nil
		c.bc.close()
	}
	c.l.e.bal.Done(c.be, balance.Outcome{Status: c.resp.status, Failed: true, Err: msg, Latency: time.Since(c.start)})
	c.bc, c.be = nil, nil
	c.a.Close()
}

// reply queues a response made up by the proxy (see client.reply); the
// caller moves the connection on (drain, or endExchange).
func (c *lconn) reply(status int, msg string, closeConn bool) {
	bw := c.l.hw.to(&c.lsock)
	writeReply(bw, status, msg, closeConn)
	bw.Flush()
}

// drain closes the connection once its output is written.
func (c *lconn) drain() {
	c.state = stDrain
	c.deadline = time.Now().Add(c.l.e.cfg.IdleTimeout)
	c.step()
}

// timeout closes the connection, or fails its exchange, when its wait
// ran out.
func (c *lconn) timeout(now time.Time) {
	switch c.state {
	case stHead, stDrain:
		if now.After(c.deadline) {
			c.close()
		}
	case stWait:
		if now.After(c.bc.deadline) {
			c.tryFailed(os.ErrDeadlineExceeded)
		}
	case stBody:
		// copyBody stops reading the backend only with maxLoopOut
		// unwritten; below that it waits for the backend, whose deadline
		// it set when it began to. A stall on the client is the client's:
		// the backend's deadline, set before it, does not end the body.
		if len(c.out) >= maxLoopOut {
			if now.After(c.deadline) {
				c.abort("client took no output within " + c.l.e.cfg.IdleTimeout.String())
			}
		} else if now.After(c.bc.deadline) {
			c.finish(os.ErrDeadlineExceeded)
		} else if len(c.out) > 0 && now.After(c.deadline) {
			c.abort("client took no output within " + c.l.e.cfg.IdleTimeout.String())
		}
	}
}

// close ends the client connection.
func (c *lconn) close() {
	if c.state == stGone {
		return
	}
	c.cutExchange("client connection closed") // Close, or a stalled client
	c.state = stGone
	c.closeFD()
	delete(c.l.clients, c)
	c.done <- lhandoff{}
}

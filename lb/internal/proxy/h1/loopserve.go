//go:build linux

package h1

import (
	"bufio"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/lb/internal/balance"
)

// serveOnLoop serves a plain-TCP client from a loop. The goroutine (the
// proxy's, which counts the connection open while it is here) waits until
// the loop is done with the connection, and serves it itself if the loop
// hands it over. Anything else (TLS) is served here as before.
func (e *Engine) serveOnLoop(c net.Conn) {
	if _, ok := c.(peeked); !ok {
		if _, ok := c.(*net.TCPConn); !ok {
			e.serve(c) // TLS
			return
		}
	}
	under, pre := c, []byte(nil)
	if p, ok := c.(peeked); ok {
		under, pre = p.Peeked()
	}
	tc, ok := under.(*net.TCPConn)
	if !ok || e.loops.start(e) != nil {
		e.serve(&handedConn{Conn: under, pre: pre})
		return
	}
	lc := &lconn{done: make(chan lhandoff, 1)}
	if host, _, err := net.SplitHostPort(tc.RemoteAddr().String()); err == nil {
		lc.ip = host
	}
	lc.laddr, lc.raddr, lc.pre = tc.LocalAddr(), tc.RemoteAddr(), pre
	fd, err := takeFD(tc)
	if err != nil {
		e.serve(&handedConn{Conn: under, pre: pre})
		return
	}
	lc.fd = fd
	lc.br = bufio.NewReaderSize(&lc.lsock, e.cfg.MaxHeaderBytes)
	l := e.loops.pick()
	if !l.post(func() { l.attach(lc) }) {
		closeRaw(fd)
		return
	}
	ho := <-lc.done
	if ho.c == nil {
		return
	}
	e.resume(ho)
}

// resume serves a connection a loop handed over.
func (e *Engine) resume(ho lhandoff) {
	cl := e.newClient(&handedConn{Conn: ho.c, pre: ho.pre})
	defer e.endClient(cl)
	cl.bw.Write(ho.out)
	if m := ho.mid; m != nil {
		bc := newBconn(&handedConn{Conn: m.bc, pre: m.bpre})
		ok := e.sendResponse(cl, bc, &m.h, &m.resp, m.keep, m.be, m.start)
		m.a.Close()
		if err := cl.bw.Flush(); err != nil || !ok || !m.keep {
			return
		}
	} else {
		// The loop read this request's head before handing it over,
		// maybe before Shutdown: it is answered, as raw answers every
		// request whose head it read.
		cl.handed = true
	}
	cl.serve()
}

// handedConn is a connection with bytes already read from it, which an
// engine's sock takes over (peeked) or Read replays.
type handedConn struct {
	net.Conn
	pre []byte
}

func (h *handedConn) Peeked() (net.Conn, []byte) {
	b := h.pre
	h.pre = nil
	return h.Conn, b
}

func (h *handedConn) Read(p []byte) (int, error) {
	if len(h.pre) > 0 {
		n := copy(p, h.pre)
		h.pre = h.pre[n:]
		return n, nil
	}
	return h.Conn.Read(p)
}

func closeRaw(fd int) { unix.Close(fd) }

// attach starts serving c on l.
func (l *loop) attach(c *lconn) {
	if err := l.add(&c.lsock, c); err != nil {
		closeRaw(c.fd)
		c.state = stGone
		c.done <- lhandoff{}
		return
	}
	l.clients[c] = struct{}{}
	c.enterHead()
	c.step()
}

// shutdown closes the clients waiting for a request, once the last
// response is written (a slow client may not have taken all of it); the
// others close when their exchange ends (Engine.Shutdown).
func (l *loop) shutdown() {
	for c := range l.clients {
		if c.state == stHead {
			c.drain()
		}
	}
}

// closeAll closes every client (Engine.Close).
func (l *loop) closeAll() {
	for c := range l.clients {
		c.close()
	}
}

// shutdownLoops closes the loops' idle connections of p, on their loops.
func (p *pool) shutdownLoops() {
	p.mu.Lock()
	lidle := p.lidle
	p.lidle = nil
	p.mu.Unlock()
	for _, idle := range lidle {
		if len(idle) == 0 {
			continue
		}
		l := idle[0].l
		if !l.post(func() {
			for _, b := range idle {
				b.close()
			}
			p.forget(l) // a drained or removed backend's pool is not kept
		}) {
			// The loop ended and no longer owns them. Those it closed
			// itself (the backend hung up while they idled) stay listed
			// until taken, and their descriptor numbers may already
			// belong to another socket: close only the open ones. The
			// failed post ordered the loop's writes before these reads.
			for _, b := range idle {
				if !b.closed {
					b.closed = true
					closeRaw(b.fd)
				}
			}
		}
	}
}

// handOver gives the connection to the goroutine engine: the whole of it
// before an exchange (b nil), or with b's response to copy.
func (c *lconn) handOver(b *lback) {
	var ho lhandoff
	c.l.e.loopHanded.Add(1)
	c.state = stGone
	delete(c.l.clients, c)
	c.l.forget(&c.lsock)
	c.closed = true
	nc, err := fdConn(c.fd)
	if err != nil {
		if b != nil {
			c.l.e.bal.Done(c.be, balance.Outcome{Failed: true, Err: err.Error(), Latency: time.Since(c.start)})
			c.a.Close()
			b.close()
		}
		c.done <- ho
		return
	}
	ho.c = nc
	ho.pre, _ = c.br.Peek(c.br.Buffered())
	ho.out = c.out
	if b != nil {
		b.owner = nil
		b.l.forget(&b.lsock)
		b.closed = true
		bc, err := fdConn(b.fd)
		if err != nil {
			c.l.e.bal.Done(c.be, balance.Outcome{Failed: true, Err: "backend " + c.be.Addr + ": " + err.Error(), Latency: time.Since(c.start)})
			c.a.Close()
			nc.Close()
			c.done <- lhandoff{}
			return
		}
		bpre, _ := b.br.Peek(b.br.Buffered())
		// The client's head stays in pre, after the request: the
		// goroutine engine's exchange state starts past it.
		ho.pre = ho.pre[c.n:]
		ho.mid = &lmid{bc: bc, bpre: bpre, h: c.h, resp: c.resp, keep: c.keep, be: c.be, start: c.start, a: c.a}
		c.bc, c.be = nil, nil
	}
	c.done <- ho
}

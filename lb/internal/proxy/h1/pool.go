package h1

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// bconn is a pooled backend connection.
type bconn struct {
	c        net.Conn
	s        *sock
	br       *bufio.Reader
	bw       *bufio.Writer
	deadline time.Time
	reused   bool
	idleAt   time.Time
}

func newBconn(c net.Conn) *bconn {
	s := newSock(c)
	return &bconn{c: c, s: s, br: bufio.NewReaderSize(s, 16<<10), bw: bufio.NewWriterSize(s, 16<<10)}
}

// refresh bounds each stall of a streamed response by d. The deadline is
// moved lazily, once per quarter of d, not per read.
func (bc *bconn) refresh(d time.Duration) {
	now := time.Now()
	if bc.deadline.Sub(now) < d*3/4 {
		bc.deadline = now.Add(d)
		bc.c.SetReadDeadline(bc.deadline)
	}
}

// pool holds one backend's idle HTTP/1.1 connections (LIFO, so the warmest
// are reused and the rest age out).
type pool struct {
	mu   sync.Mutex
	idle []*bconn
	// be is the pool's backend: a draining or removed one pools nothing
	// (retired).
	be *balance.Backend
	// lidle are the event loops' idle connections, by loop; each loop
	// takes and puts only its own (loopconn.go).
	lidle [][]*lback
}

var _ upstream.Pool = (*pool)(nil)

const (
	maxIdle = 256
	idleTTL = 50 * time.Second
)

func (p *pool) get() *bconn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		bc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if time.Since(bc.idleAt) < idleTTL && bc.s.quiet() {
			bc.reused = true
			return bc
		}
		bc.c.Close()
	}
}

// put pools bc, or closes it. A connection with bytes read past the
// response (a backend that sent more than its framing said) is closed:
// pooled, those bytes would be read as the response to the next request,
// which may be another client's (the loop's finish checks the same).
func (p *pool) put(bc *bconn) {
	if bc.br.Buffered() > 0 {
		bc.c.Close()
		return
	}
	p.mu.Lock()
	if p.retired() || len(p.idle) >= maxIdle {
		p.mu.Unlock()
		bc.c.Close()
		return
	}
	bc.idleAt = time.Now()
	bc.reused = false
	p.idle = append(p.idle, bc)
	p.mu.Unlock()
}

// retired reports whether the backend is draining or removed. Its drain
// shuts the pool down once no request is in flight, and a request
// releases the backend (Done) before it pools its connection: pooled
// after that Shutdown, a connection would stay open to the drained
// backend (and, on a loop, keep the pool listed for the loop's life).
// The state is set before the drain starts, so a put after Shutdown
// sees it; put and lput check it under mu, which Shutdown also takes.
func (p *pool) retired() bool {
	return p.be != nil && (p.be.State() == balance.Draining || p.be.Removed())
}

// Shutdown closes the idle connections; busy ones close when their
// exchange ends, as a drained backend is not picked again.
func (p *pool) Shutdown(context.Context) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, bc := range idle {
		bc.c.Close()
	}
	p.shutdownLoops()
}

// Conns is the number of idle connections.
func (p *pool) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	for _, idle := range p.lidle {
		n += len(idle)
	}
	return n
}

// conn returns a connection to up's backend: a pooled one unless fresh,
// else a new one.
func conn(up *upstream.Upstream, fresh bool) (*bconn, error) {
	if !fresh {
		if bc := up.H1.(*pool).get(); bc != nil {
			return bc, nil
		}
	}
	c, err := up.Dial()
	if err != nil {
		return nil, err
	}
	return newBconn(c), nil
}

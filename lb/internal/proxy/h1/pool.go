package h1

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// bconn is a pooled backend connection.
type bconn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	deadline time.Time
	reused   bool
	idleAt   time.Time
}

func newBconn(c net.Conn) *bconn {
	s := newSock(c)
	return &bconn{c: c, br: bufio.NewReaderSize(s, 16<<10), bw: bufio.NewWriterSize(s, 16<<10)}
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
	mu     sync.Mutex
	idle   []*bconn
	closed bool
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
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		bc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if time.Since(bc.idleAt) < idleTTL {
			bc.reused = true
			return bc
		}
		bc.c.Close()
	}
	return nil
}

func (p *pool) put(bc *bconn) {
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdle {
		p.mu.Unlock()
		bc.c.Close()
		return
	}
	bc.idleAt = time.Now()
	bc.reused = false
	p.idle = append(p.idle, bc)
	p.mu.Unlock()
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

// lget takes an idle connection of loop id (see get).
func (p *pool) lget(id int) *lback {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id >= len(p.lidle) {
		return nil
	}
	idle := p.lidle[id]
	for n := len(idle); n > 0; n = len(idle) {
		b := idle[n-1]
		idle[n-1] = nil
		idle = idle[:n-1]
		p.lidle[id] = idle
		if time.Since(b.idleAt) < idleTTL && !b.closed {
			b.reused = true
			return b
		}
		b.close()
	}
	return nil
}

// lput pools b on its loop (see put).
func (p *pool) lput(l *loop, b *lback) {
	p.mu.Lock()
	for len(p.lidle) <= l.id {
		p.lidle = append(p.lidle, nil)
	}
	if p.closed || len(p.lidle[l.id]) >= maxIdle {
		p.mu.Unlock()
		b.close()
		return
	}
	b.idleAt = time.Now()
	b.reused = false
	p.lidle[l.id] = append(p.lidle[l.id], b)
	p.mu.Unlock()
	l.pools[p] = struct{}{}
}

// ldrop takes b, which its loop closed while it idled (the backend hung
// up), off the loop's list, so Conns counts open connections only; a pool
// with none of the loop's left is forgotten by the loop, so the pool of a
// backend that was removed is not kept alive by it.
func (p *pool) ldrop(l *loop, b *lback) {
	p.mu.Lock()
	if l.id < len(p.lidle) {
		idle := p.lidle[l.id]
		for i, x := range idle {
			if x == b {
				copy(idle[i:], idle[i+1:])
				idle[len(idle)-1] = nil
				idle = idle[:len(idle)-1]
				p.lidle[l.id] = idle
				break
			}
		}
	}
	p.mu.Unlock()
	p.forget(l)
}

// forget drops p from l's pools when none of l's connections is in it
// (run on l).
func (p *pool) forget(l *loop) {
	p.mu.Lock()
	empty := l.id >= len(p.lidle) || len(p.lidle[l.id]) == 0
	p.mu.Unlock()
	if empty {
		delete(l.pools, p)
	}
}

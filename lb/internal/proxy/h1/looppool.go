//go:build linux

package h1

import (
	"slices"
	"time"
)

// The event loops' share of a backend's HTTP/1.1 pool (pool.lidle).

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
	if p.retired() || len(p.lidle[l.id]) >= maxIdle {
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
		if i := slices.Index(p.lidle[l.id], b); i >= 0 {
			p.lidle[l.id] = slices.Delete(p.lidle[l.id], i, i+1)
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

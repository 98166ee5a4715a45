//go:build linux

package h1

import (
	"context"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// A drain shuts a backend's pool down once no request is in flight; a
// request releases the backend before it pools its connection, so a
// connection can come back after that Shutdown. It is closed, on the
// goroutine engine's pool and on a loop's, not kept open to the drained
// backend.
func TestDrainedPoolTakesNoConnection(t *testing.T) {
	e := New(Config{HeaderTimeout: time.Second, IdleTimeout: time.Second, ResponseHeaderTimeout: time.Second}, nil)
	bcfg := balance.DefaultConfig()
	bcfg.Fleet = "web"
	bal, err := balance.New(bcfg, balance.Hooks{Added: func(be *balance.Backend) {
		up := upstream.New(be, time.Second, nil)
		e.Attach(up)
		be.Transport = up
	}})
	if err != nil {
		t.Fatal(err)
	}
	const addr = "127.0.0.1:1"
	if err := bal.Update(1, []balance.Spec{{Addr: addr, State: balance.Active}}); err != nil {
		t.Fatal(err)
	}
	up := upstream.Of(bal.Backends()[0])
	p := up.H1.(*pool)
	if err := bal.Update(2, []balance.Spec{{Addr: addr, State: balance.Draining}}); err != nil {
		t.Fatal(err)
	}
	p.Shutdown(context.Background()) // the drain: nothing in flight

	a, peer := tcpPair(t)
	defer peer.Close()
	p.put(newBconn(a)) // the last request's connection, after its Done
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := peer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection pooled after the drain's Shutdown: read %d, %v; want EOF", n, err)
	}

	l, err := newLoop(e, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.file.Close(); unix.Close(l.evfd) })
	b2, peer2 := tcpPair(t)
	defer peer2.Close()
	fd, err := takeFD(b2)
	if err != nil {
		t.Fatal(err)
	}
	b := &lback{up: up}
	b.fd = fd
	if err := l.add(&b.lsock, b); err != nil {
		t.Fatal(err)
	}
	p.lput(l, b)
	if up.Conns() != 0 || !b.closed {
		t.Fatalf("loop connection pooled after the drain's Shutdown: %d pooled, closed %v", up.Conns(), b.closed)
	}
	if _, ok := l.pools[p]; ok {
		t.Fatal("the loop keeps the drained backend's pool")
	}
}

// An idle connection the backend closed (its FIN arrived) or wrote on is
// dropped by get, not handed to a request; a quiet one is reused.
func TestPoolGetSkipsConnectionsThatHeardFromTheBackend(t *testing.T) {
	p := &pool{}
	quietC, quietPeer := tcpPair(t)
	defer quietPeer.Close()
	spoke, spokePeer := tcpPair(t)
	defer spokePeer.Close()
	closed, closedPeer := tcpPair(t)
	bq, bs, bc := newBconn(quietC), newBconn(spoke), newBconn(closed)
	for _, b := range []*bconn{bq, bs, bc} {
		b.idleAt = time.Now()
		p.put(b)
	}
	io.WriteString(spokePeer, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
	closedPeer.Close()
	deadline := time.Now().Add(5 * time.Second)
	for bs.s.quiet() || bc.s.quiet() {
		if time.Now().After(deadline) {
			t.Fatal("the write and the FIN did not arrive")
		}
		time.Sleep(time.Millisecond)
	}
	if got := p.get(); got != bq {
		t.Fatalf("get = %p, want the quiet connection %p (spoke %p, closed %p)", got, bq, bs, bc)
	}
	if p.get() != nil {
		t.Fatal("get returned a second connection")
	}
	spokePeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Closed with its 408 unread, so the peer may see a reset.
	if _, err := io.ReadAll(spokePeer); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the connection that spoke was not closed: %v", err)
	}
}

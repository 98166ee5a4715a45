//go:build linux

package h1

import (
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A pooled loop connection the backend closed while it idled is closed by
// its loop but stays listed in the pool; when the pool shuts down after
// the loop ended, its descriptor number (by then another socket's) must
// not be closed a second time.
func TestShutdownLoopsClosesEachDescriptorOnce(t *testing.T) {
	e := New(Config{HeaderTimeout: time.Second, IdleTimeout: time.Second, ResponseHeaderTimeout: time.Second}, nil)
	l, err := newLoop(e, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.file.Close(); unix.Close(l.evfd) })
	a, _ := tcpPair(t)
	fd, err := takeFD(a)
	if err != nil {
		t.Fatal(err)
	}
	b := &lback{}
	b.fd = fd
	if err := l.add(&b.lsock, b); err != nil {
		t.Fatal(err)
	}
	p := &pool{}
	p.lput(l, b)
	b.close() // the loop's idle event: the backend hung up

	// Another socket takes the freed descriptor number.
	_, other := tcpPair(t)
	ofd, err := takeFD(other)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ofd)
	if ofd != fd {
		if err := unix.Dup3(ofd, fd, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
	}

	l.mu.Lock()
	l.done = true // the loop ended: posts are refused
	l.mu.Unlock()
	p.shutdownLoops()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Fatalf("descriptor %d, reused by another socket, was closed again: %v", fd, err)
	}
}

// A pool shutting down (its backend drained or removed) has its loop
// connections closed on their loop, which then no longer keeps the pool.
func TestShutdownLoopsLetsTheLoopForgetThePool(t *testing.T) {
	e := New(Config{HeaderTimeout: time.Second, IdleTimeout: time.Second, ResponseHeaderTimeout: time.Second}, nil)
	l, err := newLoop(e, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.file.Close(); unix.Close(l.evfd) })
	a, _ := tcpPair(t)
	fd, err := takeFD(a)
	if err != nil {
		t.Fatal(err)
	}
	b := &lback{}
	b.fd = fd
	if err := l.add(&b.lsock, b); err != nil {
		t.Fatal(err)
	}
	p := &pool{}
	p.lput(l, b)
	if _, ok := l.pools[p]; !ok || p.Conns() != 1 {
		t.Fatalf("pooled: loop knows the pool %v, %d idle; want true, 1", ok, p.Conns())
	}
	p.Shutdown(context.Background())
	l.runInbox() // what the loop's goroutine does with the post
	if _, ok := l.pools[p]; ok || !b.closed || p.Conns() != 0 {
		t.Fatalf("after Shutdown: loop knows the pool %v, connection closed %v, %d idle; want false, true, 0", ok, b.closed, p.Conns())
	}
}

// A socket's output buffer grown by a body is not kept once written, so
// idle keep-alive connections hold little memory.
func TestFlushDropsGrownOutput(t *testing.T) {
	a, peer := tcpPair(t)
	fd, err := takeFD(a)
	if err != nil {
		t.Fatal(err)
	}
	s := &lsock{fd: fd, writable: true}
	defer unix.Close(fd)
	body := make([]byte, 200<<10)
	s.Write(body)
	got := make(chan error, 1)
	go func() {
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadFull(peer, make([]byte, len(body)))
		got <- err
	}()
	for len(s.out) > 0 {
		if err := s.flush(); err != nil {
			t.Fatal(err)
		}
		s.writable = true // the test polls; the loop would wait for EPOLLOUT
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if c := cap(s.out); c > maxKeptOut {
		t.Fatalf("written output keeps a %d-byte buffer, want at most %d", c, maxKeptOut)
	}
	s.Write([]byte("next"))
	if string(s.out) != "next" {
		t.Fatalf("output after the drop: %q", s.out)
	}
}

// Without --h1-loops, an engine starts one loop per P but one, and at
// least one.
func TestDefaultLoops(t *testing.T) {
	for procs, want := range map[int]int{1: 1, 2: 1, 3: 2, 8: 7, 64: 63} {
		if got := DefaultLoops(procs); got != want {
			t.Errorf("DefaultLoops(%d) = %d, want %d", procs, got, want)
		}
	}
	for _, cfg := range []struct{ loops, want int }{{0, DefaultLoops(runtime.GOMAXPROCS(0))}, {3, 3}} {
		e := New(Config{HeaderTimeout: time.Second, IdleTimeout: time.Second, ResponseHeaderTimeout: time.Second, Loop: true, Loops: cfg.loops}, nil)
		if err := e.loops.start(e); err != nil {
			t.Fatal(err)
		}
		if got := len(e.loops.ls); got != cfg.want {
			t.Errorf("Loops %d: %d loops started, want %d", cfg.loops, got, cfg.want)
		}
		e.Shutdown() // the loops end at their next tick
		e.Close()
	}
}

package h1

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// tcpPair is a connected loopback pair: the accepted side and the dialled.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close(); d.Close() })
	return r.c, d
}

type peekedTCP struct {
	net.Conn
	buf []byte
}

func (p *peekedTCP) Peeked() (net.Conn, []byte) { return p.Conn, p.buf }

func TestSockRawReadWrite(t *testing.T) {
	a, b := tcpPair(t)
	s := newSock(&peekedTCP{Conn: a, buf: []byte("GET ")})
	if s.rc == nil {
		t.Fatal("a TCP connection behind Peeked did not get raw system calls")
	}
	if _, err := b.Write([]byte("/ HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	// The peeked bytes come first, then the socket's, then EOF once the
	// peer closes its side.
	if _, err := s.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	b.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if string(got) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("read %q, want the peeked bytes then the socket's", got)
	}
	reply := make([]byte, 4)
	if _, err := io.ReadFull(b, reply); err != nil || string(reply) != "pong" {
		t.Fatalf("peer read %q, %v; want pong", reply, err)
	}
}

func TestSockDeadlineIsTimeout(t *testing.T) {
	a, _ := tcpPair(t)
	s := newSock(a)
	a.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := s.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	if !strings.HasPrefix(err.Error(), "read tcp ") {
		t.Fatalf("error %q is not worded as net.Conn's Read words it", err)
	}
}

func TestSockClosedAndReset(t *testing.T) {
	a, b := tcpPair(t)
	s := newSock(a)
	// The peer resets the connection: the raw read reports the errno.
	b.(*net.TCPConn).SetLinger(0)
	b.Close()
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Read(make([]byte, 8)); err == nil || !strings.HasPrefix(err.Error(), "read tcp ") {
		t.Fatalf("read after a reset: %v, want a worded error", err)
	}
	a.Close()
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
}

func TestSockFallsBackForOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s := newSock(a)
	if s.rc != nil {
		t.Fatal("a non-TCP connection got raw system calls")
	}
	go b.Write([]byte("hi"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

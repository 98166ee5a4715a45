package proxy

// Loop tests of slow clients and hung-up peers: output the loop holds,
// the timeouts around it, Shutdown, and EOFs whose edge came early.

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// holds re-checks cond on a ticker for the whole of d, failing as soon as
// it does not hold: a timeout that must not fire needs the time to pass.
func holds(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if !cond() {
			t.Fatalf("%s stopped holding within %s", what, d)
		}
		select {
		case <-end.C:
			return
		case <-tick.C:
		}
	}
}

// smallBuffers serves a loop proxy whose client sockets have a small,
// fixed send buffer (accepted sockets inherit the listener's), and dials
// it with a small receive buffer: a client that reads nothing then leaves
// most of a 60 KB response (/tail) unwritten in the loop, and a 1 MiB one
// (/big) stalls the loop, deterministically. It returns both bodies.
func smallBuffers(t *testing.T, mut func(*Config)) (p *testProxy, c net.Conn, tail, big []byte) {
	t.Helper()
	tail = bytes.Repeat([]byte("tail-of-a-response."), 60000/19)
	big = bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	mux := http.NewServeMux()
	mux.HandleFunc("/tail", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(tail)))
		w.Write(tail)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write(big)
	})
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(bln)
	t.Cleanup(func() { srv.Close() })
	p, c = smallBufProxy(t, mut, bln.Addr().String())
	return p, c, tail, big
}

// smallBufProxy is smallBuffers' proxy and client, for the backend at addr.
func smallBufProxy(t *testing.T, mut func(*Config), addr string) (p *testProxy, c net.Conn) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 8<<10) })
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p = startProxyOn(t, ln, func(c *Config) {
		c.H1Engine = "loop"
		if mut != nil {
			mut(c)
		}
	}, nil, addr)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10) })
	}}
	if c, err = d.Dial("tcp", p.addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return p, c
}

func readWhole(t *testing.T, br *bufio.Reader, want []byte) {
	t.Helper()
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 200 || body != string(want) {
		t.Fatalf("got %d and %d bytes, want 200 and %d bytes (equal prefix %v)", resp.StatusCode, len(body), len(want), strings.HasPrefix(string(want), body))
	}
}

// The header timeout starts once the last response is written: a client
// slow to take a response's tail, which the loop still holds after the
// exchange ended, is not cut off by it (raw waits for the write too).
func TestLoopSlowReaderOfResponseTail(t *testing.T) {
	p, c, tail, _ := smallBuffers(t, func(c *Config) { c.HeaderTimeout = 200 * time.Millisecond })
	io.WriteString(c, "GET /tail HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 5*time.Second, "the exchange ended on the loop", func() bool { return p.H1LoopStats().Served == 1 })
	holds(t, 3*200*time.Millisecond, "the connection open while its response is written", func() bool { return p.OpenConns() == 1 })
	br := bufio.NewReader(c)
	readWhole(t, br, tail)
	io.WriteString(c, "GET /tail HTTP/1.1\r\nHost: x\r\n\r\n")
	readWhole(t, br, tail)
}

// Shutdown closes a client waiting for its next request only once the
// last response is written.
func TestLoopShutdownWritesResponseTail(t *testing.T) {
	p, c, tail, _ := smallBuffers(t, nil)
	io.WriteString(c, "GET /tail HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 5*time.Second, "the exchange ended on the loop", func() bool { return p.H1LoopStats().Served == 1 })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- p.Shutdown(ctx)
	}()
	br := bufio.NewReader(c)
	readWhole(t, br, tail)
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the response: read %d, %v; want the connection closed", n, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// A client slow to take a body does not make the backend's response
// timeout fire: the backend is not waited for while the loop holds the
// client's output.
func TestLoopBigBodyClientStallIsNotABackendTimeout(t *testing.T) {
	p, c, _, big := smallBuffers(t, func(c *Config) { c.ResponseHeaderTimeout = 200 * time.Millisecond })
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 5*time.Second, "the loop waiting for the client", func() bool { return p.H1LoopStats().Stalled > 0 })
	holds(t, 3*200*time.Millisecond, "the exchange in flight", func() bool {
		return p.OpenConns() == 1 && p.Balancer().Backends()[0].InFlight() == 1
	})
	readWhole(t, bufio.NewReader(c), big)
}

// The package's tests run against the engine -h1engine names: a plain-TCP
// HTTP/1.1 request is served by a loop exactly when it is "loop", so the
// second run of make test-unit cannot fall back to raw unnoticed.
func TestH1EngineFlagIsHonoured(t *testing.T) {
	be := startRawBackend(t, nil)
	p := startProxy(t, nil, nil, be.addr)
	resp, _ := exchangeRaw(t, p.addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false)
	if !strings.HasPrefix(resp, "HTTP/1.1 200 ") {
		t.Fatalf("got %q", resp)
	}
	want := uint64(0)
	if *h1Engine == "loop" {
		want = 1
	}
	if got := p.H1LoopStats().Served; got != want {
		t.Fatalf("-h1engine=%s: the loops served %d requests, want %d", *h1Engine, got, want)
	}
}

// A backend sending informational responses faster than the client takes
// them is read no further until the client does: the loop's output for a
// client stays bounded (raw blocks on the client's write).
func TestLoopInformationalResponsesAreBounded(t *testing.T) {
	hint := "HTTP/1.1 103 Early Hints\r\nLink: </" + strings.Repeat("x", 15<<10) + ">\r\n\r\n"
	const hints = 2048 // 30 MiB, far more than the sockets between hold
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	written := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*net.TCPConn).SetWriteBuffer(8 << 10)
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		bw := bufio.NewWriter(c)
		for range hints {
			bw.WriteString(hint)
		}
		bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if bw.Flush() == nil {
			close(written)
		}
		io.Copy(io.Discard, c)
	}()
	p, c := smallBufProxy(t, nil, ln.Addr().String())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 5*time.Second, "the loop waiting for the client", func() bool { return p.H1LoopStats().Stalled > 0 })
	holds(t, time.Second, "the backend's writes blocked", func() bool {
		select {
		case <-written:
			return false
		default:
			return true
		}
	})
	br := bufio.NewReaderSize(c, 32<<10)
	for i := range hints {
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 103 {
			t.Fatalf("informational response %d: %v %v", i, resp, err)
		}
	}
	if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("final response: %d %q", resp.StatusCode, body)
	}
}

// A client that sends its last request and its FIN while the loop waits
// for a backend is closed once answered, as raw closes at the EOF, not
// left open until the header timeout: the FIN's edge came during the
// wait, and the short read of the request does not end the reading.
func TestLoopClientHalfCloseWhilePipelined(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "slow")
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p := loopProxy(t, nil, ln.Addr().String()) // header timeout 10 s
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 3*time.Second, "the first request in flight", func() bool { return p.Balancer().Backends()[0].InFlight() == 1 })
	io.WriteString(c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	c.(*net.TCPConn).CloseWrite() // on loopback, queued at the proxy on return
	close(release)
	br := bufio.NewReader(c)
	for _, want := range []string{"slow", "fast"} {
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after both responses: read %d, %v; want the connection closed", n, err)
	}
}

// A pooled backend connection the backend closed leaves the pool: the
// loop closes it and Conns no longer counts it, whether the FIN came with
// the response or after it.
func TestLoopPoolDropsConnsTheBackendClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	p := loopProxy(t, nil, ln.Addr().String())
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	pool := upstream.Of(p.Balancer().Backends()[0]).H1
	for i := range 3 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		eventually(t, 3*time.Second, "no pooled connection left", func() bool { return pool.Conns() == 0 })
	}
}

// One loop: a client that stopped reading a big body (the loop holds its
// output and stops reading its backend) does not hold the loop's other
// clients, served meanwhile, some from the same backend connection pool;
// the stalled one then gets its whole body.
func TestLoopStalledClientDoesNotHoldOthers(t *testing.T) {
	p, c, _, big := smallBuffers(t, func(c *Config) { c.H1Loops = 1 })
	stalls := p.H1LoopStats().Stalled
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 10*time.Second, "the loop waiting for the stalled client", func() bool { return p.H1LoopStats().Stalled > stalls })
	hc := &http.Client{Timeout: 5 * time.Second}
	for i := range 50 {
		if code, body, _ := get(t, hc, "http://"+p.addr+"/tail"); code != 200 || len(body) < 50000 {
			t.Fatalf("request %d while a client stalls: %d, %d bytes", i, code, len(body))
		}
	}
	readWhole(t, bufio.NewReader(c), big)
}

// One loop, many clients, one slow backend exchange: while a request
// waits for its response, the loop serves the other clients' requests
// (to the same backend) and the waiting one is answered once released.
func TestLoopSlowBackendDoesNotHoldOthers(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "slow")
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p := loopProxy(t, func(c *Config) { c.H1Loops = 1 }, ln.Addr().String())
	slow, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(slow, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 5*time.Second, "the slow request in flight", func() bool { return p.Balancer().Backends()[0].InFlight() == 1 })
	served := p.H1LoopStats().Served
	hc := &http.Client{Timeout: 5 * time.Second}
	for i := range 20 {
		hc.CloseIdleConnections() // a new client each time, on the one loop
		if code, body, _ := get(t, hc, "http://"+p.addr+"/fast"); code != 200 || body != "fast" {
			t.Fatalf("request %d while another waits: %d %q", i, code, body)
		}
	}
	if got := p.H1LoopStats().Served - served; got != 20 {
		t.Fatalf("the loop served %d of the 20 requests, want all", got)
	}
	close(release)
	if resp, body := readResponse(t, bufio.NewReader(slow), "GET"); resp.StatusCode != 200 || body != "slow" {
		t.Fatalf("slow request: %d %q", resp.StatusCode, body)
	}
}

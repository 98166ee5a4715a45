package proxy

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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The whole package runs against the loop engine (the default on Linux)
// and again against raw (-args -h1engine=raw); these tests cover what
// only the loop has: which requests it serves itself, the handovers to
// the goroutine engine, back-pressure and its own timeouts.

func loopProxy(t *testing.T, mut func(*Config), addrs ...string) *testProxy {
	t.Helper()
	return startProxy(t, func(c *Config) {
		c.H1Engine = "loop"
		if mut != nil {
			mut(c)
		}
	}, nil, addrs...)
}

// readResponse reads one response from br (Content-Length or chunked).
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func TestLoopServesAndHandsOver(t *testing.T) {
	be := framingBackend(t)
	p := loopProxy(t, nil, be)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)

	// Two pipelined bodiless requests: the loop serves both.
	io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\nHEAD /echo HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
	if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "" || resp.Header.Get("X-XFF") != "127.0.0.1" {
		t.Fatalf("first: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ := readResponse(t, br, "HEAD"); resp.StatusCode != 200 || resp.Header.Get("X-XFF") != "10.0.0.1, 127.0.0.1" {
		t.Fatalf("head: %d %v", resp.StatusCode, resp.Header)
	}
	if st := p.H1LoopStats(); st.Served != 2 || st.Handed != 0 {
		t.Fatalf("loop served %d and handed over %d, want 2 and 0", st.Served, st.Handed)
	}
	// A chunked response goes to the goroutine engine with its client,
	// which then serves the connection on, bodies included.
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "part0;part1;part2;" || resp.Trailer.Get("X-Sum") != "3" {
		t.Fatalf("stream: %d %q %v", resp.StatusCode, body, resp.Trailer)
	}
	io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	if resp, body := readResponse(t, br, "POST"); resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("post: %d %q", resp.StatusCode, body)
	}
	if st := p.H1LoopStats(); st.Served != 2 || st.Handed != 1 {
		t.Fatalf("loop served %d and handed over %d, want 2 and 1", st.Served, st.Handed)
	}

	// A request with a body goes over before it is sent.
	c2, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	br2 := bufio.NewReader(c2)
	io.WriteString(c2, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readResponse(t, br2, "POST"); resp.StatusCode != 200 || body != "abc" {
		t.Fatalf("post: %d %q", resp.StatusCode, body)
	}
	if resp, _ := readResponse(t, br2, "GET"); resp.StatusCode != 200 {
		t.Fatalf("get after post: %d", resp.StatusCode)
	}
	if st := p.H1LoopStats(); st.Served != 2 || st.Handed != 2 {
		t.Fatalf("loop served %d and handed over %d, want 2 and 2", st.Served, st.Handed)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewConnCollector(p.Proxy))
	want := "# HELP shoal_lb_h1_loop_handovers_total HTTP/1.1 connections event loops handed to the goroutine engine (a request body, Upgrade or Expect; a chunked or close-delimited response).\n# TYPE shoal_lb_h1_loop_handovers_total counter\nshoal_lb_h1_loop_handovers_total 2\n" +
		"# HELP shoal_lb_h1_loop_requests_total HTTP/1.1 requests served by event loops (--h1-engine loop).\n# TYPE shoal_lb_h1_loop_requests_total counter\nshoal_lb_h1_loop_requests_total 2\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "shoal_lb_h1_loop_handovers_total", "shoal_lb_h1_loop_requests_total"); err != nil {
		t.Fatal(err)
	}
}

// A body larger than the loop's output bound, read slowly, arrives whole
// and in order: the loop stops reading the backend while the client's
// output waits, and the connection serves the next request after it.
func TestLoopLargeBodyBackPressure(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MiB
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p := loopProxy(t, nil, ln.Addr().String())

	// A small receive buffer, set before connecting (set later, the
	// window shrinks and the sender falls back on zero-window probes).
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10) })
	}}
	c, err := d.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReaderSize(c, 4<<10)
	for i := range 2 {
		stalls := p.H1LoopStats().Stalled
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		// Nothing is read until the loop has stopped reading the
		// backend for this client.
		eventually(t, 10*time.Second, "the loop waiting for the client", func() bool { return p.H1LoopStats().Stalled > stalls })
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		chunk := make([]byte, 4<<10)
		for {
			n, err := resp.Body.Read(chunk)
			got.Write(chunk[:n])
			if err != nil {
				break
			}
		}
		if !bytes.Equal(got.Bytes(), body) {
			t.Fatalf("request %d: got %d bytes, want %d, equal prefix %v", i, got.Len(), len(body), bytes.HasPrefix(body, got.Bytes()))
		}
	}
	if st := p.H1LoopStats(); st.Served != 2 || st.Handed != 0 {
		t.Fatalf("loop served %d and handed over %d, want 2 and 0", st.Served, st.Handed)
	}
}

func TestLoopTimeouts(t *testing.T) {
	t.Run("response head", func(t *testing.T) {
		silent, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		go func() {
			for {
				c, err := silent.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				go io.Copy(io.Discard, c)
			}
		}()
		p := loopProxy(t, func(c *Config) { c.ResponseHeaderTimeout = 300 * time.Millisecond }, silent.Addr().String())
		resp, closed := exchangeRaw(t, p.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true)
		if !strings.HasPrefix(resp, "HTTP/1.1 504 ") || !strings.Contains(resp, "sent no response within 300ms") || !closed {
			t.Fatalf("got %q (closed %v), want a 504 naming the timeout", resp, closed)
		}
	})
	t.Run("idle client", func(t *testing.T) {
		be := startRawBackend(t, nil)
		p := loopProxy(t, func(c *Config) { c.HeaderTimeout = 300 * time.Millisecond }, be.addr)
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n")
		start := time.Now()
		b, err := io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection with a partial head still open after 5s: %q", b)
		}
		if !strings.HasPrefix(string(b), "HTTP/1.1 200 OK") || strings.Count(string(b), "HTTP/1.1") != 1 {
			t.Fatalf("got %q, want one response", b)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Fatalf("closed after %s, before the header timeout", d)
		}
	})
}

// A pooled connection the backend closed after answering is not used
// again: the next request gets a fresh one and succeeds.
func TestLoopBackendClosesPooledConn(t *testing.T) {
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
	for i := range 5 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

// Shutdown closes the loop's idle clients at once and returns when they
// are gone; a request in flight finishes first.
func TestLoopShutdown(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "done")
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p := loopProxy(t, nil, ln.Addr().String())

	idle, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(5 * time.Second))
	idle.SetDeadline(time.Now().Add(5 * time.Second))
	// The idle client had a request served, so the loop holds it (a
	// client that sent nothing is still with the proxy's classifier).
	idleBr := bufio.NewReader(idle)
	io.WriteString(idle, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readResponse(t, idleBr, "GET"); resp.StatusCode != 200 || body != "fast" {
		t.Fatalf("idle client's request: %d %q", resp.StatusCode, body)
	}
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 3*time.Second, "the slow request in flight", func() bool { return p.OpenConns() == 2 && p.Balancer().Backends()[0].InFlight() == 1 })

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- p.Shutdown(ctx)
	}()
	if n, err := idleBr.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle client read %d, %v; want it closed", n, err)
	}
	select {
	case err := <-done:
		t.Fatalf("shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	resp, body := readResponse(t, bufio.NewReader(busy), "GET")
	if resp.StatusCode != 200 || body != "done" {
		t.Fatalf("in-flight request: %d %q", resp.StatusCode, body)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// A request that is not idempotent and reached the backend is never sent
// twice: when a reused connection ends with no answer, the backend may have
// acted on it, so the client gets a 502 (as nginx and net/http's Transport
// do), while a GET in the same spot is replayed on a fresh connection.
func TestSentNonIdempotentRequestIsNotReplayed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var posts, gets atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					switch req.Method {
					case http.MethodPost:
						posts.Add(1)
					case http.MethodGet:
						gets.Add(1)
					}
					if n > 0 {
						return // the second request on a connection dies unanswered
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	p := startProxy(t, nil, nil, ln.Addr().String())
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	send := func(method string) int {
		t.Helper()
		io.WriteString(c, method+" / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, _ := readResponse(t, br, method)
		return resp.StatusCode
	}
	// The first GET leaves a pooled connection; the POST goes on it and
	// dies there.
	if code := send(http.MethodGet); code != 200 {
		t.Fatalf("warm-up GET: %d", code)
	}
	if code := send(http.MethodPost); code != 502 {
		t.Fatalf("POST on a connection that died unanswered: %d, want 502", code)
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("the backend got the POST %d times, want once", n)
	}
	// A GET that dies the same way is replayed on a fresh connection.
	if code := send(http.MethodGet); code != 200 {
		t.Fatalf("warm-up GET: %d", code)
	}
	if code := send(http.MethodGet); code != 200 {
		t.Fatalf("GET on a connection that died unanswered: %d, want 200 after a replay", code)
	}
	if n := gets.Load(); n != 4 {
		t.Fatalf("the backend got %d GETs, want 4 (one replayed)", n)
	}
}

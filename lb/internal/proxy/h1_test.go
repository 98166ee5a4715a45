package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// framingBackend answers in the ways HTTP/1.1 framing can differ.
func framingBackend(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Conn", r.Header.Get("Connection")+"|"+r.Header.Get("Keep-Alive"))
		w.Header().Set("X-Hop", r.Header.Get("Proxy-Authorization")+"|"+r.Header.Get("Te")+"|"+r.Header.Get("Proxy-Connection"))
		w.Write(b)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "3")
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestRawHTTP1Framing(t *testing.T) {
	be := framingBackend(t)
	p := startProxy(t, func(c *Config) { c.MaxHeaderBytes = 2048 }, nil, be)
	c := &http.Client{Timeout: 5 * time.Second}
	base := "http://" + p.addr
	t.Run("post with content-length", func(t *testing.T) {
		resp, err := c.Post(base+"/echo", "text/plain", strings.NewReader("hello body"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello body" || resp.Header.Get("X-Method") != "POST" || resp.Header.Get("X-XFF") != "127.0.0.1" || resp.Header.Get("X-Conn") != "|" {
			t.Fatalf("body %q headers %v", b, resp.Header)
		}
	})
	t.Run("chunked request body", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for i := range 5 {
				fmt.Fprintf(pw, "c%d", i)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("PUT", base+"/echo", pr)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "c0c1c2c3c4" {
			t.Fatalf("body %q", b)
		}
	})
	t.Run("chunked response with trailer", func(t *testing.T) {
		resp, err := c.Get(base + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "part0;part1;part2;" || resp.Trailer.Get("X-Sum") != "3" {
			t.Fatalf("body %q trailer %v", b, resp.Trailer)
		}
	})
	t.Run("head has no body", func(t *testing.T) {
		resp, err := c.Head(base + "/echo")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
	})
	t.Run("raw exchanges", func(t *testing.T) {
		cases := []struct {
			name, send string
			want       []string // substrings, in order
			closed     bool
		}{
			{"pipelined", "GET /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n", []string{"HTTP/1.1 200", "HTTP/1.1 200"}, false},
			{"http/1.0 closes", "GET /echo HTTP/1.0\r\n\r\n", []string{"HTTP/1.0 200", "Connection: close"}, true},
			{"backend close stays internal", "GET /close HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n", []string{"bye", "HTTP/1.1 200"}, false},
			{"expect continue", "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", []string{"HTTP/1.1 100 Continue", "HTTP/1.1 200", "ok"}, false},
			{"malformed", "GARBAGE\r\n\r\n", []string{"HTTP/1.1 400", "malformed request"}, true},
			{"head too large", "GET / HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 3000) + "\r\n\r\n", []string{"HTTP/1.1 431"}, true},
			{"hop-by-hop fields stay here", "GET /echo HTTP/1.1\r\nHost: x\r\nProxy-Authorization: secret\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n\r\n", []string{"HTTP/1.1 200", "X-Hop: ||\r\n"}, false},
			{"conflicting lengths", "POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", []string{"HTTP/1.1 400"}, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				conn, err := net.Dial("tcp", p.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(3 * time.Second))
				io.WriteString(conn, tc.send)
				var got strings.Builder
				br := bufio.NewReader(conn)
				buf := make([]byte, 4096)
				closed := false
				for {
					n, err := br.Read(buf)
					got.Write(buf[:n])
					if err != nil {
						closed = true // EOF, or a reset when unread input was left
						break
					}
					if !tc.closed && containsInOrder(got.String(), tc.want) {
						break
					}
				}
				if !containsInOrder(got.String(), tc.want) {
					t.Fatalf("got %q, want %q in order", got.String(), tc.want)
				}
				if tc.closed && !closed {
					t.Fatalf("connection left open: %q", got.String())
				}
			})
		}
	})
}

func containsInOrder(s string, subs []string) bool {
	for _, sub := range subs {
		i := strings.Index(s, sub)
		if i < 0 {
			return false
		}
		s = s[i+len(sub):]
	}
	return true
}

func TestHTTP1ClientsReachH2CBackends(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Hop", r.Header.Get("Proxy-Authorization"))
		fmt.Fprintf(w, "HTTP/%d %s %s %s", r.ProtoMajor, r.Method, r.URL.RequestURI(), b)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: protos}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p := startProxy(t, func(c *Config) { c.BackendProtocol = H2C }, nil, ln.Addr().String())
	c := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		name string
		body io.Reader
	}{
		{"content-length body", strings.NewReader("hello")},
		{"chunked body", io.MultiReader(strings.NewReader("hel"), strings.NewReader("lo"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+p.addr+"/x?y=1", tc.body)
			req.Header.Set("Proxy-Authorization", "secret")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 1 || resp.StatusCode != 200 || string(b) != "HTTP/2 POST /x?y=1 hello" {
				t.Fatalf("proto %d status %d body %q", resp.ProtoMajor, resp.StatusCode, b)
			}
			if xff, hop := resp.Header.Get("X-XFF"), resp.Header.Get("X-Hop"); xff != "127.0.0.1" || hop != "" {
				t.Fatalf("backend saw X-Forwarded-For %q, Proxy-Authorization %q", xff, hop)
			}
		})
	}
}

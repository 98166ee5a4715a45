package proxy

// Adversarial exchanges run against both HTTP/1.1 engines (the package's
// tests run against the default, loop on Linux, and again with
// -args -h1engine=raw): they must answer the same bytes the same way.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// scriptBackend answers each request its parser reads with what reply
// writes for it, verbatim, on the connection.
type scriptBackend struct {
	addr string
}

func startScriptBackend(t *testing.T, reply func(w io.Writer, r *http.Request) (closeAfter bool)) *scriptBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &scriptBackend{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if reply(c, req) {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return b
}

// echoPath answers with the request's target as the body.
func echoPath(w io.Writer, r *http.Request) bool {
	body := r.Method + " " + r.URL.Path
	io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	return false
}

// dialProxy dials the proxy with a bounded deadline.
func dialProxy(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// expectBodies reads one response per method and checks each body.
func expectBodies(t *testing.T, br *bufio.Reader, methods, bodies []string) {
	t.Helper()
	for i, m := range methods {
		resp, body := readResponse(t, br, m)
		if resp.StatusCode != 200 || body != bodies[i] {
			t.Fatalf("response %d: %d %q, want 200 %q", i, resp.StatusCode, body, bodies[i])
		}
	}
}

// Three pipelined requests, the middle one HEAD or a POST, written in
// two parts split at every byte: each response goes back in order with
// its own body.
func TestPipelinedSplitAtEveryByte(t *testing.T) {
	be := startScriptBackend(t, echoPath)
	p := startProxy(t, nil, nil, be.addr)
	for _, tc := range []struct {
		payload         string
		methods, bodies []string
	}{
		{"GET /one HTTP/1.1\r\nHost: x\r\n\r\nHEAD /two HTTP/1.1\r\nHost: x\r\n\r\nGET /three HTTP/1.1\r\nHost: x\r\n\r\n",
			[]string{"GET", "HEAD", "GET"}, []string{"GET /one", "", "GET /three"}},
		// The POST (a body) is handed over with what follows it.
		{"GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /three HTTP/1.1\r\nHost: x\r\n\r\n",
			[]string{"GET", "POST", "GET"}, []string{"GET /one", "POST /two", "GET /three"}},
	} {
		for i := 1; i < len(tc.payload); i++ {
			c, br := dialProxy(t, p.addr)
			if _, err := io.WriteString(c, tc.payload[:i]); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(c, tc.payload[i:]); err != nil {
				t.Fatal(err)
			}
			expectBodies(t, br, tc.methods, tc.bodies)
			c.Close()
		}
	}
}

// A request sent one byte per segment, then the client half-closes: it is
// answered, and the connection then closes.
func TestRequestInTinySegmentsThenHalfClose(t *testing.T) {
	be := startScriptBackend(t, echoPath)
	p := startProxy(t, nil, nil, be.addr)
	c, br := dialProxy(t, p.addr)
	payload := "GET /tiny HTTP/1.1\r\nHost: x\r\n\r\nGET /tiny2 HTTP/1.1\r\nHost: x\r\n\r\n"
	for i := range len(payload) {
		if _, err := c.Write([]byte{payload[i]}); err != nil {
			t.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	expectBodies(t, br, []string{"GET", "GET"}, []string{"GET /tiny", "GET /tiny2"})
	if b, err := io.ReadAll(br); err != nil || len(b) != 0 {
		t.Fatalf("after the answers: %q %v, want a clean close", b, err)
	}
}

// Responses with a body-length field but no body (HEAD, 204, 304), a 1xx
// before a final response, and a backend that closes after a response
// with and without saying so: each client gets exactly its response, and
// the next request on the connection is not mixed up with any of it.
func TestResponseFramingEdges(t *testing.T) {
	be := startScriptBackend(t, func(w io.Writer, r *http.Request) bool {
		switch r.URL.Path {
		case "/head":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
		case "/204":
			io.WriteString(w, "HTTP/1.1 204 No Content\r\nContent-Length: 11\r\n\r\n")
		case "/304":
			io.WriteString(w, "HTTP/1.1 304 Not Modified\r\nContent-Length: 11\r\n\r\n")
		case "/1xx":
			io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n")
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine")
		case "/close-said":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye")
			return true
		case "/close-unsaid":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ncya")
			return true
		default:
			return echoPath(w, r)
		}
		return false
	})
	p := startProxy(t, nil, nil, be.addr)
	c, br := dialProxy(t, p.addr)
	req := func(m, path string) string { return m + " " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	io.WriteString(c, req("HEAD", "/head")+req("GET", "/a")+req("GET", "/204")+req("GET", "/b")+req("GET", "/304")+
		req("GET", "/c")+req("GET", "/close-said")+req("GET", "/d")+req("GET", "/close-unsaid")+req("GET", "/e"))
	want := []struct {
		method string
		status int
		body   string
	}{{"HEAD", 200, ""}, {"GET", 200, "GET /a"}, {"GET", 204, ""}, {"GET", 200, "GET /b"}, {"GET", 304, ""},
		{"GET", 200, "GET /c"}, {"GET", 200, "bye"}, {"GET", 200, "GET /d"}, {"GET", 200, "cya"}, {"GET", 200, "GET /e"}}
	for i, w := range want {
		resp, body := readResponse(t, br, w.method)
		if resp.StatusCode != w.status || body != w.body || resp.Close {
			t.Fatalf("response %d: %d %q close=%v, want %d %q on a kept connection", i, resp.StatusCode, body, resp.Close, w.status, w.body)
		}
		if w.method == "HEAD" && resp.ContentLength != 11 {
			t.Fatalf("HEAD response lost its Content-Length: %d", resp.ContentLength)
		}
	}
	// 1xx: forwarded, then the final response.
	io.WriteString(c, req("GET", "/1xx")+req("GET", "/f"))
	raw := make([]byte, 0, 256)
	for !strings.Contains(string(raw), "\r\n\r\nfine") {
		b, err := br.ReadByte()
		if err != nil {
			t.Fatalf("reading the 1xx exchange: %v after %q", err, raw)
		}
		raw = append(raw, b)
	}
	if !strings.HasPrefix(string(raw), "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\n") {
		t.Fatalf("1xx exchange: %q", raw)
	}
	expectBodies(t, br, []string{"GET"}, []string{"GET /f"})
}

// A backend that sends more bytes than its Content-Length says: the extra
// bytes are never taken for the response to another request, on this
// client's connection or another's. POSTs (bodies) are what the loop hands
// to the goroutine engine, which pools the backend connection itself.
func TestBackendBytesPastContentLengthAreNotAResponse(t *testing.T) {
	be := startScriptBackend(t, func(w io.Writer, r *http.Request) bool {
		if r.URL.Path == "/over" {
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nover"+"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!")
			return false
		}
		return echoPath(w, r)
	})
	p := startProxy(t, nil, nil, be.addr)
	t.Run("h2 client", func(t *testing.T) {
		protos := new(http.Protocols)
		protos.SetUnencryptedHTTP2(true)
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: protos}}
		for range 10 {
			for _, path := range []string{"/over", "/next"} {
				code, body, _ := get(t, c, "http://"+p.addr+path)
				want := "over"
				if path != "/over" {
					want = "GET " + path
				}
				if code != 200 || body != want {
					t.Fatalf("%s: %d %q, want 200 %q", path, code, body, want)
				}
			}
		}
	})
	for _, m := range []string{"GET", "POST"} {
		t.Run(m, func(t *testing.T) {
			req := func(path string) string {
				return m + " " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nb"
			}
			if m == "GET" {
				req = func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
			}
			for range 10 {
				c, br := dialProxy(t, p.addr)
				io.WriteString(c, req("/over"))
				expectBodies(t, br, []string{m}, []string{"over"})
				io.WriteString(c, req("/next"))
				expectBodies(t, br, []string{m}, []string{m + " /next"})
				c2, br2 := dialProxy(t, p.addr)
				io.WriteString(c2, req("/other"))
				expectBodies(t, br2, []string{m}, []string{m + " /other"})
				c.Close()
				c2.Close()
			}
		})
	}
}

// Draining a backend while HTTP/1.1 requests (served by the loops, and
// POSTs the loops hand over) are in flight fails none of them, its
// in-flight count returns to zero and its connections close.
func TestHTTPDrainUnderLoadLosesNothing(t *testing.T) {
	bs := startBackends(t, 3)
	p := startProxy(t, func(c *Config) { c.DrainPoll = time.Millisecond }, nil, httpAddrs(bs)...)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []string
		calls  int
	)
	for w := range 8 {
		wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer c.CloseIdleConnections()
			for i := range 300 {
				var resp *http.Response
				var err error
				if (w+i)%4 == 0 {
					resp, err = c.Post("http://"+p.addr+"/x", "text/plain", strings.NewReader("body"))
				} else {
					resp, err = c.Get("http://" + p.addr + "/x")
				}
				msg := ""
				if err != nil {
					msg = err.Error()
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						msg = resp.Status
					}
				}
				mu.Lock()
				calls++
				if msg != "" {
					failed = append(failed, msg)
				}
				mu.Unlock()
			}
		})
	}
	callsNow := func() int { mu.Lock(); defer mu.Unlock(); return calls }
	eventually(t, 10*time.Second, "load to start", func() bool { return callsNow() > 200 })
	bal := p.Balancer()
	specs := []balance.Spec{{Addr: bs[0].httpAddr, State: balance.Draining}, {Addr: bs[1].httpAddr}, {Addr: bs[2].httpAddr}}
	if err := bal.Update(2, specs); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "draining backend at zero in-flight", func() bool { return bal.Backends()[0].InFlight() == 0 })
	servedAtDrain, callsAtDrain := bs[0].Requests.Load(), callsNow()
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d requests failed during drain, first: %v", len(failed), callsNow(), failed[0])
	}
	if callsNow() < callsAtDrain+200 {
		t.Fatalf("too little load after the drain (%d requests) to show anything", callsNow()-callsAtDrain)
	}
	if got := bs[0].Requests.Load(); got != servedAtDrain {
		t.Fatalf("draining backend served %d requests after its drain completed", got-servedAtDrain)
	}
	up := upstream.Of(bal.Backends()[0])
	eventually(t, 5*time.Second, "drained backend at zero in-flight with connections closed", func() bool {
		return bal.Backends()[0].InFlight() == 0 && up.Conns() == 0
	})
	for _, be := range bal.Backends() {
		if n := be.InFlight(); n != 0 {
			t.Fatalf("backend %s: %d in flight after the load", be.Addr, n)
		}
	}
}

// A client pipelining requests the proxy answers itself (503: no backend)
// as fast as it can is answered in full, while the loop's goroutine stays
// within a small stack: the loop answered each pipelined request one
// level deeper, as deep as the client kept its socket fed (thousands of
// levels here; a fatal stack overflow at 1 GB, which this lowers to
// 512 KiB).
func TestPipelinedProxyAnswersDoNotRecurse(t *testing.T) {
	old := debug.SetMaxStack(512 << 10)
	defer debug.SetMaxStack(old)
	p := startProxy(t, nil, nil)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	const batch, n = 10000, 200000
	go func() {
		reqs := strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", batch)
		for range n / batch {
			if _, err := io.WriteString(c, reqs); err != nil {
				return
			}
		}
	}()
	br := bufio.NewReaderSize(c, 1<<20)
	for got := 0; got < n; {
		line, err := br.ReadSlice('\n')
		if err != nil {
			t.Fatalf("after %d responses: %v", got, err)
		}
		if bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 503 ")) {
				t.Fatalf("response %d: %q", got, line)
			}
			got++
		}
	}
}

// Both engines count the same exchanges the same way in the backend's
// counters (shoal_lb_backend_requests_total, _errors_total, the latency
// histogram, in flight): served by a loop, handed over, failed mid-body.
func TestBackendCountersPerExchange(t *testing.T) {
	be := startScriptBackend(t, func(w io.Writer, r *http.Request) bool {
		switch r.URL.Path {
		case "/500":
			io.WriteString(w, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops")
		case "/chunked":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
		case "/trunc":
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
			return true
		default:
			return echoPath(w, r)
		}
		return false
	})
	p := startProxy(t, nil, nil, be.addr)
	c, br := dialProxy(t, p.addr)
	for _, x := range []struct{ method, path, body string }{
		{"GET", "/ok", "GET /ok"}, {"HEAD", "/ok", ""}, {"GET", "/500", "oops"}, {"POST", "/ok", "POST /ok"}, {"GET", "/chunked", "abc"},
	} {
		cl := ""
		if x.method == "POST" {
			cl = "Content-Length: 1\r\n\r\nb"
		} else {
			cl = "\r\n"
		}
		io.WriteString(c, x.method+" "+x.path+" HTTP/1.1\r\nHost: x\r\n"+cl)
		if _, body := readResponse(t, br, x.method); body != x.body {
			t.Fatalf("%s %s: %q, want %q", x.method, x.path, body, x.body)
		}
	}
	c2, br2 := dialProxy(t, p.addr)
	io.WriteString(c2, "GET /trunc HTTP/1.1\r\nHost: x\r\n\r\n")
	if b, _ := io.ReadAll(br2); !strings.HasSuffix(string(b), "\r\n\r\nabc") {
		t.Fatalf("truncated response: %q", b)
	}
	b := p.Balancer().Backends()[0]
	eventually(t, 5*time.Second, "every exchange counted", func() bool { return b.Stats().Requests >= 6 })
	s := b.Stats()
	var inBuckets uint64
	for _, n := range s.Buckets {
		inBuckets += n
	}
	if s.Requests != 6 || s.Errors != 2 || s.InFlight != 0 || inBuckets != 6 {
		t.Fatalf("backend counters %+v, want 6 requests, 2 errors (the 500 and the truncated body), none in flight, 6 latencies", s)
	}
}

// A chunked response (the loop hands the client and backend connections
// over with it) followed by pipelined requests the loop had read already:
// the goroutine engine answers each, in order, after the chunked one.
func TestHandOverWithPipelinedRequestsBuffered(t *testing.T) {
	be := startScriptBackend(t, func(w io.Writer, r *http.Request) bool {
		if r.URL.Path == "/chunked" {
			io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
			io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n0\r\n\r\n")
			return false
		}
		return echoPath(w, r)
	})
	p := startProxy(t, nil, nil, be.addr)
	for split := range []int{0, 1} {
		c, br := dialProxy(t, p.addr)
		first := "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n"
		rest := "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: x\r\n\r\n"
		if split == 0 {
			io.WriteString(c, first+rest)
		} else {
			io.WriteString(c, first+rest[:7])
		}
		if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 103 {
			t.Fatalf("first response %d, want the 103 forwarded", resp.StatusCode)
		}
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "chunk" {
			t.Fatalf("chunked: %d %q", resp.StatusCode, body)
		}
		if split == 1 {
			io.WriteString(c, rest[7:])
		}
		expectBodies(t, br, []string{"GET", "POST", "GET"}, []string{"GET /a", "POST /b", "GET /c"})
	}
}

// A 1xx response (103 Early Hints) reaches the client while the backend
// is still working on the final response, not with it: both engines held
// it in their output until the final head came.
func TestInformationalResponseForwardedAtOnce(t *testing.T) {
	final := make(chan struct{})
	be := startScriptBackend(t, func(w io.Writer, r *http.Request) bool {
		io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
		<-final
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
		return false
	})
	p := startProxy(t, nil, nil, be.addr)
	c, br := dialProxy(t, p.addr)
	io.WriteString(c, "GET /hints HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	close(final)
	if err != nil || resp.StatusCode != 103 || resp.Header.Get("Link") != "</style.css>; rel=preload" {
		t.Fatalf("first response: %v %v, want the 103 before the final one", resp, err)
	}
	expectBodies(t, br, []string{"GET"}, []string{"done"})
}

// A backend that writes on a connection idling in the proxy's pool (here
// a 408, as some servers send before closing an idle keep-alive
// connection) must not have those bytes read as the next request's
// response: the connection is dropped, and the request goes to a fresh
// one. GETs cover the loops' pool (raw's with -h1engine=raw); POSTs,
// which a loop hands over, cover the goroutine engine's pool in both runs.
func TestIdleBackendConnectionThatSpokeIsNotReused(t *testing.T) {
	for _, m := range []string{"GET", "POST"} {
		t.Run(m, func(t *testing.T) {
			strayNow, strayDone := make(chan struct{}), make(chan struct{})
			be := startScriptBackend(t, func(w io.Writer, r *http.Request) bool {
				if r.URL.Path == "/first" {
					go func() {
						<-strayNow
						io.WriteString(w, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
						close(strayDone)
					}()
				}
				return echoPath(w, r)
			})
			p := startProxy(t, nil, nil, be.addr)
			up := upstream.Of(p.Balancer().Backends()[0])
			req := func(path string) string {
				if m == "GET" {
					return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
				}
				return m + " " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nb"
			}
			c, br := dialProxy(t, p.addr)
			io.WriteString(c, req("/first"))
			expectBodies(t, br, []string{m}, []string{m + " /first"})
			eventually(t, 5*time.Second, "the backend connection to be pooled", func() bool { return up.Conns() == 1 })
			close(strayNow)
			select {
			case <-strayDone:
			case <-time.After(5 * time.Second):
				t.Fatal("the backend did not write its stray response")
			}
			c2, br2 := dialProxy(t, p.addr)
			io.WriteString(c2, req("/second"))
			expectBodies(t, br2, []string{m}, []string{m + " /second"})
		})
	}
}

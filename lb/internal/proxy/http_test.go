package proxy

//lint:file-ignore SA1019 tests dial h2c and h2 explicitly with x/net/http2, as the clients of the proxy would.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/shoal-dev/shoal/lb/internal/balance"
)

func TestHTTPKilledBackendCostsNoIdempotentFailures(t *testing.T) {
	bs := startBackends(t, 3)
	p := startProxy(t, func(c *Config) { c.ConnectTimeout = 500 * time.Millisecond }, nil, httpAddrs(bs)...)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var (
		wg     sync.WaitGroup
		done   atomic.Int64
		mu     sync.Mutex
		failed []string
	)
	for range 8 {
		wg.Go(func() {
			for range 150 {
				code, body, _ := get(t, c, "http://"+p.addr+"/")
				done.Add(1)
				if code != 200 {
					mu.Lock()
					failed = append(failed, body)
					mu.Unlock()
				}
			}
		})
	}
	eventually(t, 10*time.Second, "load to start", func() bool { return done.Load() > 200 })
	bs[1].Close() // closes its listener and every connection, mid-request
	killedAt := done.Load()
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d idempotent requests failed after a backend died, first: %s", len(failed), done.Load(), failed[0])
	}
	if done.Load()-killedAt < 300 {
		t.Fatalf("only %d requests after the kill", done.Load()-killedAt)
	}
	if p.Balancer().RetriesTotal.Load() == 0 {
		t.Fatal("no retry recorded: the kill was not exercised")
	}
}

func TestHTTPEjectionAndRecovery(t *testing.T) {
	bs := startBackends(t, 3)
	// The balancer's clock stands still until the test moves it, so the
	// ejection lasts through the checks however slow the machine is.
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p := startProxy(t, nil, func(b *balance.Config) {
		b.EjectConsecutive = 3
		b.EjectBase = 30 * time.Second
		b.EjectMax = 30 * time.Second
		b.Now = clock
	}, httpAddrs(bs)...)
	c := &http.Client{Timeout: 5 * time.Second}
	bs[0].Fail.Store(true)
	be0 := p.Balancer().Backends()[0]
	eventually(t, 5*time.Second, "failing backend ejected", func() bool {
		get(t, c, "http://"+p.addr+"/")
		return be0.Ejections.Load() > 0
	})
	before := bs[0].Requests.Load()
	for range 60 {
		if code, body, _ := get(t, c, "http://"+p.addr+"/"); code != 200 {
			t.Fatalf("request during ejection: %d %s", code, body)
		}
	}
	if got := bs[0].Requests.Load() - before; got != 0 {
		t.Fatalf("ejected backend got %d requests", got)
	}
	bs[0].Fail.Store(false)
	mu.Lock()
	now = now.Add(31 * time.Second) // past the ejection
	mu.Unlock()
	eventually(t, 5*time.Second, "recovered backend serving again", func() bool {
		_, _, inst := get(t, c, "http://"+p.addr+"/")
		return inst == bs[0].Name
	})
}

func TestHTTPSlowClientsCutOff(t *testing.T) {
	bs := startBackends(t, 1)
	p := startProxy(t, func(c *Config) { c.HeaderTimeout = 300 * time.Millisecond }, nil, httpAddrs(bs)...)
	cases := []struct {
		name string
		send string
	}{
		{"silent", ""},
		{"partial request line", "GET / HT"},
		{"headers never finished", "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n"},
		{"partial h2 preface", "PRI * HTTP/2.0\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.send)
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					var ne net.Error
					if errorsAs(err, &ne) && ne.Timeout() {
						t.Fatal("slow client was not cut off within 5 s")
					}
					break
				}
			}
			if el := time.Since(start); el < 250*time.Millisecond {
				t.Fatalf("cut off after %s, before the header timeout", el)
			}
		})
	}
}

func errorsAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

func TestHTTPNoBackendSaysWhy(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p := startProxy(t, nil, nil, dead)
	c := &http.Client{Timeout: 5 * time.Second}
	code, body, _ := get(t, c, "http://"+p.addr+"/")
	if code != http.StatusBadGateway || !strings.Contains(body, "connect refused "+dead) || !strings.Contains(body, "fleet web") {
		t.Fatalf("got %d %q", code, body)
	}
	p.Balancer().Backends()[0].SetHealth(false, "connect refused "+dead)
	code, body, _ = get(t, c, "http://"+p.addr+"/")
	want := "no healthy backend for fleet web: 1 registered, 0 passed health checks (last: connect refused " + dead + ")"
	if code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("got %d %q\nwant 503 %q", code, body, want)
	}
}

func TestHTTPUpgradePassesThrough(t *testing.T) {
	bs := startBackends(t, 1)
	p := startProxy(t, nil, nil, httpAddrs(bs)...)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, msg := range []string{"ping", "a longer message\n", strings.Repeat("x", 10000)} {
		io.WriteString(c, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo: %v %q", err, got[:min(len(got), 20)])
		}
	}
	if p.Balancer().Active() != 1 {
		t.Fatalf("upgraded connection not counted in flight: %d", p.Balancer().Active())
	}
	c.Close()
	eventually(t, 5*time.Second, "upgraded connection released", func() bool { return p.Balancer().Active() == 0 })
}

func TestH2ClientsReachHTTP1Backends(t *testing.T) {
	bs := startBackends(t, 2)
	p := startProxy(t, nil, nil, httpAddrs(bs)...)
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, n, a)
	}}
	c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	seen := map[string]bool{}
	for range 40 {
		resp, err := c.Post("http://"+p.addr+"/x", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 || !strings.HasPrefix(string(b), "hello from ") {
			t.Fatalf("proto %d status %d body %q", resp.ProtoMajor, resp.StatusCode, b)
		}
		seen[resp.Header.Get("X-Shoal-Instance")] = true
	}
	if len(seen) != 2 {
		t.Fatalf("requests on one h2 connection reached %v, want both backends", seen)
	}
}

func TestTLSListenerNegotiatesH2AndHTTP1(t *testing.T) {
	bs := startBackends(t, 1)
	cert := selfSigned(t)
	p := startProxy(t, func(c *Config) { c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}} }, nil, httpAddrs(bs)...)
	base := &tls.Config{InsecureSkipVerify: true}
	cases := []struct {
		name      string
		transport http.RoundTripper
		proto     int
	}{
		{"h2 via ALPN", &http2.Transport{TLSClientConfig: base}, 2},
		{"http/1.1 via ALPN", &http.Transport{TLSClientConfig: base, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &http.Client{Timeout: 5 * time.Second, Transport: tc.transport}
			resp, err := c.Get("https://" + p.addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.ProtoMajor != tc.proto || resp.StatusCode != 200 || !strings.HasPrefix(string(b), "hello from be0") {
				t.Fatalf("proto %d status %d body %q", resp.ProtoMajor, resp.StatusCode, b)
			}
		})
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"bad protocol", func(c *Config) { c.BackendProtocol = "spdy" }, "backend-protocol"},
		{"h2 without tls", func(c *Config) { c.BackendProtocol = H2 }, "--backend-tls"},
		{"tiny header limit", func(c *Config) { c.MaxHeaderBytes = 10 }, "max-header-bytes (10) must be >= 1024"},
		{"zero header timeout", func(c *Config) { c.HeaderTimeout = 0 }, "header-timeout (0s) must be > 0"},
		{"zero max conns", func(c *Config) { c.MaxConns = 0 }, "max-conns (0) must be >= 1"},
		{"bad engine", func(c *Config) { c.Engine = "quic" }, "h2-engine"},
		{"removed h2 engine", func(c *Config) { c.Engine = "nethttp" }, "h2-engine (\"nethttp\") was removed"},
		{"removed h1 engine", func(c *Config) { c.H1Engine = "fasthttp" }, "h1-engine (\"fasthttp\") was removed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			before := c
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if c != before {
				t.Fatal("Validate changed the config")
			}
		})
	}
}

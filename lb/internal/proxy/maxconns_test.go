package proxy

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMaxConnsRefusesAndCounts(t *testing.T) {
	bs := startBackends(t, 1)
	p := startProxy(t, func(c *Config) { c.MaxConns = 2 }, nil, httpAddrs(bs)...)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	first, _ := dial(), dial()
	eventually(t, 5*time.Second, "two connections served", func() bool { return p.OpenConns() == 2 })

	third := dial()
	io.WriteString(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	b, err := io.ReadAll(third)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the third connection was left open")
	}
	if len(b) != 0 {
		t.Fatalf("the third connection got %q, want a close without a response", b)
	}
	if n := p.RefusedMaxConns(); n != 1 {
		t.Fatalf("refused = %d, want 1", n)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewConnCollector(p.Proxy))
	want := "# HELP shoal_lb_connections_refused_total Client connections closed at accept, by reason (max_conns: --max-conns were open).\n# TYPE shoal_lb_connections_refused_total counter\nshoal_lb_connections_refused_total{reason=\"max_conns\"} 1\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "shoal_lb_connections_refused_total"); err != nil {
		t.Fatal(err)
	}

	// A closed connection frees its place.
	first.Close()
	eventually(t, 5*time.Second, "the closed connection to leave", func() bool { return p.OpenConns() == 1 })
	fourth := dial()
	io.WriteString(fourth, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	b, _ = io.ReadAll(fourth)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200 ") {
		t.Fatalf("after a close, a new connection got %q, want 200", b)
	}
}

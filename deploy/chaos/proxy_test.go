package chaos

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
)

// echoServer echoes every connection and records the peers' IPs.
type echoServer struct {
	ln    net.Listener
	mu    sync.Mutex
	peers []string
	got   int
}

func newEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.peers = append(e.peers, c.RemoteAddr().(*net.TCPAddr).IP.String())
			e.mu.Unlock()
			go func() {
				defer c.Close()
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						e.mu.Lock()
						e.got += n
						e.mu.Unlock()
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return e
}

func (e *echoServer) received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got
}

func poll(t *testing.T, what string, f func() error) {
	t.Helper()
	if err := sandbox.Poll(context.Background(), 10*time.Second, what, func(context.Context) error { return f() }); err != nil {
		t.Fatal(err)
	}
}

func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func roundTrip(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf)
}

func TestProxyForwardsFromTheClientsAddress(t *testing.T) {
	e := newEcho(t)
	p, err := NewProxy("a→b", e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dialFrom(t, "127.0.0.7", p.Addr())
	if got := roundTrip(t, c, "hello"); got != "hello" {
		t.Fatalf("echo = %q", got)
	}
	e.mu.Lock()
	peers := append([]string(nil), e.peers...)
	e.mu.Unlock()
	if len(peers) != 1 || peers[0] != "127.0.0.7" {
		t.Fatalf("target saw peers %v, want [127.0.0.7]", peers)
	}
}

func TestProxyRefusesNonLoopbackTargets(t *testing.T) {
	if _, err := NewProxy("x", "10.0.0.1:80"); err == nil {
		t.Fatal("a 10/8 target was accepted")
	}
}

func TestPartitionCutsOpenConnectionsAndRefusesNewOnes(t *testing.T) {
	e := newEcho(t)
	p, err := NewProxy("a→b", e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dialFrom(t, "127.0.0.1", p.Addr())
	roundTrip(t, c, "x")
	p.Set(LinkState{DropForward: true, DropReverse: true})
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the open connection survived the partition")
	}
	c2 := dialFrom(t, "127.0.0.1", p.Addr())
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection during the partition was served")
	}
	if _, cut := p.Counts(); cut != 1 {
		t.Fatalf("cut = %d, want 1", cut)
	}
	// Healing does not cut; new connections are served again.
	p.Set(LinkState{})
	c3 := dialFrom(t, "127.0.0.1", p.Addr())
	if got := roundTrip(t, c3, "y"); got != "y" {
		t.Fatalf("after heal: %q", got)
	}
}

// TestOneWayDrop: with b deaf to a, a's bytes are discarded while b's
// answers still flow; and the reverse.
func TestOneWayDrop(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop [2]string
		// serverSees: whether the dropped message reaches the echo server.
		serverSees bool
	}{
		{"b does not hear a", [2]string{"a", "b"}, false},
		{"a does not hear b", [2]string{"b", "a"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEcho(t)
			n := NewNet()
			defer n.Close()
			addr, err := n.Add("a", "b", e.ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c := dialFrom(t, "127.0.0.1", addr)
			roundTrip(t, c, "0")
			n.Drop(tc.drop[0], tc.drop[1])
			p := n.Proxies("a", "b")[0]
			if st := p.State(); st.DropForward == st.DropReverse {
				t.Fatalf("one-way drop set state %+v", st)
			}
			// The open connection was cut by the new drop; a new one
			// carries the one-way fault.
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatal("open connection not cut")
			}
			c = dialFrom(t, "127.0.0.1", addr)
			if _, err := c.Write([]byte("lost")); err != nil {
				t.Fatal(err)
			}
			poll(t, "4 bytes dropped", func() error {
				if d := p.DroppedBytes(); d != 4 {
					return errors.New("not yet")
				}
				return nil
			})
			if seen := e.received() == 5; seen != tc.serverSees {
				t.Fatalf("server received %d bytes; want the dropped message seen=%v", e.received(), tc.serverSees)
			}
			n.Heal()
			// Healing does not cut: the same connection now carries both ways,
			// and nothing of the dropped message arrives late.
			if got := roundTrip(t, c, "ok"); got != "ok" {
				t.Fatalf("after heal: %q", got)
			}
		})
	}
}

func TestLatencyDelaysBothDirections(t *testing.T) {
	e := newEcho(t)
	n := NewNet()
	defer n.Close()
	addr, err := n.Add("a", "b", e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n.SetLatency("a", "b", 100*time.Millisecond)
	c := dialFrom(t, "127.0.0.1", addr)
	start := time.Now()
	roundTrip(t, c, "x")
	if rtt := time.Since(start); rtt < 200*time.Millisecond {
		t.Fatalf("round trip took %s, want >= 200ms with 100ms each way", rtt)
	}
}

func TestDisconnectCutsButKeepsServing(t *testing.T) {
	e := newEcho(t)
	n := NewNet()
	defer n.Close()
	addr, err := n.Add("agents", "n1", e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := dialFrom(t, "127.0.0.1", addr)
	roundTrip(t, c, "x")
	if got := n.Accepted()["agents→n1"]; got != 1 {
		t.Fatalf("accepted %d, want 1", got)
	}
	if cut := n.Disconnect("agents", "n1"); cut != 1 {
		t.Fatalf("disconnect cut %d connections, want 1", cut)
	}
	if _, err := bufio.NewReader(c).ReadByte(); err == nil {
		t.Fatal("connection survived the disconnect")
	}
	c2 := dialFrom(t, "127.0.0.1", addr)
	if got := roundTrip(t, c2, "y"); got != "y" {
		t.Fatalf("reconnect: %q", got)
	}
}

func TestPartitionGroups(t *testing.T) {
	n := NewNet()
	defer n.Close()
	if err := n.Partition([]string{"n1", "n2"}, []string{"n2"}); err == nil {
		t.Fatal("an endpoint in two groups was accepted")
	}
	e := newEcho(t)
	for _, l := range [][2]string{{"n1", "n2"}, {"n2", "n3"}, {"n1", "n3"}, {"lb", "n3"}} {
		if _, err := n.Add(l[0], l[1], e.ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Partition([]string{"n1", "n2"}, []string{"n3"}); err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]LinkState{
		{"n1", "n2"}: {},
		{"n2", "n3"}: {DropForward: true, DropReverse: true},
		{"n1", "n3"}: {DropForward: true, DropReverse: true},
		{"lb", "n3"}: {}, // lb is in no group
	}
	for l, st := range want {
		if got := n.Proxies(l[0], l[1])[0].State(); got != st {
			t.Errorf("%s→%s: state %+v, want %+v", l[0], l[1], got, st)
		}
	}
	n.Isolate("lb")
	if got := n.Proxies("lb", "n3")[0].State(); !got.DropForward || !got.DropReverse {
		t.Errorf("isolated lb: %+v", got)
	}
}

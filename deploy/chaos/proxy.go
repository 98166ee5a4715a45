package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// LinkState is what a proxy does to the bytes it carries. Forward is the
// direction from the side that dialed (the client) to the target; Reverse
// carries the target's answers back.
type LinkState struct {
	// DropForward and DropReverse discard that direction's bytes: the
	// sender's writes succeed and nothing arrives, as on a lossy network.
	// With both set, new connections are closed as soon as they are
	// accepted (the target is unreachable).
	DropForward, DropReverse bool
	// Latency delays every chunk, in both directions, by this much.
	Latency time.Duration
}

// blocks reports whether s drops anything t lets through: moving from t to
// s cuts the open connections.
func (s LinkState) blocks(t LinkState) bool {
	return (s.DropForward && !t.DropForward) || (s.DropReverse && !t.DropReverse)
}

// Proxy is a TCP proxy on 127.0.0.1 for one directed link to one target
// address. Its methods are safe for concurrent use.
type Proxy struct {
	Name   string
	target string
	ln     net.Listener

	mu     sync.Mutex
	state  LinkState
	conns  map[*proxyConn]struct{}
	closed bool
	// accepted and cut count connections, for tests and the report.
	accepted, cut int
	// droppedBytes counts the bytes a drop discarded.
	droppedBytes int64
	wg           sync.WaitGroup
}

// NewProxy listens on a free 127.0.0.1 port and forwards to target.
func NewProxy(name, target string) (*Proxy, error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: target %q: %w", name, target, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("proxy %s: target %q: must be a 127.0.0.0/8 address", name, target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy %s: listen: %w", name, err)
	}
	p := &Proxy{Name: name, target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's listening address, what a client dials instead of
// the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// State returns the proxy's current state.
func (p *Proxy) State() LinkState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Set changes the proxy's state. When the new state drops a direction the
// old one let through, every open connection is closed: the partition
// starts now for streams already established, and their owners reconnect
// into the new state.
func (p *Proxy) Set(s LinkState) {
	p.mu.Lock()
	cut := s.blocks(p.state)
	p.state = s
	var open []*proxyConn
	if cut {
		for c := range p.conns {
			open = append(open, c)
		}
	}
	p.mu.Unlock()
	for _, c := range open {
		p.drop(c)
	}
}

// Cut closes every open connection without changing the state: a
// disconnect the clients recover from by reconnecting.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	var open []*proxyConn
	for c := range p.conns {
		open = append(open, c)
	}
	p.mu.Unlock()
	for _, c := range open {
		p.drop(c)
	}
	return len(open)
}

// Counts returns how many connections were accepted and how many were cut.
func (p *Proxy) Counts() (accepted, cut int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.cut
}

// DroppedBytes is how many bytes the proxy discarded while dropping.
func (p *Proxy) DroppedBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.droppedBytes
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) drop(c *proxyConn) {
	p.mu.Lock()
	_, ok := p.conns[c]
	if ok {
		delete(p.conns, c)
		p.cut++
	}
	p.mu.Unlock()
	if ok {
		c.close()
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		st, closed := p.state, p.closed
		p.accepted++
		p.mu.Unlock()
		if closed || (st.DropForward && st.DropReverse) {
			in.Close()
			continue
		}
		p.wg.Add(1)
		go p.handle(in)
	}
}

// dialTimeout bounds a dial to the target; targets are on loopback, so a
// slow dial means the target is stopped (SIGSTOP) and the client should see
// its connection fail rather than hang on the proxy forever.
const dialTimeout = 3 * time.Second

func (p *Proxy) handle(in net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: dialTimeout}
	// Dial out from the client's own loopback address, so the target sees
	// the address it would without the proxy (the coordinator checks that
	// an agent streams from its instance's IP).
	if ra, ok := in.RemoteAddr().(*net.TCPAddr); ok && ra.IP.IsLoopback() {
		d.LocalAddr = &net.TCPAddr{IP: ra.IP}
	}
	out, err := d.Dial("tcp", p.target)
	if err != nil {
		in.Close()
		return
	}
	c := &proxyConn{in: in, out: out}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(c, in, out, true) })
	wg.Go(func() { p.pipe(c, out, in, false) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.close()
}

type chunk struct {
	at time.Time
	b  []byte
}

// pipe copies src to dst, dropping or delaying chunks as the state at the
// time of each read says. The reader and the writer are separate so that
// latency delays bytes without throttling the stream.
func (p *Proxy) pipe(c *proxyConn, src, dst net.Conn, forward bool) {
	q := make(chan chunk, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ch := range q {
			if wait := time.Until(ch.at); wait > 0 {
				time.Sleep(wait)
			}
			if _, err := dst.Write(ch.b); err != nil {
				c.close()
				// Drain so the reader never blocks on a dead writer.
				for range q {
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			st := p.State()
			drop := (forward && st.DropForward) || (!forward && st.DropReverse)
			if drop {
				p.mu.Lock()
				p.droppedBytes += int64(n)
				p.mu.Unlock()
			} else {
				q <- chunk{at: time.Now().Add(st.Latency), b: append([]byte(nil), buf[:n]...)}
			}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
	if err := closeWrite(dst); err != nil {
		c.close()
	}
}

func closeWrite(c net.Conn) error {
	if tc, ok := c.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return c.Close()
}

// proxyConn is one proxied connection: the accepted side and the dialed one.
type proxyConn struct {
	in, out net.Conn
	once    sync.Once
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		// SetLinger(0): a cut is an abrupt reset, not a graceful close, so
		// neither side waits on the other.
		for _, x := range []net.Conn{c.in, c.out} {
			if tc, ok := x.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = x.Close()
		}
	})
}

var _ io.Closer = (*Proxy)(nil)

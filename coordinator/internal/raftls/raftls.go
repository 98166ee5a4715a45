package raftls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// Config configures a Layer.
type Config struct {
	// Bind is the TCP address to listen on (host:port; port 0 picks one).
	Bind string
	// Advertise is the address peers dial, if not Bind's; it must be a
	// routable host:port.
	Advertise string
	// HandshakeTimeout bounds a TLS handshake on either side, so a peer
	// that connects and stalls holds no goroutine for long.
	HandshakeTimeout time.Duration
	// Source holds the server certificate and the CA bundle.
	Source *tlsconf.Source
}

// DefaultConfig returns a Config with a 10 s handshake timeout and nothing
// else set.
func DefaultConfig() Config { return Config{HandshakeTimeout: 10 * time.Second} }

// Validate checks the fields, naming the wrong one.
func (c Config) Validate() error {
	switch {
	case c.Bind == "":
		return errors.New("raft-addr: required")
	case c.HandshakeTimeout <= 0:
		return fmt.Errorf("handshake-timeout (%s): must be positive", c.HandshakeTimeout)
	case c.Source == nil:
		return errors.New("source: required")
	}
	if c.Advertise != "" {
		if _, err := net.ResolveTCPAddr("tcp", c.Advertise); err != nil {
			return fmt.Errorf("advertise-raft (%q): %w", c.Advertise, err)
		}
	}
	return nil
}

// Layer is a raft.StreamLayer over TLS.
type Layer struct {
	ln        net.Listener
	advertise net.Addr
	timeout   time.Duration
	server    *tls.Config
	client    *tls.Config
}

var _ raft.StreamLayer = (*Layer)(nil)

// Listen validates cfg, builds the TLS configs (the Source's certificate
// must be a server's) and listens on cfg.Bind.
func Listen(cfg Config) (*Layer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	server, err := tlsconf.ServerConfig(cfg.Source, tlsconf.ServerOptions{PeerRoles: []tlsconf.Role{tlsconf.RoleServer}})
	if err != nil {
		return nil, err
	}
	client, err := tlsconf.PeerClientConfig(cfg.Source)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("raft-addr (%q): %w", cfg.Bind, err)
	}
	l := &Layer{ln: ln, advertise: ln.Addr(), timeout: cfg.HandshakeTimeout, server: server, client: client}
	if cfg.Advertise != "" {
		l.advertise, _ = net.ResolveTCPAddr("tcp", cfg.Advertise) // checked by Validate
	}
	if a, ok := l.advertise.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("advertise-raft (%q): required when raft-addr (%q) is not a single address", cfg.Advertise, cfg.Bind)
	}
	return l, nil
}

// Accept waits for a connection and returns it unhandshaken: the handshake
// runs, bounded by HandshakeTimeout, on the connection's first Read or
// Write, in raft's goroutine for that connection, so one slow peer does not
// hold up the accept loop.
func (l *Layer) Accept() (net.Conn, error) {
	c, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: tls.Server(c, l.server), timeout: l.timeout}, nil
}

// Close stops listening; established connections stay open, as with
// raft's TCP transport.
func (l *Layer) Close() error { return l.ln.Close() }

// Addr is the advertised address.
func (l *Layer) Addr() net.Addr { return l.advertise }

// Dial connects to a peer and completes the handshake within timeout (or
// HandshakeTimeout, if shorter or timeout is not positive).
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 || timeout > l.timeout {
		timeout = l.timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := &tls.Dialer{Config: l.client}
	c, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raft dial %s: %w", address, err)
	}
	return c, nil
}

// serverConn runs the server handshake once, bounded, before first use.
type serverConn struct {
	*tls.Conn
	timeout time.Duration
	once    sync.Once
	err     error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		c.err = c.HandshakeContext(ctx)
		if c.err != nil {
			c.Conn.Close()
		}
	})
	return c.err
}

func (c *serverConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *serverConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

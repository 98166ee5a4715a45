package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/coordinator/internal/authz"
	"github.com/shoal-dev/shoal/coordinator/internal/console"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// buildConsole makes the operator console on the node's API.
func (n *Node) buildConsole(az *authz.Authorizer) (*console.Console, error) {
	cc := console.DefaultConfig()
	cc.API, cc.Local, cc.Insecure, cc.Logger = n.srv, consoleLocal{n}, n.cfg.Security.Insecure, n.log.With("component", "console")
	var self tlsconf.Identity
	if n.tls != nil {
		self, _ = n.tls.src.Identity()
		cc.ReadAs = func(ctx context.Context) context.Context {
			// The producers read once for every viewer, as this server;
			// each viewer's token was checked for the page's method.
			return authz.WithCaller(ctx, authz.Caller{Identity: self})
		}
	}
	cc.Authorize = func(ctx context.Context, method, authorization string) (context.Context, error) {
		return az.AuthorizeBearer(ctx, self, method, authorization)
	}
	return console.New(cc)
}

// consoleLocal is what the console learns from this node itself.
type consoleLocal struct{ n *Node }

func (l consoleLocal) NodeID() string   { return l.n.cfg.Cluster.NodeID }
func (l consoleLocal) IsLeader() bool   { return l.n.raft.IsLeader() }
func (l consoleLocal) LeaderID() string { return l.n.raft.LeaderID() }

// loadBalancers is the feed's live LB sessions of fleet, for the API.
func (n *Node) loadBalancers(fleet string) []*shoalv1.LoadBalancer {
	var out []*shoalv1.LoadBalancer
	for _, r := range n.feed.Reports(fleet) {
		lb := &shoalv1.LoadBalancer{Id: r.ID, Fleet: fleet, LastReportTime: timestamppb.New(r.LastReport), RequestRate: r.RatePerSec}
		for _, b := range r.Backends {
			lb.Backends = append(lb.Backends, &shoalv1.LoadBalancerBackend{InstanceId: b.Load.InstanceId, Address: b.Load.Address,
				State: b.Load.State, Healthy: b.Load.Healthy, InFlight: b.Load.InFlight, RequestRate: b.RatePerSec})
		}
		out = append(out, lb)
	}
	return out
}

// httpHandler is --http-addr: the console under /ui/, /metrics and
// /healthz beside it, every response with the console's security headers.
func (n *Node) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ui/", n.console)
	mux.Handle("/", n.srv.HTTPHandler())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		console.SecurityHeaders(w.Header())
		if n.tls != nil && r.TLS == nil && strings.HasPrefix(r.URL.Path, "/ui") {
			// A token must never travel in clear: plain HTTP serves
			// scrapers only, and sends people to HTTPS.
			w.Header().Set("Location", "https://"+r.Host+r.URL.Path)
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		mux.ServeHTTP(w, r)
	})
}

// httpListener is --http-addr's listener: with TLS on, HTTPS with the
// node's server certificate and no client certificate asked for (a
// browser has none), and plain HTTP on the same port for /metrics and
// /healthz scrapers, told apart by the first byte of the connection.
func (n *Node) httpListener() (net.Listener, error) {
	if n.tls == nil {
		return n.httpLis, nil
	}
	cfg, err := tlsconf.ServerConfig(n.tls.src, tlsconf.ServerOptions{AllowNoClientCert: true})
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	cfg.ClientAuth = tls.NoClientCert
	cfg.VerifyConnection = nil
	cfg.NextProtos = []string{"h2", "http/1.1"}
	return &sniffListener{Listener: n.httpLis, tls: cfg}, nil
}

// sniffListener hands out connections that open with a TLS handshake
// record (0x16) as *tls.Conn (net/http sees r.TLS and offers HTTP/2) and
// the others as they are. Each first byte is awaited in its own goroutine,
// so a slow client never holds up Accept.
type sniffListener struct {
	net.Listener
	tls   *tls.Config
	once  sync.Once
	conns chan net.Conn
	errc  chan error
}

// sniffTimeout bounds the wait for a connection's first byte.
const sniffTimeout = 10 * time.Second

func (l *sniffListener) Accept() (net.Conn, error) {
	l.once.Do(func() {
		l.conns, l.errc = make(chan net.Conn), make(chan error, 1)
		go l.loop()
	})
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		l.errc <- err // every later Accept fails the same way
		return nil, err
	}
}

func (l *sniffListener) loop() {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.errc <- err
				return
			}
			// As net/http does: a failed Accept (out of file descriptors)
			// is retried after a pause, not taken for a dead listener.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go l.sniff(c)
	}
}

func (l *sniffListener) sniff(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReaderSize(c, 16)
	b, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &peeked{Conn: c, r: br}
	if b[0] == 0x16 {
		out = tls.Server(out, l.tls)
	}
	select {
	case l.conns <- out:
	case err := <-l.errc:
		l.errc <- err
		out.Close()
	}
}

// peeked is a conn whose first bytes were read into r.
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }

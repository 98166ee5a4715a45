package nemesis

import (
	"context"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
)

// GRPCDialOptions routes a node's gRPC connections to its peers through the
// dial map: forwarded writes and joins (cluster), the Forward stream and
// drain commands (ingest), piped WatchBackends (feed), and every dial that
// follows a leader address, since those dial the same peer addresses. The
// connection keeps the real address as its target, so TLS and the
// :authority still name the real peer. None without a dial map.
func GRPCDialOptions() []grpc.DialOption {
	if len(armed().dial) == 0 {
		return nil
	}
	return []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", DialAddr(addr))
	})}
}

// StreamLayer returns l with raft's dials routed through the dial map, or l
// itself without one. Raft still records and sends the real address; only
// the TCP connection goes to the proxy. The TLS layer verifies the peer's
// certificate, not its host name, so a proxy in between is transparent.
func StreamLayer(l raft.StreamLayer) raft.StreamLayer {
	if len(armed().dial) == 0 {
		return l
	}
	return mappedLayer{l}
}

type mappedLayer struct{ raft.StreamLayer }

func (m mappedLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return m.StreamLayer.Dial(raft.ServerAddress(DialAddr(string(address))), timeout)
}

// TCPStreamLayer is raft's plain TCP stream layer (for --insecure) on ln,
// advertising adv, for use with StreamLayer: raft.NewTCPTransport keeps its
// layer to itself, so it cannot be wrapped.
func TCPStreamLayer(ln net.Listener, adv net.Addr) raft.StreamLayer {
	return &tcpLayer{ln: ln, adv: adv}
}

type tcpLayer struct {
	ln  net.Listener
	adv net.Addr
}

func (t *tcpLayer) Accept() (net.Conn, error) { return t.ln.Accept() }
func (t *tcpLayer) Close() error              { return t.ln.Close() }
func (t *tcpLayer) Addr() net.Addr            { return t.adv }

func (t *tcpLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// DialMapped reports whether a dial map is armed: the insecure raft path
// builds its transport on TCPStreamLayer only then.
func DialMapped() bool { return len(armed().dial) > 0 }

package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/coordinator/internal/enroll"
	"github.com/shoal-dev/shoal/coordinator/internal/nemesis"
	"github.com/shoal-dev/shoal/coordinator/internal/raftls"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// Security is how a node proves who it is and checks who calls it. The
// default is mutual TLS on every port and ACL tokens on the operator API;
// Insecure turns both off, for development only.
type Security struct {
	// TLS names the CA bundle (--ca-cert) and this server's certificate and
	// key (--cert, --key); the certificate must name server/<node-id>.
	TLS tlsconf.Config
	// CAKeyFile (--ca-key) lets this node issue agent certificates. It is
	// required when enrollment is on.
	CAKeyFile string
	// Insecure (--insecure) serves plaintext with no identities and no
	// ACLs, and says so loudly.
	Insecure bool
	// InsecureWarnEvery repeats the --insecure warning.
	InsecureWarnEvery time.Duration
	// ReloadEvery is how often the TLS files are checked for a change (a
	// SIGHUP reloads at once); 0 turns the watch off.
	ReloadEvery time.Duration
	// Enroll is agent enrollment; it is on when Enroll.TrustFiles is set.
	// Its Region defaults to the AWS region the node runs in.
	Enroll enroll.Config
}

// DefaultSecurity is TLS and ACLs on, with no files named yet.
func DefaultSecurity() Security {
	return Security{
		TLS:               tlsconf.DefaultConfig(),
		InsecureWarnEvery: time.Minute,
		ReloadEvery:       10 * time.Second,
		Enroll:            enroll.DefaultConfig(),
	}
}

// enrolling reports whether agent enrollment is configured.
func (s Security) enrolling() bool { return len(s.Enroll.TrustFiles) > 0 }

// Validate names the first wrong flag. It reads no file.
func (s Security) Validate(cloud string) error {
	if s.Insecure {
		switch {
		case s.TLS.CAFile != "" || s.TLS.CertFile != "" || s.TLS.KeyFile != "" || s.CAKeyFile != "":
			return errors.New("insecure: cannot be combined with --ca-cert, --cert, --key or --ca-key")
		case s.enrolling():
			return errors.New("insecure: agent enrollment (--iid-trust) needs TLS")
		case s.InsecureWarnEvery <= 0:
			return fmt.Errorf("insecure warning interval (%v) must be > 0", s.InsecureWarnEvery)
		}
		return nil
	}
	switch {
	case s.TLS.CAFile == "" && s.TLS.CertFile == "" && s.TLS.KeyFile == "":
		return errors.New("ca-cert, cert and key: required (a coordinator serves mutual TLS; create them with `shoal-coordinator tls ca create` and `tls cert create --role server`, or pass --insecure for development only)")
	case s.TLS.CAFile == "":
		return errors.New("ca-cert: required with --cert and --key")
	case s.TLS.CertFile == "" || s.TLS.KeyFile == "":
		return errors.New("cert and key: both required: the server's own certificate (`tls cert create --role server --name NODE-ID`)")
	case s.ReloadEvery < 0:
		return fmt.Errorf("tls reload interval (%v) must be >= 0", s.ReloadEvery)
	}
	if err := s.TLS.Validate(); err != nil {
		return err
	}
	if s.enrolling() {
		if cloud == CloudNone {
			return errors.New("iid-trust: agent enrollment checks instances with AWS; it cannot run with --cloud none (issue agent certificates by hand instead)")
		}
		if s.CAKeyFile == "" {
			return errors.New("ca-key: required with --iid-trust: this node issues the agents' certificates")
		}
		e := s.Enroll
		if e.Region == "" {
			e.Region = "us-east-1" // the AWS region is known only at start; check the rest now
		}
		if err := e.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// transport is the node's TLS material, nil for --insecure.
type transport struct {
	src *tlsconf.Source
}

// openTransport loads the TLS files and checks the certificate names this
// node.
func openTransport(sec Security, nodeID string) (*transport, error) {
	if sec.Insecure {
		return nil, nil
	}
	src, err := tlsconf.NewSource(sec.TLS)
	if err != nil {
		return nil, err
	}
	id, ok := src.Identity()
	switch {
	case !ok:
		return nil, errors.New("cert: no certificate loaded")
	case id.Role != tlsconf.RoleServer:
		return nil, fmt.Errorf("cert: %s is a %s certificate; a coordinator needs a server certificate", id, id.Role)
	case id.Name != nodeID:
		return nil, fmt.Errorf("cert: %s names node %q, but --node-id is %q", id, id.Name, nodeID)
	}
	return &transport{src: src}, nil
}

// serverOptions are the gRPC server credentials: mutual TLS that also lets
// a caller without a certificate reach Enroll (the authorizer refuses such
// callers everything else).
func (t *transport) serverOptions() ([]grpc.ServerOption, error) {
	if t == nil {
		return nil, nil
	}
	cfg, err := tlsconf.ServerConfig(t.src, tlsconf.ServerOptions{AllowNoClientCert: true})
	if err != nil {
		return nil, err
	}
	return []grpc.ServerOption{tlsconf.ServerOption(cfg)}, nil
}

// peerDialOptions are the options for calls to other servers.
// In a failpoints build they also route through the nemesis dial map.
func (t *transport) peerDialOptions() ([]grpc.DialOption, error) {
	if t == nil {
		return nemesis.GRPCDialOptions(), nil
	}
	cfg, err := tlsconf.PeerClientConfig(t.src)
	if err != nil {
		return nil, err
	}
	return append([]grpc.DialOption{tlsconf.DialOption(cfg)}, nemesis.GRPCDialOptions()...), nil
}

// peerDial is cluster.Config.Dial over the peer options.
func (t *transport) peerDial() (func(string) (*grpc.ClientConn, error), error) {
	opts, err := t.peerDialOptions()
	if err != nil {
		return nil, err
	}
	return func(addr string) (*grpc.ClientConn, error) { return rpc.Dial(addr, opts...) }, nil
}

// raftLayer is raft's TLS stream layer; nil for --insecure (plain TCP).
func (t *transport) raftLayer(bind, advertise string) (raft.StreamLayer, error) {
	if t == nil {
		return nil, nil
	}
	c := raftls.DefaultConfig()
	c.Bind, c.Advertise, c.Source = bind, advertise, t.src
	return raftls.Listen(c)
}

// watch reloads the TLS files when they change, or at once on a signal.
func (t *transport) watch(ctx context.Context, every time.Duration, hup <-chan struct{}, report func(error)) {
	if t == nil {
		return
	}
	go t.src.Watch(ctx, every, report)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := t.src.Reload(); err != nil {
				report(err)
			} else {
				report(nil)
			}
		}
	}
}

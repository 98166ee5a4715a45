package testkit

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/shoal-dev/shoal/deploy/internal/devpki"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// PKI, Pair, Creds and Token are deploy/internal/devpki's: a CA made with
// the real `shoal-coordinator tls` commands, a certificate and its key,
// a client's credentials, and an ACL token.
type (
	PKI   = devpki.PKI
	Pair  = devpki.Pair
	Creds = devpki.Creds
	Token = devpki.Token
)

// Certificate roles, for PKI.Issue.
const (
	RoleServer   = devpki.RoleServer
	RoleLB       = devpki.RoleLB
	RoleAgent    = devpki.RoleAgent
	RoleOperator = devpki.RoleOperator
)

// NewPKI creates a CA under a t.TempDir with coordinatorBin (`tls ca
// create`); issue from it with Cert and ServerCert.
func NewPKI(t testing.TB, coordinatorBin string) *PKI {
	t.Helper()
	p, err := devpki.New(context.Background(), coordinatorBin, filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Cert issues a certificate of role for name (`tls cert create`).
func Cert(t testing.TB, p *PKI, role, name string, ips ...string) Pair {
	t.Helper()
	pair, err := p.Issue(context.Background(), role, name, ips...)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// ServerCert issues node id's server certificate, valid on 127.0.0.1.
func ServerCert(t testing.TB, p *PKI, id string) Pair {
	t.Helper()
	pair, err := p.Server(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// TLSFlags are a server's or shoal-lb's flags for its certificate:
// --ca-cert, --cert and --key.
func TLSFlags(p *PKI, pair Pair) []string {
	return []string{"--ca-cert", p.CACert, "--cert", pair.Cert, "--key", pair.Key}
}

// BootstrapACL runs `acl bootstrap` against each of addrs in turn until
// one answers (a cluster may still be electing), at most within, and
// returns the management token.
func BootstrapACL(t testing.TB, coordinatorBin string, c Creds, within time.Duration, addrs ...string) Token {
	t.Helper()
	var tok Token
	Eventually(t, within, func() error {
		var last error
		for _, a := range addrs {
			var err error
			if tok, err = devpki.BootstrapACL(context.Background(), coordinatorBin, a, c); err == nil {
				return nil
			}
			last = err
		}
		return last
	})
	return tok
}

// TokenSource is the token a test's gRPC clients send, set once ACLs are
// bootstrapped; until then calls carry none. Safe for concurrent use.
type TokenSource struct {
	mu     sync.Mutex
	secret string
}

// Set makes every later call carry secret.
func (s *TokenSource) Set(secret string) {
	s.mu.Lock()
	s.secret = secret
	s.mu.Unlock()
}

// Get is the current secret ("" before Set).
func (s *TokenSource) Get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secret
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (s *TokenSource) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	return rpc.TokenCredentials{Secret: s.Get()}.GetRequestMetadata(ctx, uri...)
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (s *TokenSource) RequireTransportSecurity() bool { return true }

var _ credentials.PerRPCCredentials = (*TokenSource)(nil)

// DialOptions are a client's options for c's certificate over mutual TLS
// with tokens from ts (c.Token is ignored): connections made before the
// ACL bootstrap send the token once there is one.
func DialOptions(t testing.TB, c Creds, ts *TokenSource) []grpc.DialOption {
	t.Helper()
	c.Token = ""
	opts, err := c.DialOptions()
	if err != nil {
		t.Fatal(err)
	}
	return append(opts, grpc.WithPerRPCCredentials(ts))
}

// TryBootstrapACL is one `acl bootstrap -o json` against addr with c's
// certificate, for a harness that polls it in its own loop.
func TryBootstrapACL(ctx context.Context, coordinatorBin, addr string, c Creds) (Token, error) {
	return devpki.BootstrapACL(ctx, coordinatorBin, addr, c)
}

// Environ is the test's environment without the SHOAL_* credentials and
// address a developer's shell may carry; add a Creds.Env to it.
func Environ() []string { return devpki.Environ() }

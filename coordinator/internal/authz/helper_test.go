package authz

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// fakeStore is a TokenStore from a map.
type fakeStore struct {
	mu           sync.Mutex
	bootstrapped bool
	byHash       map[string]acl.Token
}

func (s *fakeStore) TokenBySecretHash(h string) (acl.Token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byHash[h]
	return t, ok
}

func (s *fakeStore) ACLBootstrapped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bootstrapped
}

func (s *fakeStore) setBootstrapped(b bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bootstrapped = b
}

// add makes a token and returns its secret.
func (s *fakeStore) add(t *testing.T, name string, p acl.Policy, created, expires time.Time) string {
	secret, spec, err := acl.Generate(name, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byHash[spec.SecretHash] = acl.Token{AccessorID: spec.AccessorID, Name: name, Policy: p, SecretHash: spec.SecretHash, CreatedAt: created, ExpiresAt: expires}
	return secret
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// fakeClock is the injected clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// The services a coordinator serves, as fakes whose every method answers
// with the Caller the authorizer put in the context. Connect and
// WatchBackends are streams, as in the real contract.
var testServices = map[string][]string{
	"shoal.v1.ControlService": {"GetStatus", "ListPeers", "RemovePeer", "CreateFleet", "GetFleet", "ListFleets",
		"UpdateFleet", "DeleteFleet", "PauseFleet", "ResumeFleet", "SaveSnapshot", "RestoreSnapshot", "ListInstances",
		"ResetInstanceIdentity", "SetPolicy", "GetPolicy", "ListDecisions", "ScaleFleet", "ExplainFleet", "ListAlarms",
		"Unlisted"},
	"shoal.v1.ACLService":             {"BootstrapACL", "CreateToken", "ListTokens", "DeleteToken"},
	"shoal.v1.AgentService":           {"Connect", "Enroll", "RenewCertificate"},
	"shoal.v1.BackendService":         {"WatchBackends"},
	"shoal.cluster.v1.ClusterService": {"JoinCluster", "ApplyCommand", "ForwardAgents"},
}

var streamMethods = map[string]bool{"Connect": true, "WatchBackends": true}

func describe(ctx context.Context) string {
	c, ok := CallerFrom(ctx)
	if !ok {
		return "no caller"
	}
	return fmt.Sprintf("id=%s token=%s policy=%s via=%s", idString(c.Identity), c.TokenName, c.Policy, idString(c.Via))
}

func register(s *grpc.Server) {
	for svc, methods := range testServices {
		desc := grpc.ServiceDesc{ServiceName: svc, HandlerType: (*any)(nil)}
		for _, m := range methods {
			full := acl.FullMethod(svc, m)
			if streamMethods[m] {
				desc.Streams = append(desc.Streams, grpc.StreamDesc{StreamName: m, ServerStreams: true, ClientStreams: true,
					Handler: func(_ any, ss grpc.ServerStream) error {
						return ss.SendMsg(wrapperspb.String(describe(ss.Context())))
					}})
				continue
			}
			desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: m,
				Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
					in := new(emptypb.Empty)
					if err := dec(in); err != nil {
						return nil, err
					}
					h := func(ctx context.Context, _ any) (any, error) { return wrapperspb.String(describe(ctx)), nil }
					if icpt == nil {
						return h(ctx, in)
					}
					return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, h)
				}})
		}
		s.RegisterService(&desc, struct{}{})
	}
}

// call makes one call of full (a stream for the stream methods) and
// returns what the handler said about its caller.
func call(ctx context.Context, conn *grpc.ClientConn, full string, opts ...grpc.CallOption) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out := new(wrapperspb.StringValue)
	if streamMethods[path.Base(full)] {
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, full, opts...)
		if err != nil {
			return "", err
		}
		if err := st.RecvMsg(out); err != nil {
			return "", err
		}
		return out.Value, nil
	}
	err := conn.Invoke(ctx, full, &emptypb.Empty{}, out, opts...)
	return out.Value, err
}

// tlsEnv is a TLS gRPC server with the authorizer in front of the fake
// services, and a client of each role.
type tlsEnv struct {
	store *fakeStore
	clock *fakeClock
	count func(reason string) float64
	logs  *syncBuffer
	conns map[string]*grpc.ClientConn // by role; "none" has no certificate
	// behind, when set, is why the node is not caught up (Deps.CaughtUp).
	behind atomic.Pointer[string]
}

func newTLSEnv(t *testing.T, cfg Config) *tlsEnv {
	t.Helper()
	ca, err := pki.NewCA(pki.CARequest{Cluster: "shoal", Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	source := func(role tlsconf.Role, name string) *tlsconf.Source {
		c := tlsconf.DefaultConfig()
		c.CAFile = caFile
		if role != "" {
			cert, key, err := ca.Issue(pki.LeafRequest{Identity: tlsconf.Identity{Cluster: "shoal", Role: role, Name: name}, Validity: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			c.CertFile, c.KeyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
			if err := os.WriteFile(c.CertFile, cert, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(c.KeyFile, key, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s, err := tlsconf.NewSource(c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e := &tlsEnv{
		store: &fakeStore{byHash: map[string]acl.Token{}},
		clock: &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		logs:  &syncBuffer{},
		conns: map[string]*grpc.ClientConn{},
	}
	denied := NewDeniedCounter()
	e.count = func(r string) float64 { return testutil.ToFloat64(denied.WithLabelValues(r)) }
	a, err := New(cfg, Deps{Tokens: e.store, Denied: denied, Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Now: e.clock.Now,
		CaughtUp: func() (bool, string) {
			if why := e.behind.Load(); why != nil {
				return false, *why
			}
			return true, ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	serverCfg, err := tlsconf.ServerConfig(source(tlsconf.RoleServer, "n1"), tlsconf.ServerOptions{AllowNoClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(append(a.ServerOptions(), tlsconf.ServerOption(serverCfg))...)
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	for role, name := range map[tlsconf.Role]string{"": "", tlsconf.RoleServer: "n2", tlsconf.RoleOperator: "alice", tlsconf.RoleAgent: "i-1", tlsconf.RoleLB: "lb1"} {
		conn, err := rpc.Dial(lis.Addr().String(), tlsconf.DialOption(tlsconf.ClientConfig(source(role, name))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		key := string(role)
		if key == "" {
			key = "none"
		}
		e.conns[key] = conn
	}
	return e
}

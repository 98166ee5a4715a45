package server

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/coordinator/internal/authz"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// stamp is what a node saw of a call: the method and the caller stamp a
// forwarding follower put on it.
type stamp struct {
	node, method, caller, token, policy, forwarded, auth string
}

type stampLog struct {
	mu  sync.Mutex
	all []stamp
}

func (l *stampLog) options(node string) []grpc.ServerOption {
	first := func(md metadata.MD, k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		l.mu.Lock()
		l.all = append(l.all, stamp{node, info.FullMethod, first(md, authz.CallerKey), first(md, authz.TokenNameKey), first(md, authz.TokenPolicyKey), first(md, "x-shoal-forwarded"), first(md, "authorization")})
		l.mu.Unlock()
		return h(ctx, req)
	})}
}

// find returns the last call of method that node served.
func (l *stampLog) find(node, method string) (stamp, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.all) - 1; i >= 0; i-- {
		if s := l.all[i]; s.node == node && strings.HasSuffix(s.method, "/"+method) {
			return s, true
		}
	}
	return stamp{}, false
}

func (e *env) leaderIndex(t *testing.T) (leader, follower int) {
	t.Helper()
	leader, follower = -1, -1
	for i, n := range e.nodes {
		if n.IsLeader() {
			leader = i
		} else {
			follower = i
		}
	}
	if leader < 0 || follower < 0 {
		t.Fatalf("no leader (%d) or follower (%d)", leader, follower)
	}
	return leader, follower
}

var alice = authz.Caller{
	Identity:  tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleOperator, Name: "alice"},
	TokenName: "ops-alice",
	Policy:    acl.PolicyOperate,
}

func TestACLServiceThroughFollower(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		ctx := context.Background()
		leader, follower := e.leaderIndex(t)
		c := e.acls[follower] // every write and read passes to the leader

		if l, err := c.ListTokens(ctx, &shoalv1.ListTokensRequest{}); err != nil || len(l.Tokens) != 0 {
			t.Fatalf("tokens before bootstrap = %v, %v", l, err)
		}
		_, err := c.CreateToken(ctx, &shoalv1.CreateTokenRequest{Name: "early", Policy: shoalv1.TokenPolicy_TOKEN_POLICY_READ})
		wantCode(t, err, codes.FailedPrecondition, "ACLs are not bootstrapped")

		boot, err := c.BootstrapACL(ctx, &shoalv1.BootstrapACLRequest{})
		if err != nil {
			t.Fatal(err)
		}
		tok := boot.Token
		if err := acl.CheckSecret(boot.Secret); err != nil {
			t.Fatalf("secret %q: %v", boot.Secret, err)
		}
		if tok.Name != acl.BootstrapName || tok.Policy != shoalv1.TokenPolicy_TOKEN_POLICY_ADMIN || len(tok.AccessorId) != acl.AccessorIDLen || tok.CreateTime == nil || tok.ExpireTime != nil {
			t.Fatalf("bootstrap token = %v", tok)
		}
		// The leader resolves the secret; raft holds only its hash.
		stored, ok := e.nodes[leader].FSM().TokenBySecretHash(acl.HashSecret(boot.Secret))
		if !ok || stored.AccessorID != tok.AccessorId || !stored.CreatedAt.Equal(tok.CreateTime.AsTime()) {
			t.Fatalf("leader's token = %+v, %v; want accessor %s created %s", stored, ok, tok.AccessorId, tok.CreateTime.AsTime())
		}
		for _, n := range e.nodes {
			clustertest.Eventually(t, n.NodeID()+" to apply the bootstrap", func() bool { return n.FSM().ACLBootstrapped() })
			if strings.Contains(string(n.FSM().Save()), boot.Secret) {
				t.Fatalf("%s's state holds the secret", n.NodeID())
			}
		}

		_, err = c.BootstrapACL(ctx, &shoalv1.BootstrapACLRequest{})
		wantCode(t, err, codes.FailedPrecondition, "ACLs are already bootstrapped")

		made, err := c.CreateToken(ctx, &shoalv1.CreateTokenRequest{Name: "ops-alice", Policy: shoalv1.TokenPolicy_TOKEN_POLICY_OPERATE, Ttl: durationpb.New(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if made.Secret == boot.Secret || acl.CheckSecret(made.Secret) != nil || made.Token.Policy != shoalv1.TokenPolicy_TOKEN_POLICY_OPERATE {
			t.Fatalf("created = %v", made)
		}
		if life := made.Token.ExpireTime.AsTime().Sub(made.Token.CreateTime.AsTime()); life != time.Hour {
			t.Fatalf("token lives %s, want 1h", life)
		}

		for _, tc := range []struct {
			name string
			req  *shoalv1.CreateTokenRequest
			code codes.Code
			msg  string
		}{
			{"no name", &shoalv1.CreateTokenRequest{Policy: shoalv1.TokenPolicy_TOKEN_POLICY_READ}, codes.InvalidArgument, "name: required"},
			{"bad name", &shoalv1.CreateTokenRequest{Name: "a b", Policy: shoalv1.TokenPolicy_TOKEN_POLICY_READ}, codes.InvalidArgument, `name ("a b")`},
			{"no policy", &shoalv1.CreateTokenRequest{Name: "x"}, codes.InvalidArgument, "policy: required"},
			{"unknown policy", &shoalv1.CreateTokenRequest{Name: "x", Policy: 9}, codes.InvalidArgument, "policy (9)"},
			{"short ttl", &shoalv1.CreateTokenRequest{Name: "x", Policy: shoalv1.TokenPolicy_TOKEN_POLICY_READ, Ttl: durationpb.New(time.Second)}, codes.InvalidArgument, "ttl (1s): shorter than 1m0s"},
			{"negative ttl", &shoalv1.CreateTokenRequest{Name: "x", Policy: shoalv1.TokenPolicy_TOKEN_POLICY_READ, Ttl: durationpb.New(-time.Hour)}, codes.InvalidArgument, "ttl (-1h0m0s): must not be negative"},
			{"duplicate", &shoalv1.CreateTokenRequest{Name: "ops-alice", Policy: shoalv1.TokenPolicy_TOKEN_POLICY_READ}, codes.AlreadyExists, `token "ops-alice" already exists`},
		} {
			clustertest.Step(t, tc.name, func() {
				_, err := c.CreateToken(ctx, tc.req)
				wantCode(t, err, tc.code, tc.msg)
			})
		}

		list, err := c.ListTokens(ctx, &shoalv1.ListTokensRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Tokens) != 2 || list.Tokens[0].Name != "bootstrap" || list.Tokens[1].Name != "ops-alice" || list.Tokens[1].ExpireTime == nil {
			t.Fatalf("list = %v", list.Tokens)
		}
		if text := prototext.Format(list); strings.Contains(text, boot.Secret) || strings.Contains(text, made.Secret) || strings.Contains(text, stored.SecretHash) {
			t.Fatalf("list shows a secret or its hash: %s", text)
		}

		_, err = c.DeleteToken(ctx, &shoalv1.DeleteTokenRequest{AccessorId: strings.Repeat("0", 32)})
		wantCode(t, err, codes.NotFound, "unknown accessor id")
		_, err = c.DeleteToken(ctx, &shoalv1.DeleteTokenRequest{})
		wantCode(t, err, codes.InvalidArgument, "accessor_id: required")
		if _, err := c.DeleteToken(ctx, &shoalv1.DeleteTokenRequest{AccessorId: made.Token.AccessorId}); err != nil {
			t.Fatal(err)
		}
		_, err = c.DeleteToken(ctx, &shoalv1.DeleteTokenRequest{AccessorId: tok.AccessorId})
		wantCode(t, err, codes.FailedPrecondition, "last admin token")
		if list, err := e.acls[leader].ListTokens(ctx, &shoalv1.ListTokensRequest{}); err != nil || len(list.Tokens) != 1 || list.Tokens[0].AccessorId != tok.AccessorId {
			t.Fatalf("list after delete = %v, %v", list, err)
		}
		if _, ok := e.nodes[leader].FSM().TokenBySecretHash(acl.HashSecret(made.Secret)); ok {
			t.Fatal("the deleted token's secret still resolves")
		}
	})
}

func TestResetInstanceIdentity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		ctx := context.Background()
		leader, follower := e.leaderIndex(t)
		c := e.clients[follower]
		const id = "i-0123456789abcdef0"

		_, err := c.ResetInstanceIdentity(ctx, &shoalv1.ResetInstanceIdentityRequest{InstanceId: id})
		wantCode(t, err, codes.NotFound, `instance "i-0123456789abcdef0": no enrollment recorded`)
		_, err = c.ResetInstanceIdentity(ctx, &shoalv1.ResetInstanceIdentityRequest{})
		wantCode(t, err, codes.InvalidArgument, "instance_id: required")
		_, err = c.ResetInstanceIdentity(ctx, &shoalv1.ResetInstanceIdentityRequest{InstanceId: "web-1"})
		wantCode(t, err, codes.InvalidArgument, "instance_id")

		r, _, err := e.nodes[leader].Apply(ctx, fsm.IdentityEnroll(fsm.Identity{InstanceID: id, NonceSHA256: strings.Repeat("ab", 32), PendingTimeMS: 1}).Encode())
		if err != nil || r.Error() != nil {
			t.Fatalf("enroll: %v, %v", err, r.Error())
		}
		if _, err := c.ResetInstanceIdentity(ctx, &shoalv1.ResetInstanceIdentityRequest{InstanceId: id}); err != nil {
			t.Fatal(err)
		}
		for _, n := range e.nodes {
			clustertest.Eventually(t, n.NodeID()+" to forget "+id, func() bool { _, ok := n.FSM().Identity(id); return !ok })
		}
	})
}

func TestScaleStampsActor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		ctx := context.Background()
		leader, follower := e.leaderIndex(t)
		if _, err := e.clients[0].CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: &shoalv1.Fleet{Name: "web", Asg: "web-asg", Max: 9}}); err != nil {
			t.Fatal(err)
		}
		certOnly := alice
		certOnly.TokenName, certOnly.Policy = "", ""
		s := e.servers[follower]
		for _, tc := range []struct {
			name string
			ctx  context.Context
			want string
		}{
			{"token", authz.WithCaller(ctx, alice), "ops-alice"},
			{"certificate only", authz.WithCaller(ctx, certOnly), "alice"},
			{"insecure", ctx, ActorInsecure},
		} {
			clustertest.Step(t, tc.name, func() {
				r, err := s.ScaleFleet(tc.ctx, &shoalv1.ScaleFleetRequest{Fleet: "web", Desired: 2})
				if err != nil {
					t.Fatal(err)
				}
				if r.Decision.Actor != tc.want {
					t.Fatalf("actor = %q, want %q", r.Decision.Actor, tc.want)
				}
				// The committed decision carries it too, on the leader.
				ds, err := e.nodes[leader].FSM().Decisions("web", 1)
				if err != nil || len(ds) != 1 || ds[0].Actor != tc.want {
					t.Fatalf("leader's last decision = %v, %v", ds, err)
				}
			})
		}
		// Through the API without an authorizer the caller is unknown.
		r, err := e.clients[follower].ScaleFleet(ctx, &shoalv1.ScaleFleetRequest{Fleet: "web", Desired: 3})
		if err != nil || r.Decision.Actor != ActorInsecure {
			t.Fatalf("scale via the API = %v, %v", r, err)
		}
	})
}

// A follower that passes a read or a peer removal to the leader stamps the
// caller it verified on the call, and never forwards the caller's token.
func TestForwardStampsCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		leader, follower := e.leaderIndex(t)
		ln := e.nodes[leader].NodeID()
		// The caller's own call carried a token: it must not travel on.
		in := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer shoal_x"))
		ctx := authz.WithCaller(in, alice)
		s := e.servers[follower]
		if _, err := s.ListFleets(ctx, &shoalv1.ListFleetsRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := (&aclService{s: s}).ListTokens(ctx, &shoalv1.ListTokensRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err := s.RemovePeer(ctx, &shoalv1.RemovePeerRequest{Id: "ghost"})
		wantCode(t, err, codes.NotFound, "ghost")
		for _, m := range []string{"ListFleets", "ListTokens", "RemovePeer"} {
			got, ok := e.seen.find(ln, m)
			want := stamp{ln, got.method, alice.Identity.String(), "ops-alice", "operate", "1", ""}
			if !ok || got != want {
				t.Errorf("leader saw %s as %+v (found %v), want %+v", m, got, ok, want)
			}
		}

		// Without a verified caller (insecure) nothing is stamped.
		if _, err := s.ListFleets(context.Background(), &shoalv1.ListFleetsRequest{}); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.seen.find(ln, "ListFleets"); got.caller != "" || got.token != "" || got.forwarded != "1" {
			t.Fatalf("insecure forward stamped %+v", got)
		}
	})
}

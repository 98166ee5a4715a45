package authz

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

const (
	mCluster  = "/shoal.cluster.v1.ClusterService/ApplyCommand"
	mEnroll   = "/shoal.v1.AgentService/Enroll"
	mRenew    = "/shoal.v1.AgentService/RenewCertificate"
	mConnect  = "/shoal.v1.AgentService/Connect"
	mWatch    = "/shoal.v1.BackendService/WatchBackends"
	mRead     = "/shoal.v1.ControlService/ListFleets"
	mStatus   = "/shoal.v1.ControlService/GetStatus"
	mOperate  = "/shoal.v1.ControlService/ScaleFleet"
	mAdmin    = "/shoal.v1.ControlService/DeleteFleet"
	mACL      = "/shoal.v1.ACLService/CreateToken"
	mBoot     = "/shoal.v1.ACLService/BootstrapACL"
	mUnlisted = "/shoal.v1.ControlService/Unlisted"
)

type want struct {
	code   codes.Code
	reason string // counted when code != OK
	msg    string // in the status message, or in the handler's reply when OK
}

// check makes one call and checks its status, message and the one counter
// that must move (none when allowed).
func (e *tlsEnv) check(t *testing.T, ctx context.Context, role, method string, w want, opts ...grpc.CallOption) {
	t.Helper()
	before := map[string]float64{}
	for _, r := range Reasons {
		before[r] = e.count(r)
	}
	got, err := call(ctx, e.conns[role], method, opts...)
	s := status.Convert(err)
	if s.Code() != w.code {
		t.Fatalf("%s %s: %v, want %v", role, method, err, w.code)
	}
	text := got
	if w.code != codes.OK {
		text = s.Message()
		if strings.Contains(text, "\n") {
			t.Errorf("%s %s: message has more than one line: %q", role, method, text)
		}
	}
	if !strings.Contains(text, w.msg) {
		t.Errorf("%s %s: %q, want it to contain %q", role, method, text, w.msg)
	}
	for _, r := range Reasons {
		d := e.count(r) - before[r]
		if want := map[bool]float64{true: 1}[r == w.reason && w.code != codes.OK]; d != want {
			t.Errorf("%s %s: %s moved by %v, want %v", role, method, r, d, want)
		}
	}
}

func withToken(ctx context.Context, secret string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secret)
}

// TestRoles is every certificate role against every class of method. Each
// caller also sends an admin token, which must not stand in for a role.
func TestRoles(t *testing.T) {
	e := newTLSEnv(t, DefaultConfig())
	e.store.setBootstrapped(true)
	ctx := withToken(t.Context(), e.store.add(t, "root", acl.PolicyAdmin, e.clock.Now(), time.Time{}))
	ok := func(msg string) want { return want{codes.OK, "", msg} }
	noCert := want{codes.Unauthenticated, ReasonNoCertificate, "without a client certificate"}
	wrong := func(msg string) want { return want{codes.PermissionDenied, ReasonWrongRole, msg} }
	unlisted := wrong("no caller may call this method")
	const (
		srv = "id=spiffe://shoal/server/n2 token= policy= via="
		op  = "id=spiffe://shoal/operator/alice token=root policy=admin via="
		ag  = "id=spiffe://shoal/agent/i-1 token= policy= via="
		lb  = "id=spiffe://shoal/lb/lb1 token= policy= via="
	)
	tests := map[string]map[string]want{
		"none": {
			mCluster: noCert, mEnroll: ok("id= token= policy= via="), mRenew: noCert, mConnect: noCert, mWatch: noCert,
			mRead: noCert, mOperate: noCert, mAdmin: noCert, mACL: noCert, mUnlisted: unlisted,
		},
		"server": {
			mCluster: ok(srv), mEnroll: ok(srv), mRenew: ok(srv), mConnect: ok(srv), mWatch: ok(srv),
			mRead: ok(srv), mOperate: ok(srv), mAdmin: ok(srv), mACL: ok(srv), mUnlisted: unlisted,
		},
		"operator": {
			mCluster: wrong("ApplyCommand needs a server certificate; spiffe://shoal/operator/alice is an operator certificate"),
			mEnroll:  ok("id=spiffe://shoal/operator/alice token= "),
			mRenew:   wrong("RenewCertificate needs an agent certificate"),
			mConnect: wrong("Connect needs an agent certificate"),
			mWatch:   wrong("WatchBackends needs an lb certificate"),
			mRead:    ok(op), mOperate: ok(op), mAdmin: ok(op), mACL: ok(op), mUnlisted: unlisted,
		},
		"agent": {
			mCluster: wrong("needs a server certificate"), mEnroll: ok(ag), mRenew: ok(ag), mConnect: ok(ag),
			mWatch: wrong("needs an lb certificate"), mRead: wrong("ListFleets needs an operator certificate; spiffe://shoal/agent/i-1 is an agent certificate"),
			mOperate: wrong("needs an operator certificate"), mAdmin: wrong("needs an operator certificate"),
			mACL: wrong("needs an operator certificate"), mUnlisted: unlisted,
		},
		"lb": {
			mCluster: wrong("needs a server certificate"), mEnroll: ok(lb), mRenew: wrong("needs an agent certificate"),
			mConnect: wrong("needs an agent certificate"), mWatch: ok(lb), mRead: wrong("needs an operator certificate"),
			mOperate: wrong("needs an operator certificate"), mAdmin: wrong("needs an operator certificate"),
			mACL: wrong("needs an operator certificate"), mUnlisted: unlisted,
		},
	}
	for role, methods := range tests {
		for method, w := range methods {
			t.Run(role+method, func(t *testing.T) { e.check(t, ctx, role, method, w) })
		}
	}
}

// TestTokens is an operator certificate with every kind of token.
func TestTokens(t *testing.T) {
	e := newTLSEnv(t, DefaultConfig())
	e.store.setBootstrapped(true)
	now := e.clock.Now()
	read := e.store.add(t, "ci", acl.PolicyRead, now, time.Time{})
	operate := e.store.add(t, "ops", acl.PolicyOperate, now, time.Time{})
	admin := e.store.add(t, "root", acl.PolicyAdmin, now, time.Time{})
	old := e.store.add(t, "old", acl.PolicyAdmin, now.Add(-2*time.Hour), now.Add(-time.Hour))
	soon := e.store.add(t, "soon", acl.PolicyAdmin, now, now.Add(time.Second))
	unknown, _, _ := acl.Generate("x", acl.PolicyAdmin, 0)
	bg := t.Context()
	md := func(kv ...string) context.Context { return metadata.AppendToOutgoingContext(bg, kv...) }
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		method string
		w      want
	}{
		{"no token", bg, mOperate, want{codes.Unauthenticated, ReasonNoToken, "this command needs an operate token; SHOAL_TOKEN is not set"}},
		{"no token read", bg, mRead, want{codes.Unauthenticated, ReasonNoToken, "this command needs a read token; SHOAL_TOKEN is not set"}},
		{"no token admin", bg, mAdmin, want{codes.Unauthenticated, ReasonNoToken, "needs an admin token"}},
		{"bootstrap again", bg, mBoot, want{codes.Unauthenticated, ReasonNoToken, "ACLs are already bootstrapped"}},
		{"not bearer", md("authorization", "Basic "+admin), mRead, want{codes.Unauthenticated, ReasonBadToken, `must be "Bearer <token>"`}},
		{"malformed", withToken(bg, "nope"), mRead, want{codes.Unauthenticated, ReasonBadToken, "malformed token"}},
		{"huge", withToken(bg, strings.Repeat("x", 300)), mRead, want{codes.Unauthenticated, ReasonBadToken, "more than 256"}},
		{"twice", md("authorization", "Bearer "+admin, "authorization", "Bearer "+admin), mRead, want{codes.Unauthenticated, ReasonBadToken, "2 authorization values"}},
		{"unknown", withToken(bg, unknown), mRead, want{codes.Unauthenticated, ReasonBadToken, "not known to this cluster"}},
		{"expired", withToken(bg, old), mRead, want{codes.Unauthenticated, ReasonExpired, `token "old" expired at 2029-12-31T23:00:00Z`}},
		{"read reads", withToken(bg, read), mRead, want{codes.OK, "", "token=ci policy=read"}},
		{"read cannot scale", withToken(bg, read), mOperate, want{codes.PermissionDenied, ReasonInsufficientPolicy, `token "ci" has policy read; ScaleFleet needs operate`}},
		{"operate scales", withToken(bg, operate), mOperate, want{codes.OK, "", "token=ops policy=operate"}},
		{"operate reads", withToken(bg, operate), mStatus, want{codes.OK, "", "token=ops"}},
		{"operate cannot delete", withToken(bg, operate), mAdmin, want{codes.PermissionDenied, ReasonInsufficientPolicy, `token "ops" has policy operate; DeleteFleet needs admin`}},
		{"operate cannot make tokens", withToken(bg, operate), mACL, want{codes.PermissionDenied, ReasonInsufficientPolicy, "CreateToken needs admin"}},
		{"admin deletes", withToken(bg, admin), mAdmin, want{codes.OK, "", "token=root policy=admin"}},
		{"lower-case bearer", md("authorization", "bearer "+admin), mAdmin, want{codes.OK, "", "token=root"}},
		{"not yet expired", withToken(bg, soon), mAdmin, want{codes.OK, "", "token=soon"}},
	} {
		t.Run(tc.name, func(t *testing.T) { e.check(t, tc.ctx, "operator", tc.method, tc.w) })
	}
	// The clock decides: a second later, "soon" is expired.
	e.clock.mu.Lock()
	e.clock.t = e.clock.t.Add(time.Second)
	e.clock.mu.Unlock()
	e.check(t, withToken(bg, soon), "operator", mAdmin, want{codes.Unauthenticated, ReasonExpired, `token "soon" expired`})

	// The CLI's credentials, end to end over TLS.
	e.check(t, bg, "operator", mOperate, want{codes.OK, "", "token=ops"}, grpc.PerRPCCredentials(rpc.TokenCredentials{Secret: operate}))

	// Allowed operate and admin calls are logged with token and identity;
	// reads are not.
	logs := e.logs.String()
	for _, s := range []string{
		"method=/shoal.v1.ControlService/ScaleFleet token=ops identity=spiffe://shoal/operator/alice",
		"method=/shoal.v1.ControlService/DeleteFleet token=root identity=spiffe://shoal/operator/alice",
	} {
		if !strings.Contains(logs, s) {
			t.Errorf("log lacks %q:\n%s", s, logs)
		}
	}
	if strings.Contains(logs, "ListFleets") || strings.Contains(logs, "GetStatus") || strings.Contains(logs, "shoal_") {
		t.Errorf("log has a read call or a secret:\n%s", logs)
	}
}

func TestBeforeBootstrap(t *testing.T) {
	e := newTLSEnv(t, DefaultConfig())
	bg := t.Context()
	e.check(t, bg, "operator", mStatus, want{codes.OK, "", "id=spiffe://shoal/operator/alice token= "})
	e.check(t, bg, "operator", mBoot, want{codes.OK, "", "id=spiffe://shoal/operator/alice token= "})
	e.check(t, bg, "operator", mRead, want{codes.PermissionDenied, ReasonNoToken, "ListFleets: ACLs are not bootstrapped; run `shoal-coordinator acl bootstrap` first"})
	e.check(t, bg, "operator", mACL, want{codes.PermissionDenied, ReasonNoToken, "not bootstrapped"})
	// Still an operator's certificate is needed to bootstrap.
	e.check(t, bg, "agent", mBoot, want{codes.PermissionDenied, ReasonWrongRole, "BootstrapACL needs an operator certificate"})
	e.check(t, bg, "none", mBoot, want{codes.Unauthenticated, ReasonNoCertificate, "BootstrapACL needs an operator certificate"})
	// Once bootstrapped, BootstrapACL is an admin call like the others.
	e.store.setBootstrapped(true)
	e.check(t, bg, "operator", mStatus, want{codes.Unauthenticated, ReasonNoToken, "needs a read token"})
}

// TestCatchingUpIsRetryable: a node behind the log cannot say "not
// bootstrapped" or "unknown token" (a restarted follower said both before
// replaying its log, chaos harness); it answers Unavailable instead, and
// the definite refusal once caught up. Known tokens are honoured either way.
func TestCatchingUpIsRetryable(t *testing.T) {
	e := newTLSEnv(t, DefaultConfig())
	bg := t.Context()
	why := "it has applied 3 of 40 committed entries"
	e.behind.Store(&why)
	e.check(t, bg, "operator", mRead, want{codes.Unavailable, ReasonCatchingUp, "ListFleets: this node is catching up with the cluster's log (it has applied 3 of 40 committed entries); retry"})
	e.store.setBootstrapped(true)
	unknown, _, _ := acl.Generate("x", acl.PolicyAdmin, 0)
	e.check(t, withToken(bg, unknown), "operator", mRead, want{codes.Unavailable, ReasonCatchingUp, "catching up"})
	ops := e.store.add(t, "ops", acl.PolicyOperate, e.clock.Now(), time.Time{})
	e.check(t, withToken(bg, ops), "operator", mOperate, want{codes.OK, "", "token=ops"})
	e.behind.Store(nil)
	e.check(t, withToken(bg, unknown), "operator", mRead, want{codes.Unauthenticated, ReasonBadToken, "not known to this cluster"})
}

// TestForwarding: a server's stamp names the caller; anyone else's is
// ignored.
func TestForwarding(t *testing.T) {
	e := newTLSEnv(t, DefaultConfig())
	e.store.setBootstrapped(true)
	ci := e.store.add(t, "ci", acl.PolicyRead, e.clock.Now(), time.Time{})
	bg := t.Context()
	forged := func(ctx context.Context) context.Context {
		return metadata.AppendToOutgoingContext(ctx, CallerKey, "spiffe://shoal/operator/root", TokenNameKey, "root", TokenPolicyKey, "admin")
	}
	// From an operator: ignored, and it buys no policy.
	e.check(t, forged(withToken(bg, ci)), "operator", mRead, want{codes.OK, "", "id=spiffe://shoal/operator/alice token=ci policy=read via="})
	e.check(t, forged(withToken(bg, ci)), "operator", mAdmin, want{codes.PermissionDenied, ReasonInsufficientPolicy, `token "ci" has policy read`})
	e.check(t, forged(bg), "operator", mRead, want{codes.Unauthenticated, ReasonNoToken, "SHOAL_TOKEN is not set"})
	// From an agent: it stays itself.
	agentStamp := metadata.AppendToOutgoingContext(bg, CallerKey, "spiffe://shoal/agent/i-2")
	e.check(t, agentStamp, "agent", mConnect, want{codes.OK, "", "id=spiffe://shoal/agent/i-1 token= policy= via="})
	e.check(t, forged(bg), "lb", mAdmin, want{codes.PermissionDenied, ReasonWrongRole, "needs an operator certificate"})

	// From a server, ForwardContext's stamp is believed, with the server
	// as Via.
	in := WithCaller(bg, Caller{Identity: tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleOperator, Name: "bob"}, TokenName: "ops-bob", Policy: acl.PolicyOperate})
	e.check(t, ForwardContext(in), "server", mOperate, want{codes.OK, "", "id=spiffe://shoal/operator/bob token=ops-bob policy=operate via=spiffe://shoal/server/n2"})
	agentIn := WithCaller(bg, Caller{Identity: tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleAgent, Name: "i-7"}})
	e.check(t, ForwardContext(agentIn), "server", mConnect, want{codes.OK, "", "id=spiffe://shoal/agent/i-7 token= policy= via=spiffe://shoal/server/n2"})
	logs := e.logs.String()
	if !strings.Contains(logs, "token=ops-bob identity=spiffe://shoal/operator/bob via=spiffe://shoal/server/n2") {
		t.Errorf("forwarded ScaleFleet not logged with its caller:\n%s", logs)
	}
	// A malformed stamp, even from a server, is refused.
	for name, kv := range map[string][]string{
		"other cluster":   {CallerKey, "spiffe://other/operator/x"},
		"not spiffe":      {CallerKey, "https://shoal/operator/x"},
		"name, no caller": {TokenNameKey, "ci", TokenPolicyKey, "read"},
		"name, no policy": {CallerKey, "spiffe://shoal/operator/x", TokenNameKey, "ci"},
		"bad policy":      {CallerKey, "spiffe://shoal/operator/x", TokenNameKey, "ci", TokenPolicyKey, "root"},
		"twice":           {CallerKey, "spiffe://shoal/operator/x", CallerKey, "spiffe://shoal/operator/y"},
	} {
		t.Run(name, func(t *testing.T) {
			e.check(t, metadata.AppendToOutgoingContext(bg, kv...), "server", mRead, want{codes.Unauthenticated, ReasonNoCertificate, "forwarded caller"})
		})
	}
}

func TestForwardContext(t *testing.T) {
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer shoal_x", CallerKey, "spiffe://shoal/operator/evil", "x-request-id", "7")
	ctx = WithCaller(ctx, Caller{Identity: tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleOperator, Name: "alice"}, TokenName: "ci", Policy: acl.PolicyRead})
	md, _ := metadata.FromOutgoingContext(ForwardContext(ctx))
	if len(md.Get("authorization")) != 0 || md.Get(CallerKey)[0] != "spiffe://shoal/operator/alice" || len(md.Get(CallerKey)) != 1 ||
		md.Get(TokenNameKey)[0] != "ci" || md.Get(TokenPolicyKey)[0] != "read" || md.Get("x-request-id")[0] != "7" {
		t.Fatalf("forwarded metadata = %v", md)
	}
	// Without a caller (insecure), stamps and the secret are only dropped.
	plain := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer shoal_x", CallerKey, "spiffe://shoal/operator/evil")
	md, _ = metadata.FromOutgoingContext(ForwardContext(plain))
	if len(md) != 0 {
		t.Fatalf("forwarded metadata without a caller = %v", md)
	}
	if got := (Caller{Identity: tlsconf.Identity{Name: "n1"}}).Actor(); got != "n1" {
		t.Fatalf("Actor = %q", got)
	}
	if got := (Caller{Identity: tlsconf.Identity{Name: "alice"}, TokenName: "ops-alice"}).Actor(); got != "ops-alice" {
		t.Fatalf("Actor = %q", got)
	}
}

// TestInsecure: with --insecure nothing is checked, over plaintext.
func TestInsecure(t *testing.T) {
	denied := NewDeniedCounter()
	a, err := New(Config{Insecure: true}, Deps{Denied: denied, Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{mCluster, mOperate, mACL, mConnect, mUnlisted} {
		ctx, err := a.Authorize(t.Context(), m)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if _, ok := CallerFrom(ctx); ok {
			t.Fatalf("%s: a caller in insecure mode", m)
		}
	}
	// And a secure authorizer refuses the same plaintext calls.
	s, err := New(DefaultConfig(), Deps{Tokens: &fakeStore{}, Denied: denied, Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authorize(t.Context(), mOperate); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("secure, no TLS: %v", err)
	}
}

func TestNew(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for name, tc := range map[string]struct {
		cfg Config
		d   Deps
		msg string
	}{
		"no counter": {DefaultConfig(), Deps{Tokens: &fakeStore{}, Logger: log, Now: time.Now}, "Denied"},
		"wrong labels": {DefaultConfig(), Deps{Tokens: &fakeStore{}, Logger: log, Now: time.Now,
			Denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"code"})}, "Denied"},
		"no tokens": {DefaultConfig(), Deps{Denied: NewDeniedCounter(), Logger: log, Now: time.Now}, "Tokens"},
		"no clock":  {DefaultConfig(), Deps{Tokens: &fakeStore{}, Denied: NewDeniedCounter(), Logger: log}, "Now"},
		"no logger": {DefaultConfig(), Deps{Tokens: &fakeStore{}, Denied: NewDeniedCounter(), Now: time.Now}, "Logger"},
	} {
		if _, err := New(tc.cfg, tc.d); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: New = %v, want %q", name, err, tc.msg)
		}
	}
}

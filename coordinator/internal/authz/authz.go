package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// TokenStore resolves tokens; the FSM is one.
type TokenStore interface {
	// TokenBySecretHash returns the token whose secret hashes (acl.HashSecret)
	// to hash.
	TokenBySecretHash(hash string) (acl.Token, bool)
	// ACLBootstrapped reports whether acl bootstrap has run.
	ACLBootstrapped() bool
}

var _ TokenStore = (*fsm.FSM)(nil)

// Config is the authorizer's configuration.
type Config struct {
	// Insecure turns every check off (serve --insecure): no certificate,
	// role or token is asked for, and no Caller is put in the context.
	Insecure bool
}

// DefaultConfig checks every call.
func DefaultConfig() Config { return Config{} }

// Validate checks the fields; every value of Insecure is valid.
func (c Config) Validate() error { return nil }

// Deps are what the authorizer reads and reports to.
type Deps struct {
	// Tokens resolves operators' tokens; required unless Insecure.
	Tokens TokenStore
	// Denied counts refusals by reason; it needs the one label "reason"
	// (NewDeniedCounter makes it).
	Denied *prometheus.CounterVec
	// Logger gets one info line per allowed operate or admin call.
	Logger *slog.Logger
	// Now is the clock for token expiry.
	Now func() time.Time
	// CaughtUp, when set, is asked before a refusal that rests on the
	// node's own state (ACLs not bootstrapped, an unknown token): a node
	// still catching up with the log answers Unavailable, which clients
	// retry, instead of a definite refusal that may be false.
	CaughtUp func() (bool, string)
}

// DeniedMetric is the name of the refusal counter.
const DeniedMetric = "shoal_auth_denied_total"

// NewDeniedCounter makes the shoal_auth_denied_total{reason} counter; the
// caller registers it. Enrollment counts its own reasons in the same one.
func NewDeniedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: DeniedMetric,
		Help: "Calls and enrollments refused, by reason.",
	}, []string{"reason"})
}

// The reasons the authorizer counts.
const (
	ReasonNoCertificate      = "no_certificate"
	ReasonWrongRole          = "wrong_role"
	ReasonNoToken            = "no_token"
	ReasonBadToken           = "bad_token"
	ReasonExpired            = "expired"
	ReasonInsufficientPolicy = "insufficient_policy"
	// ReasonCatchingUp is a retryable refusal: the node's own state is
	// behind the log, so it cannot say no yet.
	ReasonCatchingUp = "catching_up"
)

// Reasons lists the authorizer's reasons.
var Reasons = []string{ReasonNoCertificate, ReasonWrongRole, ReasonNoToken, ReasonBadToken, ReasonExpired, ReasonInsufficientPolicy, ReasonCatchingUp}

// Authorizer checks each call; its interceptors go on every gRPC server.
type Authorizer struct {
	cfg    Config
	tokens TokenStore
	denied *prometheus.CounterVec
	log    *slog.Logger
	now    func() time.Time
	// caughtUp is Deps.CaughtUp; nil means always caught up.
	caughtUp func() (bool, string)
}

// New returns an authorizer, or an error naming the missing dependency.
func New(cfg Config, d Deps) (*Authorizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case d.Denied == nil:
		return nil, errors.New("authz: Denied counter: required")
	case d.Logger == nil:
		return nil, errors.New("authz: Logger: required")
	case d.Now == nil:
		return nil, errors.New("authz: Now: required")
	case d.Tokens == nil && !cfg.Insecure:
		return nil, errors.New("authz: Tokens: required unless insecure")
	}
	for _, r := range Reasons {
		// Creates each series at 0, so a dashboard sees them before the
		// first refusal; fails when the counter has other labels.
		if _, err := d.Denied.GetMetricWith(prometheus.Labels{"reason": r}); err != nil {
			return nil, fmt.Errorf("authz: Denied counter: %w", err)
		}
	}
	return &Authorizer{cfg: cfg, tokens: d.Tokens, denied: d.Denied, log: d.Logger, now: d.Now, caughtUp: d.CaughtUp}, nil
}

// ServerOptions are the interceptors as server options for rpc.NewServer.
func (a *Authorizer) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(a.UnaryInterceptor()), grpc.ChainStreamInterceptor(a.StreamInterceptor())}
}

// UnaryInterceptor authorizes unary calls.
func (a *Authorizer) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx, err := a.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// StreamInterceptor authorizes streams when they open.
func (a *Authorizer) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		ctx, err := a.Authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return h(srv, &stream{ServerStream: ss, ctx: ctx})
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

// class is what kind of caller a method is for.
type class int

const (
	classUnknown class = iota
	classCluster       // servers only
	classEnroll        // anyone, certificate or not
	classAgent
	classLB
	classToken // operators with a token
)

const (
	clusterPrefix = "/shoal.cluster.v1.ClusterService/"
	agentService  = "shoal.v1.AgentService"
)

func classify(method string) (class, acl.Policy) {
	if l, ok := acl.Level(method); ok {
		return classToken, l
	}
	switch method {
	case acl.FullMethod(agentService, "Enroll"):
		return classEnroll, ""
	case acl.FullMethod(agentService, "Connect"), acl.FullMethod(agentService, "RenewCertificate"):
		return classAgent, ""
	case "/shoal.v1.BackendService/WatchBackends":
		return classLB, ""
	}
	if rest, ok := strings.CutPrefix(method, clusterPrefix); ok && rest != "" && !strings.Contains(rest, "/") {
		return classCluster, ""
	}
	return classUnknown, ""
}

// refusal is a denied call: its status and the reason it is counted under.
type refusal struct {
	reason string
	code   codes.Code
	msg    string
}

func (a *Authorizer) deny(r refusal) error {
	a.denied.WithLabelValues(r.reason).Inc()
	return status.Error(r.code, r.msg)
}

// Authorize decides one call of fullMethod. It returns ctx carrying the
// verified Caller, or a status error: Unauthenticated when a credential is
// missing or not valid, PermissionDenied when the caller is known but may
// not make the call; each with one line saying what is missing.
func (a *Authorizer) Authorize(ctx context.Context, fullMethod string) (context.Context, error) {
	if a.cfg.Insecure {
		return ctx, nil
	}
	c, level, r := a.decide(ctx, fullMethod)
	if r != nil {
		return nil, a.deny(*r)
	}
	if level == acl.PolicyOperate || level == acl.PolicyAdmin {
		a.log.Info("authorized", "method", fullMethod, "token", c.TokenName, "identity", idString(c.Identity), "via", idString(c.Via))
	}
	return WithCaller(ctx, c), nil
}

func idString(id tlsconf.Identity) string {
	if id == (tlsconf.Identity{}) {
		return ""
	}
	return id.String()
}

func (a *Authorizer) decide(ctx context.Context, method string) (Caller, acl.Policy, *refusal) {
	cls, level := classify(method)
	short := method[strings.LastIndexByte(method, '/')+1:]
	id, hasCert, err := tlsconf.PeerIdentity(ctx)
	if err != nil {
		return Caller{}, level, &refusal{ReasonNoCertificate, codes.Unauthenticated, fmt.Sprintf("%s: client certificate refused: %v", short, err)}
	}
	if cls == classUnknown {
		return Caller{}, level, &refusal{ReasonWrongRole, codes.PermissionDenied, fmt.Sprintf("%s: no caller may call this method", method)}
	}
	if hasCert && id.Role == tlsconf.RoleServer {
		return a.fromServer(ctx, id, level)
	}
	need := map[class]tlsconf.Role{classCluster: tlsconf.RoleServer, classAgent: tlsconf.RoleAgent, classLB: tlsconf.RoleLB, classToken: tlsconf.RoleOperator}[cls]
	switch {
	case cls == classEnroll:
		return Caller{Identity: id}, level, nil
	case !hasCert:
		return Caller{}, level, &refusal{ReasonNoCertificate, codes.Unauthenticated, fmt.Sprintf("%s needs %s certificate; the call came without a client certificate", short, article(string(need)))}
	case id.Role != need:
		return Caller{}, level, &refusal{ReasonWrongRole, codes.PermissionDenied, fmt.Sprintf("%s needs %s certificate; %s is %s certificate", short, article(string(need)), id, article(string(id.Role)))}
	case cls != classToken:
		return Caller{Identity: id}, level, nil
	}
	return a.checkToken(ctx, id, method, short, level)
}

// fromServer trusts a server certificate for any known method, and its
// stamp of whom it forwards for.
func (a *Authorizer) fromServer(ctx context.Context, id tlsconf.Identity, level acl.Policy) (Caller, acl.Policy, *refusal) {
	md, _ := metadata.FromIncomingContext(ctx)
	c, ok, err := forwarded(md, id.Cluster)
	switch {
	case err != nil:
		return Caller{}, level, &refusal{ReasonNoCertificate, codes.Unauthenticated, fmt.Sprintf("%s: %v", id, err)}
	case !ok:
		return Caller{Identity: id}, level, nil
	}
	c.Via = id
	return c, level, nil
}

func (a *Authorizer) checkToken(ctx context.Context, id tlsconf.Identity, method, short string, level acl.Policy) (Caller, acl.Policy, *refusal) {
	bootstrapped := a.tokens.ACLBootstrapped()
	if !bootstrapped {
		if method == acl.FullMethod(acl.ACLService, "BootstrapACL") || method == acl.FullMethod(acl.ControlService, "GetStatus") {
			return Caller{Identity: id}, level, nil
		}
		if r := a.catchingUp(short); r != nil {
			return Caller{}, level, r
		}
		return Caller{}, level, &refusal{ReasonNoToken, codes.PermissionDenied, fmt.Sprintf("%s: ACLs are not bootstrapped; run `shoal-coordinator acl bootstrap` first", short)}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(rpc.AuthorizationKey)
	if len(vals) == 0 {
		msg := fmt.Sprintf("this command needs %s token; SHOAL_TOKEN is not set", article(string(level)))
		if method == acl.FullMethod(acl.ACLService, "BootstrapACL") {
			msg = "ACLs are already bootstrapped; " + msg
		}
		return Caller{}, level, &refusal{ReasonNoToken, codes.Unauthenticated, msg}
	}
	secret, err := bearer(vals)
	if err != nil {
		return Caller{}, level, &refusal{ReasonBadToken, codes.Unauthenticated, err.Error()}
	}
	t, ok := a.tokens.TokenBySecretHash(acl.HashSecret(secret))
	switch {
	case !ok:
		if r := a.catchingUp(short); r != nil {
			return Caller{}, level, r
		}
		return Caller{}, level, &refusal{ReasonBadToken, codes.Unauthenticated, "the token is not known to this cluster (deleted, or of another cluster)"}
	case t.Expired(a.now()):
		return Caller{}, level, &refusal{ReasonExpired, codes.Unauthenticated, fmt.Sprintf("token %q expired at %s", t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))}
	case !t.Policy.Covers(level):
		return Caller{}, level, &refusal{ReasonInsufficientPolicy, codes.PermissionDenied, fmt.Sprintf("token %q has policy %s; %s needs %s", t.Name, t.Policy, short, level)}
	}
	return Caller{Identity: id, TokenName: t.Name, Policy: t.Policy}, level, nil
}

// catchingUp is the Unavailable answer of a node whose state is behind the
// cluster's, or nil when it is caught up.
func (a *Authorizer) catchingUp(short string) *refusal {
	if a.caughtUp == nil {
		return nil
	}
	if ok, why := a.caughtUp(); !ok {
		return &refusal{ReasonCatchingUp, codes.Unavailable, fmt.Sprintf("%s: this node is catching up with the cluster's log (%s); retry, or ask another node", short, why)}
	}
	return nil
}

// maxAuthorization bounds the header read; a secret is far shorter.
const maxAuthorization = 256

// bearer reads the secret of one "Bearer <secret>" value.
func bearer(vals []string) (string, error) {
	if len(vals) > 1 {
		return "", fmt.Errorf("malformed token: %d authorization values, want 1", len(vals))
	}
	v := vals[0]
	if len(v) > maxAuthorization {
		return "", fmt.Errorf("malformed token: authorization is %d bytes, more than %d", len(v), maxAuthorization)
	}
	if len(v) < len(rpc.BearerPrefix) || !strings.EqualFold(v[:len(rpc.BearerPrefix)], rpc.BearerPrefix) {
		return "", errors.New("malformed token: authorization must be \"Bearer <token>\"")
	}
	secret := v[len(rpc.BearerPrefix):]
	if err := acl.CheckSecret(secret); err != nil {
		return "", err // "malformed token: ..."
	}
	return secret, nil
}

// article is "a read", "an operate", "an admin", "an agent", "an lb"...
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) || word == "lb" {
		return "an " + word
	}
	return "a " + word
}

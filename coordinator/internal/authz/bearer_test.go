package authz

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// TestAuthorizeBearer: the console's header token follows the gRPC token
// rules (policy levels, refusal counters, log lines naming the token and
// never its secret), and only for operator methods.
func TestAuthorizeBearer(t *testing.T) {
	store := &fakeStore{byHash: map[string]acl.Token{}, bootstrapped: true}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	read := store.add(t, "viewer", acl.PolicyRead, now, time.Time{})
	operate := store.add(t, "oncall", acl.PolicyOperate, now, time.Time{})
	logs := &syncBuffer{}
	denied := NewDeniedCounter()
	a, err := New(DefaultConfig(), Deps{Tokens: store, Denied: denied, Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	via := tlsconf.Identity{Cluster: "shoal", Role: tlsconf.RoleServer, Name: "n1"}
	for _, tc := range []struct {
		name, method, auth string
		code               codes.Code
		reason, caller     string
	}{
		{"no token", mRead, "", codes.Unauthenticated, ReasonNoToken, ""},
		{"read reads", mRead, "Bearer " + read, codes.OK, "", "viewer"},
		{"read cannot scale", mOperate, "Bearer " + read, codes.PermissionDenied, ReasonInsufficientPolicy, ""},
		{"operate scales", mOperate, "Bearer " + operate, codes.OK, "", "oncall"},
		{"not a token method", "/shoal.v1.AgentService/Enroll", "Bearer " + operate, codes.PermissionDenied, ReasonWrongRole, ""},
		{"cluster method", "/shoal.cluster.v1.ClusterService/ApplyCommand", "Bearer " + operate, codes.PermissionDenied, ReasonWrongRole, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := 0.0
			if tc.reason != "" {
				before = testutil.ToFloat64(denied.WithLabelValues(tc.reason))
			}
			ctx, err := a.AuthorizeBearer(t.Context(), via, tc.method, tc.auth)
			if status.Code(err) != tc.code {
				t.Fatalf("%v; want %v", err, tc.code)
			}
			if tc.reason != "" {
				if got := testutil.ToFloat64(denied.WithLabelValues(tc.reason)) - before; got != 1 {
					t.Errorf("refusals counted under %s: %v, want 1", tc.reason, got)
				}
				return
			}
			c, ok := CallerFrom(ctx)
			if !ok || c.TokenName != tc.caller || c.Identity != via {
				t.Errorf("caller %+v (%v); want token %s via %s", c, ok, tc.caller, via)
			}
		})
	}
	l := logs.String()
	if !strings.Contains(l, "token=oncall") || !strings.Contains(l, "via=console") {
		t.Errorf("an allowed write is not logged as the console's, with its token name:\n%s", l)
	}
	if strings.Contains(l, read) || strings.Contains(l, operate) {
		t.Errorf("a secret is in the log:\n%s", l)
	}

	insecure, err := New(Config{Insecure: true}, Deps{Tokens: store, Denied: NewDeniedCounter(), Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := insecure.AuthorizeBearer(t.Context(), tlsconf.Identity{}, mOperate, ""); err != nil {
		t.Errorf("--insecure: %v, want every call allowed", err)
	}
}

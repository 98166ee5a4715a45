package acl

import (
	"strings"
	"testing"
	"time"
)

func TestCovers(t *testing.T) {
	tests := []struct {
		have, need Policy
		want       bool
	}{
		{PolicyRead, PolicyRead, true},
		{PolicyRead, PolicyOperate, false},
		{PolicyRead, PolicyAdmin, false},
		{PolicyOperate, PolicyRead, true},
		{PolicyOperate, PolicyOperate, true},
		{PolicyOperate, PolicyAdmin, false},
		{PolicyAdmin, PolicyRead, true},
		{PolicyAdmin, PolicyOperate, true},
		{PolicyAdmin, PolicyAdmin, true},
		{"", PolicyRead, false},
		{"root", PolicyRead, false},
		{PolicyAdmin, "", false},
		{PolicyAdmin, "root", false},
	}
	for _, tt := range tests {
		if got := tt.have.Covers(tt.need); got != tt.want {
			t.Errorf("%q.Covers(%q) = %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	for _, p := range Policies {
		if got, err := ParsePolicy(string(p)); err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %q, %v", p, got, err)
		}
	}
	if _, err := ParsePolicy("Admin"); err == nil || !strings.Contains(err.Error(), "read, operate, admin") {
		t.Errorf("ParsePolicy(Admin) = %v, want an error listing the policies", err)
	}
}

// TestLevel pins the table of api.md: every RPC of each service, and that
// anything else (other services, cluster RPCs, near misses) has no level.
func TestLevel(t *testing.T) {
	want := map[string]Policy{}
	for _, m := range []string{"GetStatus", "ListPeers", "GetFleet", "ListFleets", "ListInstances", "GetPolicy", "ListDecisions", "ExplainFleet", "ListAlarms", "ListLoadBalancers"} {
		want["/shoal.v1.ControlService/"+m] = PolicyRead
	}
	for _, m := range []string{"ScaleFleet", "PauseFleet", "ResumeFleet", "SetPolicy", "UpdateFleet"} {
		want["/shoal.v1.ControlService/"+m] = PolicyOperate
	}
	for _, m := range []string{"CreateFleet", "DeleteFleet", "SaveSnapshot", "RestoreSnapshot", "RemovePeer", "ResetInstanceIdentity"} {
		want["/shoal.v1.ControlService/"+m] = PolicyAdmin
	}
	for _, m := range []string{"BootstrapACL", "CreateToken", "ListTokens", "DeleteToken"} {
		want["/shoal.v1.ACLService/"+m] = PolicyAdmin
	}
	got := Methods()
	if len(got) != len(want) || len(got) != 25 {
		t.Fatalf("%d methods in the table, want %d (25)", len(got), len(want))
	}
	for m, p := range want {
		if l, ok := Level(m); !ok || l != p {
			t.Errorf("Level(%s) = %q, %v; want %q", m, l, ok, p)
		}
	}
	for _, m := range []string{
		"/shoal.v1.ControlService/JoinCluster", "/shoal.v1.ControlService/ApplyCommand",
		"/shoal.cluster.v1.ClusterService/ApplyCommand", "/shoal.v1.AgentService/Connect",
		"/shoal.v1.BackendService/WatchBackends", "/shoal.v1.ControlService/scalefleet",
		"/shoal.v1.ControlService/ScaleFleet/", "shoal.v1.ControlService/ScaleFleet", "",
		"/shoal.v2.ControlService/ScaleFleet", "/grpc.health.v1.Health/Check",
	} {
		if l, ok := Level(m); ok {
			t.Errorf("Level(%q) = %q, want no level", m, l)
		}
	}
}

func TestGenerate(t *testing.T) {
	s1, spec1, err := Generate("ci", PolicyOperate, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s2, spec2, err := Generate("ci", PolicyOperate, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s1 == s2 || spec1.AccessorID == spec2.AccessorID || spec1.SecretHash == spec2.SecretHash {
		t.Fatal("two tokens share a secret, accessor id or hash")
	}
	if !strings.HasPrefix(s1, "shoal_") || len(s1) != SecretLen || SecretLen != 6+43 {
		t.Fatalf("secret %q (len %d), want shoal_ and 43 characters", s1, len(s1))
	}
	if err := CheckSecret(s1); err != nil {
		t.Fatal(err)
	}
	if spec1.SecretHash != HashSecret(s1) || strings.Contains(spec1.SecretHash, s1[6:]) {
		t.Fatal("spec does not hold the secret's hash, or holds the secret")
	}
	if spec1.Name != "ci" || spec1.Policy != PolicyOperate || spec1.TTL != time.Hour {
		t.Fatalf("spec = %+v", spec1)
	}
	// The known SHA-256 of "abc" keeps HashSecret honest.
	if got := HashSecret("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashSecret(abc) = %s", got)
	}
	for _, bad := range []struct {
		name   string
		policy Policy
		ttl    time.Duration
		msg    string
	}{
		{"", PolicyRead, 0, "name: required"},
		{"a b", PolicyRead, 0, "not allowed"},
		{strings.Repeat("a", 65), PolicyRead, 0, "longer than 64"},
		{"-x", PolicyRead, 0, "must not start"},
		{"ci", "root", 0, "policy"},
		{"ci", PolicyRead, -time.Second, "ttl"},
		{"ci", PolicyRead, MaxTTL + time.Second, "ttl"},
		{"ci", PolicyRead, time.Millisecond, "shorter than"},
	} {
		if _, _, err := Generate(bad.name, bad.policy, bad.ttl); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("Generate(%q, %q, %s) = %v, want %q", bad.name, bad.policy, bad.ttl, err, bad.msg)
		}
	}
}

func TestCheckSecret(t *testing.T) {
	good, _, _ := Generate("x", PolicyRead, 0)
	for _, tt := range []struct{ secret, msg string }{
		{"", "does not start"},
		{"Bearer " + good, "does not start"},
		{"shoal_", "characters"},
		{good + "A", "characters"},
		{good[:len(good)-1] + "!", "base64url"},
		{good[:len(good)-1] + "=", "base64url"},
	} {
		if err := CheckSecret(tt.secret); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("CheckSecret(%q) = %v, want %q", tt.secret, err, tt.msg)
		}
	}
}

func TestTokenValidateAndExpired(t *testing.T) {
	_, spec, _ := Generate("ci", PolicyRead, 0)
	at := time.UnixMilli(1_700_000_000_000).UTC()
	ok := Token{AccessorID: spec.AccessorID, Name: "ci", Policy: PolicyRead, SecretHash: spec.SecretHash, CreatedAt: at}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if ok.Expired(at.Add(100 * 365 * 24 * time.Hour)) {
		t.Fatal("a token without expiry expired")
	}
	exp := ok
	exp.ExpiresAt = at.Add(time.Hour)
	if exp.Expired(at.Add(time.Hour-time.Millisecond)) || !exp.Expired(at.Add(time.Hour)) {
		t.Fatal("expiry is not at ExpiresAt")
	}
	for _, tt := range []struct {
		mut func(*Token)
		msg string
	}{
		{func(t *Token) { t.AccessorID = "XYZ" }, "accessor_id"},
		{func(t *Token) { t.AccessorID = strings.Repeat("A", AccessorIDLen) }, "accessor_id"},
		{func(t *Token) { t.SecretHash = t.SecretHash[:10] }, "secret_hash"},
		{func(t *Token) { t.Policy = "" }, "policy"},
		{func(t *Token) { t.Name = "" }, "name"},
		{func(t *Token) { t.CreatedAt = time.Time{} }, "created_at"},
		{func(t *Token) { t.ExpiresAt = t.CreatedAt }, "expires_at"},
		{func(t *Token) { t.ExpiresAt = t.CreatedAt.Add(MaxTTL + time.Hour) }, "expires_at"},
	} {
		tok := ok
		tt.mut(&tok)
		if err := tok.Validate(); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Validate(%+v) = %v, want %q", tok, err, tt.msg)
		}
	}
}

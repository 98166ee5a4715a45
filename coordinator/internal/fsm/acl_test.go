package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
)

// spec is a token spec with fixed, valid ids derived from name.
func tokenSpec(name string, p acl.Policy, ttl time.Duration) acl.Spec {
	return acl.Spec{
		AccessorID: fmt.Sprintf("%032x", len(name)*1_000_003+int(name[0])),
		Name:       name, Policy: p, TTL: ttl,
		SecretHash: acl.HashSecret("secret-of-" + name),
	}
}

func applyTokenAt(t *testing.T, f *FSM, c Command, at time.Time) *Result {
	t.Helper()
	b, err := Stamp(c.Encode(), at)
	if err != nil {
		t.Fatal(err)
	}
	return f.ApplyBytes(f.LastApplied()+1, b)
}

func withACL(t *testing.T) *FSM {
	f := New()
	mustApply(t, f, ACLBootstrap(tokenSpec("bootstrap", acl.PolicyAdmin, 0)))
	return f
}

func TestACLBootstrapOnce(t *testing.T) {
	f := New()
	if f.ACLBootstrapped() {
		t.Fatal("a new FSM is bootstrapped")
	}
	if r := apply(t, f, TokenCreate(tokenSpec("ci", acl.PolicyRead, 0))); !errors.Is(r.Error(), ErrConflict) || !strings.Contains(r.Error().Error(), "not bootstrapped") {
		t.Fatalf("token_create before bootstrap = %v", r.Error())
	}
	if r := apply(t, f, ACLBootstrap(tokenSpec("boot", acl.PolicyRead, 0))); !errors.Is(r.Error(), ErrInvalid) || !strings.Contains(r.Error().Error(), "must be admin") {
		t.Fatalf("bootstrap with a read token = %v", r.Error())
	}
	mustApply(t, f, ACLBootstrap(tokenSpec("bootstrap", acl.PolicyAdmin, 0)))
	if !f.ACLBootstrapped() {
		t.Fatal("not bootstrapped after acl_bootstrap")
	}
	r := apply(t, f, ACLBootstrap(tokenSpec("again", acl.PolicyAdmin, 0)))
	if !errors.Is(r.Error(), ErrConflict) || r.Error().Error() != "ACLs are already bootstrapped" {
		t.Fatalf("second bootstrap = %v", r.Error())
	}
	// Still once after the bootstrap token is gone.
	mustApply(t, f, TokenCreate(tokenSpec("admin2", acl.PolicyAdmin, 0)))
	mustApply(t, f, TokenDelete(tokenSpec("bootstrap", "", 0).AccessorID))
	if r := apply(t, f, ACLBootstrap(tokenSpec("again", acl.PolicyAdmin, 0))); r.Error() == nil {
		t.Fatal("bootstrap accepted after the bootstrap token was deleted")
	}
	if ts := f.Tokens(); len(ts) != 1 || ts[0].Name != "admin2" {
		t.Fatalf("tokens = %+v", ts)
	}
}

func TestTokenCreateStampsTimes(t *testing.T) {
	f := New()
	at := time.UnixMilli(1_700_000_000_000)
	if r := applyTokenAt(t, f, ACLBootstrap(tokenSpec("bootstrap", acl.PolicyAdmin, 0)), at); r.Error() != nil {
		t.Fatal(r.Error())
	}
	s := tokenSpec("ci", acl.PolicyOperate, 2*time.Hour)
	if r := applyTokenAt(t, f, TokenCreate(s), at.Add(time.Minute)); r.Error() != nil {
		t.Fatal(r.Error())
	}
	got, ok := f.TokenBySecretHash(acl.HashSecret("secret-of-ci"))
	want := acl.Token{AccessorID: s.AccessorID, Name: "ci", Policy: acl.PolicyOperate, SecretHash: s.SecretHash,
		CreatedAt: at.Add(time.Minute).UTC(), ExpiresAt: at.Add(time.Minute + 2*time.Hour).UTC()}
	if !ok || got != want {
		t.Fatalf("TokenBySecretHash = %+v, %v; want %+v", got, ok, want)
	}
	if byID, ok := f.Token(s.AccessorID); !ok || byID != want {
		t.Fatalf("Token(id) = %+v, %v", byID, ok)
	}
	boot, _ := f.Token(tokenSpec("bootstrap", "", 0).AccessorID)
	if !boot.ExpiresAt.IsZero() || !boot.CreatedAt.Equal(at) {
		t.Fatalf("bootstrap token times = %v, %v", boot.CreatedAt, boot.ExpiresAt)
	}
	if _, ok := f.TokenBySecretHash(acl.HashSecret("secret-of-nobody")); ok {
		t.Fatal("found a token for an unknown hash")
	}
	// Unstamped, the command has no time to give the token: refused.
	raw := TokenCreate(tokenSpec("late", acl.PolicyRead, 0)).Encode()
	if r := f.ApplyBytes(f.LastApplied()+1, raw); !errors.Is(r.Error(), ErrInvalid) || !strings.Contains(r.Error().Error(), "at_ms") {
		t.Fatalf("unstamped token_create = %v", r.Error())
	}
}

func TestTokenCreateErrors(t *testing.T) {
	long := tokenSpec("x", acl.PolicyRead, 0)
	long.Name = strings.Repeat("n", acl.MaxNameLen+1)
	dupID := tokenSpec("other", acl.PolicyRead, 0)
	dupID.AccessorID = tokenSpec("bootstrap", "", 0).AccessorID
	dupHash := tokenSpec("other", acl.PolicyRead, 0)
	dupHash.SecretHash = acl.HashSecret("secret-of-bootstrap")
	badHash := tokenSpec("other", acl.PolicyRead, 0)
	badHash.SecretHash = "shoal_" + strings.Repeat("a", 43) // a secret, not its hash
	for _, tc := range []struct {
		name string
		cmd  Command
		is   error
		msg  string
	}{
		{"duplicate name", TokenCreate(tokenSpec("bootstrap", acl.PolicyRead, 0)), ErrExists, `token "bootstrap" already exists`},
		{"duplicate accessor", TokenCreate(dupID), ErrExists, "accessor_id"},
		{"duplicate hash", TokenCreate(dupHash), ErrExists, "secret_hash"},
		{"long name", TokenCreate(long), ErrInvalid, "longer than 64"},
		{"bad name", TokenCreate(tokenSpec("a b", acl.PolicyRead, 0)), ErrInvalid, "not allowed"},
		{"bad policy", TokenCreate(tokenSpec("ci", "root", 0)), ErrInvalid, "policy"},
		{"not a hash", TokenCreate(badHash), ErrInvalid, "secret_hash"},
		{"short ttl", TokenCreate(tokenSpec("ci", acl.PolicyRead, time.Second)), ErrInvalid, "ttl"},
		{"negative ttl", Command{Version: 1, Op: OpTokenCreate, Body: []byte(`{"accessor_id":"` + tokenSpec("ci", "", 0).AccessorID + `","name":"ci","policy":"read","secret_hash":"` + acl.HashSecret("s") + `","ttl_ms":-5}`)}, ErrInvalid, "ttl_ms"},
		{"overflowing ttl", Command{Version: 1, Op: OpTokenCreate, Body: []byte(`{"accessor_id":"` + tokenSpec("ci", "", 0).AccessorID + `","name":"ci","policy":"read","secret_hash":"` + acl.HashSecret("s") + `","ttl_ms":9223372036854775807}`)}, ErrInvalid, "ttl_ms"},
		{"bad body", Command{Version: 1, Op: OpTokenCreate, Body: []byte(`[]`)}, ErrInvalid, "body"},
		{"delete unknown", TokenDelete("nope"), ErrNotFound, "unknown accessor id"},
		{"delete last admin", TokenDelete(tokenSpec("bootstrap", "", 0).AccessorID), ErrConflict, "last admin token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := withACL(t)
			before := f.Save()
			r := apply(t, f, tc.cmd)
			if !errors.Is(r.Error(), tc.is) || !strings.Contains(r.Error().Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", r.Error(), tc.is, tc.msg)
			}
			if !bytes.Equal(before, f.Save()) {
				t.Fatal("a refused command changed the state")
			}
		})
	}
}

func TestTokenBounds(t *testing.T) {
	f := withACL(t)
	for i := 1; i < MaxTokens; i++ {
		s := acl.Spec{AccessorID: fmt.Sprintf("%032x", i+1<<20), Name: fmt.Sprintf("t%d", i), Policy: acl.PolicyRead, SecretHash: acl.HashSecret(fmt.Sprint(i))}
		mustApply(t, f, TokenCreate(s))
	}
	r := apply(t, f, TokenCreate(tokenSpec("one-more", acl.PolicyRead, 0)))
	if !errors.Is(r.Error(), ErrConflict) || !strings.Contains(r.Error().Error(), "1000 exist") {
		t.Fatalf("token %d = %v", MaxTokens+1, r.Error())
	}
	mustApply(t, f, TokenDelete(fmt.Sprintf("%032x", 1+1<<20)))
	mustApply(t, f, TokenCreate(tokenSpec("one-more", acl.PolicyRead, 0)))
	if n := len(f.Tokens()); n != MaxTokens {
		t.Fatalf("%d tokens", n)
	}
}

func TestDeleteAdminWithAnother(t *testing.T) {
	f := New()
	at := time.UnixMilli(1_700_000_000_000)
	applyTokenAt(t, f, ACLBootstrap(tokenSpec("bootstrap", acl.PolicyAdmin, 0)), at)
	// An expired admin is no way back in: it does not count.
	applyTokenAt(t, f, TokenCreate(tokenSpec("brief", acl.PolicyAdmin, time.Hour)), at)
	if r := applyTokenAt(t, f, TokenDelete(tokenSpec("bootstrap", "", 0).AccessorID), at.Add(2*time.Hour)); !errors.Is(r.Error(), ErrConflict) {
		t.Fatalf("delete with only an expired admin left = %v", r.Error())
	}
	if r := applyTokenAt(t, f, TokenDelete(tokenSpec("bootstrap", "", 0).AccessorID), at.Add(time.Minute)); r.Error() != nil {
		t.Fatalf("delete with a live admin left = %v", r.Error())
	}
	if _, ok := f.TokenBySecretHash(acl.HashSecret("secret-of-bootstrap")); ok {
		t.Fatal("deleted token still found by hash")
	}
}

func TestACLSnapshot(t *testing.T) {
	f := withACL(t)
	mustApply(t, f, TokenCreate(tokenSpec("ci", acl.PolicyOperate, time.Hour)))
	snap := f.Save()
	if bytes.Contains(snap, []byte("secret-of")) {
		t.Fatal("snapshot holds a secret")
	}
	if err := CheckSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	g := New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if !g.ACLBootstrapped() || len(g.Tokens()) != 2 || !bytes.Equal(g.Save(), snap) {
		t.Fatalf("restored: bootstrapped %v, tokens %+v", g.ACLBootstrapped(), g.Tokens())
	}
	a, _ := f.TokenBySecretHash(acl.HashSecret("secret-of-ci"))
	b, _ := g.TokenBySecretHash(acl.HashSecret("secret-of-ci"))
	if a != b {
		t.Fatalf("token after restore %+v, before %+v", b, a)
	}

	// The restore command keeps the cluster's own tokens: a restored
	// backup must neither revive a deleted token nor drop a new one.
	h := withACL(t)
	mustApply(t, h, TokenCreate(tokenSpec("new", acl.PolicyRead, 0)))
	mustApply(t, h, Restore(snap))
	if _, ok := h.Token(tokenSpec("ci", "", 0).AccessorID); ok {
		t.Fatal("restore brought in the snapshot's token")
	}
	if _, ok := h.Token(tokenSpec("new", "", 0).AccessorID); !ok {
		t.Fatal("restore dropped the cluster's token")
	}
	// Nor does it bootstrap a cluster that is not.
	e := New()
	mustApply(t, e, Restore(snap))
	if e.ACLBootstrapped() || len(e.Tokens()) != 0 {
		t.Fatal("restore bootstrapped ACLs")
	}
}

func TestCheckSnapshotTokens(t *testing.T) {
	f := withACL(t)
	mustApply(t, f, TokenCreate(tokenSpec("ci", acl.PolicyOperate, time.Hour)))
	good := string(f.Save())
	boot, ci := tokenSpec("bootstrap", "", 0), tokenSpec("ci", "", 0)
	for _, tc := range []struct{ name, old, new, msg string }{
		{"not bootstrapped", `"bootstrapped":true`, `"bootstrapped":false`, "bootstrapped is false"},
		{"bad policy", `"policy":"operate"`, `"policy":"root"`, `policy ("root")`},
		{"duplicate name", `"name":"ci"`, `"name":"bootstrap"`, `name "bootstrap" listed twice`},
		{"duplicate accessor", ci.AccessorID, boot.AccessorID, "listed twice"},
		{"duplicate hash", ci.SecretHash, boot.SecretHash, "secret_hash listed twice"},
		{"bad hash", ci.SecretHash, "xyz", "secret_hash"},
		{"no created", `"created_at_ms":1700000000000,"expires`, `"created_at_ms":0,"expires`, "created_at"},
		{"expires before", `"expires_at_ms":1700003600000`, `"expires_at_ms":1699999999999`, "expires_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, tc.old, tc.new, 1)
			if bad == good {
				t.Fatalf("%q not in the snapshot: %s", tc.old, good)
			}
			if err := CheckSnapshot([]byte(bad)); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("CheckSnapshot = %v, want %q", err, tc.msg)
			}
		})
	}
	many := `{"v":1,"acl":{"bootstrapped":true,"tokens":[` + strings.Repeat(`{},`, MaxTokens) + `{}]}}`
	if err := CheckSnapshot([]byte(many)); err == nil || !strings.Contains(err.Error(), "more than 1000") {
		t.Fatalf("CheckSnapshot(1001 tokens) = %v", err)
	}
}

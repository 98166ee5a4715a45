package fsm

import (
	"bytes"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
)

func goldenACLCommands() []Command {
	return []Command{
		ACLBootstrap(tokenSpec("bootstrap", acl.PolicyAdmin, 0)),
		TokenCreate(tokenSpec("ci", acl.PolicyOperate, 24*time.Hour)),
		TokenCreate(tokenSpec("ops-alice", acl.PolicyAdmin, 0)),
		TokenCreate(tokenSpec("dash", acl.PolicyRead, 0)),
		TokenDelete(tokenSpec("dash", "", 0).AccessorID),
	}
}

// TestGoldenACL pins the encodings of the ACL commands and of the ACL part
// of a snapshot, as TestGolden does for the others (and with its -update).
func TestGoldenACL(t *testing.T) {
	_, got, want := replayGolden(t, "v1-acl", goldenACLCommands())
	if !bytes.Equal(got, want) {
		t.Fatalf("state from ACL commands differs from the golden snapshot:\ncommands: %s\nsnapshot: %s", got, want)
	}
	r := New()
	if err := r.Restore(nopCloser{bytes.NewReader(want)}); err != nil {
		t.Fatal(err)
	}
	ci, ok := r.TokenBySecretHash(acl.HashSecret("secret-of-ci"))
	if !ok || ci.Policy != acl.PolicyOperate || !ci.ExpiresAt.Equal(time.UnixMilli(1_700_000_001_000).Add(24*time.Hour)) {
		t.Fatalf("ci after golden = %+v, %v", ci, ok)
	}
	if len(r.Tokens()) != 3 || !r.ACLBootstrapped() {
		t.Fatalf("tokens after golden = %+v", r.Tokens())
	}
}

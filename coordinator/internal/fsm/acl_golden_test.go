package fsm

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
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
	cmdPath, snapPath := filepath.Join("testdata", "v1-acl-commands.jsonl"), filepath.Join("testdata", "v1-acl-snapshot.json")
	if *update {
		var buf bytes.Buffer
		for i, c := range goldenACLCommands() {
			b, err := Stamp(c.Encode(), time.UnixMilli(1_700_000_000_000+int64(i)*1000))
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(b)
			buf.WriteByte('\n')
		}
		if err := os.WriteFile(cmdPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(cmdPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := New()
	sc := bufio.NewScanner(f)
	idx := uint64(0)
	for sc.Scan() {
		idx++
		if r := m.ApplyBytes(idx, sc.Bytes()); r.Error() != nil {
			t.Fatalf("line %d: %v", idx, r.Error())
		}
	}
	if idx != uint64(len(goldenACLCommands())) {
		t.Fatalf("applied %d golden commands, want %d", idx, len(goldenACLCommands()))
	}
	got := m.Save()
	if *update {
		if err := os.WriteFile(snapPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(snapPath)
	if err != nil {
		t.Fatal(err)
	}
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

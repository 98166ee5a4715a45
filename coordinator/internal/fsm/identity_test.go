package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func nonceHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func applyAt(t *testing.T, f *FSM, c Command, atMS int64) *Result {
	t.Helper()
	b, err := Stamp(c.Encode(), time.UnixMilli(atMS))
	if err != nil {
		t.Fatal(err)
	}
	return f.ApplyBytes(f.LastApplied()+1, b)
}

// TestIdentityTOFU walks the trust-on-first-use rule through the log: each
// step is applied to the state the previous steps left.
func TestIdentityTOFU(t *testing.T) {
	const t0 = 1_700_000_000_000
	rec := func(nonce string, pending int64) Identity {
		return Identity{InstanceID: realID, NonceSHA256: nonceHash(nonce), PendingTimeMS: pending}
	}
	f := New()
	for i, st := range []struct {
		name        string
		cmd         Command
		wantErr     error
		wantNonce   string
		wantPending int64
	}{
		{"first enrollment", IdentityEnroll(rec("n1", t0)), nil, "n1", t0},
		{"replay without the nonce", IdentityEnroll(rec("other", t0)), ErrConflict, "n1", t0},
		{"replay with an older pendingTime", IdentityEnroll(rec("other", t0-1)), ErrConflict, "n1", t0},
		{"replay with the nonce", IdentityEnroll(rec("n1", t0)), nil, "n1", t0},
		{"same nonce never moves pendingTime back", IdentityEnroll(rec("n1", t0-5000)), nil, "n1", t0},
		{"newer pendingTime, new nonce", IdentityEnroll(rec("n2", t0+1)), nil, "n2", t0 + 1},
		{"old nonce no longer works", IdentityEnroll(rec("n1", t0+1)), ErrConflict, "n2", t0 + 1},
		{"reset", IdentityReset(realID), nil, "", 0},
		{"reset of nothing", IdentityReset(realID), ErrNotFound, "", 0},
		{"after reset, any nonce", IdentityEnroll(rec("n3", t0)), nil, "n3", t0},
	} {
		at := int64(t0 + 10_000*(i+1))
		r := applyAt(t, f, st.cmd, at)
		if !errors.Is(r.Error(), st.wantErr) || (st.wantErr == nil) != (r.Error() == nil) {
			t.Fatalf("%s: err = %v, want %v", st.name, r.Error(), st.wantErr)
		}
		got, ok := f.Identity(realID)
		if st.wantNonce == "" {
			if ok {
				t.Fatalf("%s: record %+v, want none", st.name, got)
			}
			continue
		}
		if !ok || got.NonceSHA256 != nonceHash(st.wantNonce) || got.PendingTimeMS != st.wantPending {
			t.Fatalf("%s: record %+v (present %v), want nonce %s pending %d", st.name, got, ok, st.wantNonce, st.wantPending)
		}
		if st.wantErr == nil && st.cmd.Op == OpIdentityEnroll && got.EnrolledAtMS != at {
			t.Fatalf("%s: enrolled_at_ms = %d, want the stamped %d", st.name, got.EnrolledAtMS, at)
		}
	}
}

func TestEnrollmentAllowed(t *testing.T) {
	prev := &Identity{InstanceID: realID, NonceSHA256: nonceHash("a"), PendingTimeMS: 100}
	for _, tc := range []struct {
		name string
		prev *Identity
		next Identity
		want bool
	}{
		{"no record", nil, Identity{NonceSHA256: nonceHash("x"), PendingTimeMS: 1}, true},
		{"same nonce", prev, Identity{NonceSHA256: nonceHash("a"), PendingTimeMS: 100}, true},
		{"other nonce", prev, Identity{NonceSHA256: nonceHash("b"), PendingTimeMS: 100}, false},
		{"no nonce", prev, Identity{PendingTimeMS: 100}, false},
		{"newer pendingTime", prev, Identity{NonceSHA256: nonceHash("b"), PendingTimeMS: 101}, true},
		{"older pendingTime", prev, Identity{NonceSHA256: nonceHash("b"), PendingTimeMS: 99}, false},
		{"garbage stored hash never matches", &Identity{NonceSHA256: "zz", PendingTimeMS: 100}, Identity{NonceSHA256: "zz", PendingTimeMS: 100}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EnrollmentAllowed(tc.prev, tc.next); got != tc.want {
				t.Fatalf("EnrollmentAllowed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIdentityDefends(t *testing.T) {
	good := Identity{InstanceID: realID, NonceSHA256: nonceHash("n"), PendingTimeMS: 1}
	with := func(mut func(*Identity)) Command {
		id := good
		mut(&id)
		return IdentityEnroll(id)
	}
	for _, tc := range []struct {
		name string
		cmd  Command
		want string
	}{
		{"bad instance id", with(func(i *Identity) { i.InstanceID = "web-1" }), `instance_id ("web-1"): must be "i-"`},
		{"empty instance id", with(func(i *Identity) { i.InstanceID = "" }), "instance_id: required"},
		{"short hash", with(func(i *Identity) { i.NonceSHA256 = "abcd" }), "nonce_sha256: must be 64 hex digits, got 4"},
		{"upper-case hash", with(func(i *Identity) { i.NonceSHA256 = strings.ToUpper(nonceHash("n")) }), "nonce_sha256: must be lower-case hex"},
		{"no pending time", with(func(i *Identity) { i.PendingTimeMS = 0 }), "pending_time_ms (0): must be > 0"},
		{"reset bad id", IdentityReset("i-XYZ"), `instance_id ("i-XYZ")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			before := f.Save()
			r := applyAt(t, f, tc.cmd, 1)
			if r.Err == nil || r.Err.Kind != KindInvalid || !strings.Contains(r.Err.Msg, tc.want) {
				t.Fatalf("err = %v, want invalid containing %q", r.Err, tc.want)
			}
			if !bytes.Equal(before, f.Save()) {
				t.Fatal("a refused command changed the state")
			}
		})
	}
}

func TestIdentitySnapshot(t *testing.T) {
	f := New()
	for i, id := range []string{"i-0b", "i-0a", "i-0c"} {
		if r := applyAt(t, f, IdentityEnroll(Identity{InstanceID: id, NonceSHA256: nonceHash(id), PendingTimeMS: int64(100 + i)}), 5000); r.Error() != nil {
			t.Fatal(r.Error())
		}
	}
	snap := f.Save()
	if err := CheckSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	g := New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.Save(), snap) {
		t.Fatalf("round trip differs:\n%s\n%s", snap, g.Save())
	}
	ids := g.Identities()
	if len(ids) != 3 || ids[0].InstanceID != "i-0a" || ids[1].PendingTimeMS != 100 || ids[2].EnrolledAtMS != 5000 {
		t.Fatalf("identities after restore = %+v", ids)
	}
	// The restore command replaces them too, and refuses a bad one whole.
	h := New()
	if r := applyAt(t, h, Restore(snap), 6000); r.Error() != nil {
		t.Fatal(r.Error())
	}
	if _, ok := h.Identity("i-0c"); !ok {
		t.Fatal("restore command lost the identities")
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"duplicate", `"instance_id":"i-0b"`, `"instance_id":"i-0a"`, `identities[1] ("i-0a"): listed twice`},
		{"bad hash", `"nonce_sha256":"` + nonceHash("i-0a"), `"nonce_sha256":"` + "xyz", "identities[0]: nonce_sha256"},
	} {
		bad := strings.Replace(string(snap), tc.from, tc.to, 1)
		if err := CheckSnapshot([]byte(bad)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: CheckSnapshot = %v, want %q", tc.name, err, tc.want)
		}
	}
	// A snapshot without identities is what the v1 golden one is: it must
	// still encode without the field.
	if bytes.Contains(New().Save(), []byte("identities")) {
		t.Fatal("an empty state writes an identities field")
	}
}

// TestIdentityGolden pins the encoding of the identity commands and of a
// snapshot holding them, as TestGolden does for the others.
func TestIdentityGolden(t *testing.T) {
	cmds := []Command{
		IdentityEnroll(Identity{InstanceID: "i-1", NonceSHA256: nonceHash("n1"), PendingTimeMS: 1_699_999_000_000}),
		IdentityEnroll(Identity{InstanceID: "i-2", NonceSHA256: nonceHash("n2"), PendingTimeMS: 1_699_999_000_000}),
		IdentityEnroll(Identity{InstanceID: "i-1", NonceSHA256: nonceHash("n1b"), PendingTimeMS: 1_699_999_500_000}),
		IdentityReset("i-2"),
	}
	m, got, want := replayGolden(t, "v1-identity", cmds)
	if !bytes.Equal(got, want) {
		t.Fatalf("state from identity commands differs from the golden snapshot:\n%s\n%s", got, want)
	}
	id, ok := m.Identity("i-1")
	if !ok || id.NonceSHA256 != nonceHash("n1b") || id.EnrolledAtMS != 1_700_000_002_000 {
		t.Fatalf("i-1 after golden = %+v", id)
	}
	if _, ok := m.Identity("i-2"); ok {
		t.Fatal("i-2 survived its reset")
	}
}

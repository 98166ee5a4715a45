package fsm

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// fuzzStart is the state every fuzz input starts from, so mutated commands
// find fleets, an instance and a pending decision to act on. It is built
// once and restored from its snapshot for each input, which is faster.
func fuzzStart(t *testing.T) *FSM {
	startOnce.Do(func() { startSnap = buildFuzzStart(t).Save() })
	f := New()
	if err := f.Restore(io.NopCloser(bytes.NewReader(startSnap))); err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	startOnce sync.Once
	startSnap []byte
)

func buildFuzzStart(t *testing.T) *FSM {
	f := New()
	for _, c := range []Command{
		CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "web-asg", Min: 1, Max: 5, Desired: 2}),
		CreateFleet(&shoalv1.Fleet{Name: "api", Asg: "api-asg", Max: 3}),
		RegisterInstance(&shoalv1.Instance{Id: realID, Fleet: "web", PrivateIp: "10.0.0.2"}),
		CreateDecision(&shoalv1.Decision{Fleet: "web", PreviousCapacity: 2, Capacity: 5, Source: SourceAuto}),
		SetMember(Member{ID: "n1", RaftAddr: "10.0.0.1:7300", RPCAddr: "10.0.0.1:7400"}),
		ACLBootstrap(tokenSpec("bootstrap", acl.PolicyAdmin, 0)),
	} {
		b, _ := Stamp(c.Encode(), time.UnixMilli(1_700_000_000_000))
		if r := f.ApplyBytes(f.LastApplied()+1, b); r.Error() != nil {
			t.Fatalf("fuzz start %s: %v", c.Op, r.Error())
		}
	}
	return f
}

// checkInvariants fails t unless f's state is one a valid history can
// reach: its own snapshot passes the restore command's whole check (bounds,
// names, policies, ids, addresses, references, decision ids), and a restore
// of it reads back byte-identical.
func checkInvariants(t *testing.T, f *FSM) {
	t.Helper()
	for _, fl := range f.Fleets() {
		if fl.Min > fl.Desired || fl.Desired > fl.Max {
			t.Fatalf("fleet %q: min %d, desired %d, max %d", fl.Name, fl.Min, fl.Desired, fl.Max)
		}
	}
	snap := f.Save()
	if err := CheckSnapshot(snap); err != nil {
		t.Fatalf("state breaks an invariant: %v\n%s", err, snap)
	}
	g := New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if again := g.Save(); !bytes.Equal(again, snap) {
		t.Fatalf("snapshot does not read back:\n%s\n%s", snap, again)
	}
}

// FuzzApply feeds newline-separated commands to the FSM. Whatever they are,
// Apply must not panic, two FSMs must end byte-identical (determinism), and
// the state must keep its invariants after every command.
func FuzzApply(f *testing.F) {
	for _, name := range []string{"v1-commands.jsonl", "v1-acl-commands.jsonl", "v1-identity-commands.jsonl", "v3-launch-commands.jsonl"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := fuzzStart(t), fuzzStart(t)
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for n := 0; sc.Scan() && n < 64; n++ {
			line := sc.Bytes()
			// Stamp as the leader would when it decodes; raw lines too, as
			// a follower applies whatever the log holds.
			if st, err := Stamp(line, time.UnixMilli(1_700_000_100_000)); err == nil && n%2 == 0 {
				line = st
			}
			ra := a.ApplyBytes(a.LastApplied()+1, line)
			rb := b.ApplyBytes(b.LastApplied()+1, line)
			if !bytes.Equal(EncodeResult(ra), EncodeResult(rb)) {
				t.Fatalf("same command, different results: %s vs %s", EncodeResult(ra), EncodeResult(rb))
			}
			checkInvariants(t, a)
		}
		if !bytes.Equal(a.Save(), b.Save()) || a.Rejected().Total != b.Rejected().Total {
			t.Fatal("two FSMs fed the same commands differ")
		}
	})
}

// FuzzRestore feeds a snapshot to both restore paths. Neither may panic; a
// snapshot the restore command accepts must leave a state that keeps the
// invariants; one it refuses must leave the state as it was.
func FuzzRestore(f *testing.F) {
	for _, name := range []string{"v1-snapshot.json", "v1-acl-snapshot.json", "v1-identity-snapshot.json", "v3-launch-snapshot.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, snap []byte) {
		_ = New().Restore(io.NopCloser(bytes.NewReader(snap))) // raft's path: lenient, but must not panic

		m := fuzzStart(t)
		before := m.Save()
		r := m.ApplyBytes(m.LastApplied()+1, mustStampT(t, Restore(snap)))
		if r.Error() != nil {
			if CheckSnapshot(snap) == nil {
				t.Fatalf("restore refused a snapshot CheckSnapshot accepts: %v", r.Error())
			}
			if after := m.Save(); !bytes.Equal(before, after) {
				t.Fatalf("a refused restore changed the state")
			}
			return
		}
		checkInvariants(t, m)
		// Membership is the cluster's own and survives a restore.
		if ms := m.Members(); ms["n1"].RPCAddr != "10.0.0.1:7400" {
			t.Fatalf("members after restore = %v", ms)
		}
	})
}

func mustStampT(t *testing.T, c Command) []byte {
	b, err := Stamp(c.Encode(), time.UnixMilli(1_700_000_200_000))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

//go:build multiprocess

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// TestCorruptSegmentStopsTheNodeAndItRejoins flips one byte of an entry in
// node 3's raft-wal segment. The node must refuse to start, naming the file
// and the index; after the operator's recovery (remove-peer, wipe, start)
// it must rejoin and end with the leader's state. (It catches up by log
// replay here: raft-wal still serves the head-truncated entries of its open
// segment, so the leader has them; a leader whose segment rotated sends its
// snapshot instead.)
func TestCorruptSegmentStopsTheNodeAndItRejoins(t *testing.T) {
	c := newCluster(t)
	l := c.startAll()
	n3 := c.nodes[2] // "node 3" below: the victim, which must be a follower
	if l == n3 {
		n3 = c.nodes[1]
	}
	create := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := l.client().CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: &shoalv1.Fleet{Name: name, Asg: name + "-asg", Min: 1, Max: 3}}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	// The victim is third from last, so it survives compaction (the last 4
	// entries always do) and is not in the final batch, which raft-wal
	// would discard as a torn write instead of reading.
	for i := range 20 {
		create(fmt.Sprintf("a%02d", i))
	}
	create("victim")
	create("z1")
	create("z2")
	waitFor(t, 10*time.Second, "node 3 to apply every fleet", func() bool {
		return c.checkFleets(n3.rpc, true, map[string]fleetJSON{"z2": {Name: "z2", ASG: "z2-asg", Min: 1, Max: 3}}) == nil
	})
	c.stop(n3)

	segs, err := filepath.Glob(filepath.Join(n3.dir, "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := ""
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte("victim-asg")); i >= 0 {
			b[i] ^= 0x01 // victim-asg → wictim-asg
			if err := os.WriteFile(s, b, 0o644); err != nil {
				t.Fatal(err)
			}
			flipped = s
			break
		}
	}
	if flipped == "" {
		t.Fatalf("victim's entry not found in %v", segs)
	}

	c.start(n3)
	select {
	case <-n3.proc.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("node 3 kept running on a corrupt segment")
	}
	var exit *exec.ExitError
	if err := n3.proc.Err(); !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("node 3 exited with %v, want a non-zero status", err)
	}
	log, err := os.ReadFile(n3.logFile())
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(filepath.Base(flipped)) + `, index \d+: checksum mismatch`).Match(log) {
		t.Fatalf("node 3's log does not name %s and an index:\n%s", filepath.Base(flipped), tailOf(log))
	}

	// The operator's recovery, as ARCHITECTURE.md describes it.
	if out, err := c.cli(l.rpc, "raft", "remove-peer", "--id", n3.id); err != nil {
		t.Fatalf("remove-peer: %v %s", err, out)
	}
	if err := os.RemoveAll(n3.dir); err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // writes while it is away; the leader snapshots and compacts
		create(fmt.Sprintf("b%02d", i))
	}
	before := len(log)
	c.start(n3)
	want, err := c.fleets(l.rpc, false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "node 3 to catch up", func() bool {
		got, err := c.fleets(n3.rpc, true)
		return err == nil && reflect.DeepEqual(got, want)
	})
	if _, ok := want["victim"]; !ok {
		t.Fatal("the leader lost the victim fleet")
	}
	log, _ = os.ReadFile(n3.logFile())
	if strings.Contains(string(log[before:]), "raft storage failed") {
		t.Fatalf("node 3 failed again after the wipe:\n%s", tailOf(log[before:]))
	}
}

func tailOf(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

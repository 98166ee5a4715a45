//go:build multiprocess

package replace

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/testkit"
)

// TestRollingReplacement forms a cluster with --bootstrap-expect, replaces
// each node in turn with a fresh process on its data directory at a new
// address, then brings one back with an empty directory, and finally
// restores a scheduled snapshot file on a second, freshly formed cluster.
func TestRollingReplacement(t *testing.T) {
	bin := testkit.Binary(t, "shoal-coordinator")
	pki := testkit.NewPKI(t, bin)
	c := newCluster(t, bin, pki, "c")

	// Three fresh servers, each told of the other two, none told to
	// bootstrap: they form one cluster of three.
	for _, n := range c.nodes {
		c.start(n)
	}
	leader := c.agreedLeader(30*time.Second, c.voters())
	for _, n := range c.nodes {
		// Whichever came first: it bootstrapped the shared configuration,
		// a peer's bootstrap reached it, or it asked a peer that had. A node
		// the others' bootstrap reached logs so when its own round ends,
		// which can be just after the leader is agreed: wait for the line.
		err := testkit.Poll(10*time.Second, func() error {
			if logHas(n, "bootstrap-expect: bootstrapping") || logHas(n, "bootstrap-expect: a peer bootstrapped") || logHas(n, "joining it, not bootstrapping") {
				return nil
			}
			return fmt.Errorf("%s formed the cluster without going through bootstrap-expect", n.id)
		})
		if err != nil {
			t.Error(err)
		}
	}
	c.createFleet(leader, "web")
	want := []string{"web"}
	c.haveFleets(want)

	// Each in turn: stop it, move it to a new address, start a fresh
	// process on the same data dir. The two others keep a leader and take
	// writes while it is gone (the stopped server stays a voter at its old
	// address until it comes back); it returns as the same member at its
	// new address and catches up.
	for i, n := range c.nodes {
		before := c.voters()
		c.stop(n)
		c.agreedLeader(20*time.Second, before)
		name := fmt.Sprintf("while-%d-away", i)
		c.createFleet(c.running()[0], name)
		want = append(want, name)
		c.move(n, loopbackIPs[1+i])
		c.start(n)
		c.agreedLeader(30*time.Second, c.voters())
		c.haveFleets(want)
	}

	// A lost volume: node 0 comes back at yet another address with an
	// empty data dir and the same flags. The others are in a cluster, so
	// it joins theirs as a follower and is sent the state; it never forms
	// a second cluster (which would hold no fleets and name itself leader).
	lost := c.nodes[0]
	before := c.voters()
	c.stop(lost)
	c.agreedLeader(20*time.Second, before)
	if err := os.RemoveAll(lost.dir); err != nil {
		t.Fatal(err)
	}
	c.move(lost, loopbackIPs[4])
	logOff := len(logFrom(lost, 0))
	c.start(lost)
	l := c.agreedLeader(30*time.Second, c.voters())
	c.haveFleets(want)
	if lg := logFrom(lost, logOff); !strings.Contains(lg, "joining it, not bootstrapping") || strings.Contains(lg, "bootstrap-expect: bootstrapping") {
		t.Errorf("%s with an empty disk did not join the existing cluster as it should (see its log)", lost.id)
	}

	// A lost volume at the same address (Terraform's fixed private IPs):
	// the node's entry is still in the configuration, so its join says it
	// has no state and the leader replaces the entry rather than keep a
	// voter that forgot its vote.
	same := c.nodes[1]
	before = c.voters()
	c.stop(same)
	c.agreedLeader(20*time.Second, before)
	if err := os.RemoveAll(same.dir); err != nil {
		t.Fatal(err)
	}
	logOff = len(logFrom(same, 0))
	c.start(same)
	l = c.agreedLeader(30*time.Second, c.voters())
	c.haveFleets(want)
	if lg := logFrom(same, logOff); !strings.Contains(lg, "joining it, not bootstrapping") || strings.Contains(lg, "bootstrap-expect: bootstrapping") {
		t.Errorf("%s with an empty disk at its old address did not join the existing cluster (see its log)", same.id)
	}

	// The restore drill: the newest scheduled snapshot file of the old
	// cluster, taken back on a new cluster formed from empty disks.
	c.createFleet(l, "last")
	want = append(want, "last")
	c.haveFleets(want)
	written := time.Now()
	var file string
	waitFor(t, 20*time.Second, "a scheduled snapshot written after the last write", func() error {
		files, err := filepath.Glob(filepath.Join(l.snaps, "shoal-"+l.id+"-*.snap"))
		if err != nil || len(files) == 0 {
			return fmt.Errorf("no snapshot files yet (%v)", err)
		}
		sort.Strings(files) // the names sort by time
		file = files[len(files)-1]
		st, err := os.Stat(file)
		if err != nil {
			return err
		}
		if st.ModTime().Before(written) {
			return fmt.Errorf("%s predates the last write", file)
		}
		return nil
	})
	for _, n := range c.nodes {
		c.stop(n)
	}

	r := newCluster(t, bin, pki, "r")
	for _, n := range r.nodes {
		r.start(n)
	}
	rl := r.agreedLeader(30*time.Second, r.voters())
	r.haveFleets(nil)
	out, err := r.cli(rl, "snapshot", "restore", file)
	if err != nil {
		t.Fatalf("snapshot restore: %v", err)
	}
	t.Logf("restore drill: %s", out)
	r.haveFleets(want)
	// The new cluster keeps its own members and tokens: the token from its
	// own acl bootstrap still works after the restore.
	r.createFleet(rl, "after-restore")
	r.haveFleets(append(want, "after-restore"))
}

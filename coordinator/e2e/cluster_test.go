//go:build multiprocess

package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func (c *cluster) startAll() *node {
	c.t.Helper()
	c.start(c.nodes[0])
	c.leader(10 * time.Second)
	for _, n := range c.nodes[1:] {
		c.start(n)
	}
	l := c.leader(10 * time.Second)
	waitFor(c.t, 15*time.Second, "three voters", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ps, err := l.client().ListPeers(ctx, &shoalv1.ListPeersRequest{})
		return err == nil && len(ps.Peers) == 3
	})
	return l
}

func (c *cluster) checkFleets(addr string, stale bool, want map[string]fleetJSON) error {
	got, err := c.fleets(addr, stale)
	if err != nil {
		return err
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			return fmt.Errorf("fleet %s missing (have %d fleets)", name, len(got))
		}
		if g.ASG != w.ASG || g.Min != w.Min || g.Max != w.Max {
			return fmt.Errorf("fleet %s = %+v, want %+v", name, g, w)
		}
	}
	return nil
}

func TestFailoverRestartAndDurability(t *testing.T) {
	for _, store := range []string{"wal", "boltdb"} {
		t.Run(store, func(t *testing.T) { failoverRestartAndDurability(t, store) })
	}
}

func logHas(n *node, s string) bool {
	b, _ := os.ReadFile(n.logFile())
	return strings.Contains(string(b), s)
}

func failoverRestartAndDurability(t *testing.T, store string) {
	c := newCluster(t, "--log-store", store)
	leader := c.startAll()

	// Fleets created through different nodes; each one acknowledged is kept.
	want := map[string]fleetJSON{}
	for i := 0; i < 9; i++ {
		n := c.nodes[i%3]
		f := fleetJSON{Name: fmt.Sprintf("fleet-%d", i), ASG: fmt.Sprintf("asg-%d", i), Min: int32(i % 3), Max: int32(5 + i)}
		if _, err := c.cli(n.rpc, "fleet", "create", f.Name, "--asg", f.ASG, "--min", fmt.Sprint(f.Min), "--max", fmt.Sprint(f.Max)); err != nil {
			t.Fatalf("create %s via %s: %v", f.Name, n.id, err)
		}
		want[f.Name] = f
	}
	if _, err := c.cli(c.nodes[1].rpc, "fleet", "create", "bad", "--asg", "bad", "--min", "5", "--max", "3"); err == nil || !strings.Contains(err.Error(), "min (5) must be <= max (3)") {
		t.Fatalf("bad fleet: %v", err)
	}

	// 1. kill -9 the leader: another is elected and has every fleet.
	old := leader
	st, err := old.client().GetStatus(context.Background(), &shoalv1.GetStatusRequest{Stale: true})
	if err != nil {
		t.Fatal(err)
	}
	killedAt := st.AppliedIndex
	c.kill9(old)
	leader = c.leader(10 * time.Second)
	if leader == old {
		t.Fatal("the killed node is still the leader")
	}
	for _, n := range c.nodes {
		if n.running() {
			if err := c.checkFleets(n.rpc, false, want); err != nil {
				t.Fatalf("after failover, via %s: %v", n.id, err)
			}
		}
	}
	// The cluster keeps taking writes with one node down.
	extra := fleetJSON{Name: "after-failover", ASG: "asg-after", Min: 1, Max: 2}
	if _, err := c.cli(leader.rpc, "fleet", "create", extra.Name, "--asg", extra.ASG, "--min", "1", "--max", "2"); err != nil {
		t.Fatal(err)
	}
	want[extra.Name] = extra
	// Enough writes while it is down that the leader snapshots and trims its
	// log past the killed node's position: catching up needs the snapshot.
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("fleet-%d", i%9)
		d := want[name].Min + int32(i%2)
		// With one node down, a missed heartbeat on a loaded machine makes
		// the leader step down: the write then fails as "may or may not
		// have been applied" (Aborted) or finds no leader (Unavailable).
		// Setting an absolute desired capacity is idempotent, so a client
		// retries it through the same node, which forwards to whoever
		// leads; anything else is a failure.
		err := retryIdempotent(10*time.Second, func(ctx context.Context) error {
			_, err := leader.client().UpdateFleet(ctx, &shoalv1.UpdateFleetRequest{Fleet: &shoalv1.Fleet{Name: name, Desired: d}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"desired"}}})
			return err
		})
		if err != nil {
			t.Fatalf("update %s: %v", name, err)
		}
	}
	// Trailing logs are 4: a snapshot past killedAt+4 means the entries the
	// killed node needs next are gone from the leader's log.
	waitFor(t, 10*time.Second, "a raft snapshot on "+leader.id+" past the killed node's log", func() bool { return snapshotIndex(leader) > killedAt+4 })

	// 2. The killed node restarts with the same flags and catches up.
	c.start(old)
	waitFor(t, 15*time.Second, old.id+" to catch up", func() bool { return c.checkFleets(old.rpc, true, want) == nil })
	if store == "boltdb" {
		// raft-wal keeps serving head-truncated entries from its open
		// segment, so there a lagging node replays the log instead; BoltDB
		// deletes them and the node must be sent the snapshot.
		waitFor(t, 5*time.Second, old.id+" to log the installed snapshot", func() bool { return logHas(old, "Installed remote snapshot") })
	}

	for _, n := range c.nodes {
		waitFor(t, 10*time.Second, "a snapshot on "+n.id, func() bool { return snapshotIndex(n) > 0 })
	}

	// 3. Stop all three (SIGTERM), restart, and the state is all there.
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func(n *node) {
			defer wg.Done()
			if took := c.stop(n); took > 10*time.Second {
				t.Errorf("%s took %s to stop", n.id, took)
			}
		}(n)
	}
	wg.Wait()
	for _, n := range c.nodes {
		c.start(n)
	}
	leader = c.leader(15 * time.Second)
	if err := c.checkFleets(leader.rpc, false, want); err != nil {
		t.Fatalf("after full restart: %v", err)
	}
	for _, n := range c.nodes {
		if !logHas(n, "restored from snapshot") {
			t.Errorf("%s restarted without loading a snapshot; the restart does not cover FSM.Restore", n.id)
		}
	}
	for _, n := range c.nodes {
		waitFor(t, 10*time.Second, n.id+" to hold every fleet after restart", func() bool { return c.checkFleets(n.rpc, true, want) == nil })
	}

	// 4. A leader stopped with SIGTERM hands over leadership first.
	before := leader
	took := c.stop(before)
	t.Logf("leader %s stopped in %s", before.id, took)
	next := c.leader(5 * time.Second)
	if next == before {
		t.Fatal("a stopped leader is still leader")
	}
	c.start(before)
	waitFor(t, 10*time.Second, before.id+" back on the same data dir", func() bool { return c.checkFleets(before.rpc, true, want) == nil })
}

// snapshotIndex is the highest index of a complete raft snapshot in n's
// data dir (FileSnapshotStore names them term-index-millis).
func snapshotIndex(n *node) uint64 {
	var best uint64
	entries, _ := os.ReadDir(filepath.Join(n.dir, "snapshots"))
	for _, e := range entries {
		// raft writes a snapshot under NAME.tmp and renames it when done;
		// an unfinished one must not count (a restart could not load it).
		if strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if _, err := os.Stat(filepath.Join(n.dir, "snapshots", e.Name(), "meta.json")); err != nil {
			continue
		}
		var term, idx, millis uint64
		if _, err := fmt.Sscanf(e.Name(), "%d-%d-%d", &term, &idx, &millis); err == nil && idx > best {
			best = idx
		}
	}
	return best
}

// kvInput and kvOutput are the register model's operations: each fleet's
// max is one register.
type kvInput struct {
	key   string
	write bool
	value int32
}

type kvOutput struct {
	value   int32
	unknown bool // a write that failed: it may or may not have happened
}

var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return int32(initialMax) },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(kvInput), output.(kvOutput)
		if in.write {
			return true, in.value
		}
		return out.value == state.(int32), state
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		if in.write {
			return fmt.Sprintf("set %s max=%d unknown=%v", in.key, in.value, out.unknown)
		}
		return fmt.Sprintf("get %s -> %d", in.key, out.value)
	},
}

const initialMax = 10

func TestConcurrentWritesThroughLeaderKill(t *testing.T) {
	c := newCluster(t)
	leader := c.startAll()
	keys := []string{"reg-a", "reg-b", "reg-c"}
	for _, k := range keys {
		if _, err := c.cli(leader.rpc, "fleet", "create", k, "--asg", k+"-asg", "--min", "0", "--max", fmt.Sprint(initialMax)); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu      sync.Mutex
		history []porcupine.Operation
		acked   = map[string]int{}
		// killAt is when the leader was killed (ns since start; 0 before);
		// ackedAfter counts writes called after it and acknowledged.
		killAt     int64
		ackedAfter int
		start      = time.Now()
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	now := func() int64 { return time.Since(start).Nanoseconds() }
	record := func(op porcupine.Operation) {
		mu.Lock()
		history = append(history, op)
		mu.Unlock()
	}
	for client := 0; client < 2; client++ {
		wg.Add(1)
		go func(client int) {
			defer wg.Done()
			target := client // each client starts on its own node and moves on after errors
			// A client backs off after an error, as a real one would: without
			// it, calls that fail at once (the killed node, a follower whose
			// forward hits the dead leader) burn the loop's bounded
			// iterations during the election and leave too few writes for
			// the new leader to acknowledge.
			backoff := time.Duration(0)
			for i := 0; i < 400; i++ {
				select {
				case <-stop:
					return
				case <-time.After(backoff):
				}
				n := c.nodes[target%3]
				key := keys[(i+client)%len(keys)]
				ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
				call := now()
				if i%3 == 2 {
					resp, err := n.client().GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: key})
					ret := now()
					cancel()
					if err != nil {
						target++ // a failed read has no effect: leave it out
						backoff = min(max(2*backoff, 10*time.Millisecond), 320*time.Millisecond)
						continue
					}
					backoff = 0
					record(porcupine.Operation{ClientId: client, Input: kvInput{key: key}, Call: call, Output: kvOutput{value: resp.Fleet.Max}, Return: ret})
					continue
				}
				v := int32(1000 + client*100000 + i)
				_, err := n.client().UpdateFleet(ctx, &shoalv1.UpdateFleetRequest{Fleet: &shoalv1.Fleet{Name: key, Max: v}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"max"}}})
				ret := now()
				cancel()
				op := porcupine.Operation{ClientId: client, Input: kvInput{key: key, write: true, value: v}, Call: call, Output: kvOutput{}, Return: ret}
				if err != nil {
					if s, _ := status.FromError(err); s.Code() == codes.InvalidArgument {
						t.Errorf("write rejected: %v", err)
					}
					// Unknown outcome: it may take effect at any time after the call.
					op.Output, op.Return = kvOutput{unknown: true}, math.MaxInt64
					target++
					backoff = min(max(2*backoff, 10*time.Millisecond), 320*time.Millisecond)
				} else {
					backoff = 0
					mu.Lock()
					acked[key]++
					if killAt > 0 && call > killAt {
						ackedAfter++
					}
					mu.Unlock()
				}
				record(op)
			}
		}(client)
	}

	// Kill the leader while both clients write.
	// Progress is counted in acknowledged writes, not in operations: failed
	// calls during the election also make history, and a wait on its length
	// could end with few writes for the checker to hold the cluster to.
	ackedTotal := func() int {
		n := 0
		for _, a := range acked {
			n += a
		}
		return n
	}
	waitFor(t, 10*time.Second, "20 acknowledged writes before the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ackedTotal() >= 20
	})
	killed := c.leader(5 * time.Second)
	mu.Lock()
	killAt = now()
	mu.Unlock()
	c.kill9(killed)
	newLeader := c.leader(10 * time.Second)
	t.Logf("killed leader %s; new leader %s", killed.id, newLeader.id)
	waitFor(t, 20*time.Second, "30 writes acknowledged after the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ackedAfter >= 30
	})
	close(stop)
	wg.Wait()

	// Final reads, after every client returned, pin down the end state.
	c.start(killed)
	for _, k := range keys {
		call := now()
		resp, err := newLeader.client().GetFleet(context.Background(), &shoalv1.GetFleetRequest{Fleet: k})
		if err != nil {
			t.Fatal(err)
		}
		record(porcupine.Operation{ClientId: 2, Input: kvInput{key: k}, Call: call, Output: kvOutput{value: resp.Fleet.Max}, Return: now()})
	}
	total := ackedTotal()
	if total < 50 {
		t.Fatalf("only %d acknowledged writes; the test did not exercise the cluster", total)
	}
	res := porcupine.CheckOperationsTimeout(registerModel, history, 30*time.Second)
	if res != porcupine.Ok {
		t.Fatalf("history of %d operations (%d acknowledged writes) is not linearizable: %v", len(history), total, res)
	}
	t.Logf("%d operations, %d acknowledged writes: linearizable", len(history), total)
}

// TestRegisterModelRejectsLostWrite shows the checker above can fail: a
// read after an acknowledged write that returns the older value is not
// linearizable, while an unknown-outcome write may or may not show.
func TestRegisterModelRejectsLostWrite(t *testing.T) {
	w := func(v int32, call, ret int64, unknown bool) porcupine.Operation {
		return porcupine.Operation{Input: kvInput{key: "k", write: true, value: v}, Call: call, Output: kvOutput{unknown: unknown}, Return: ret}
	}
	r := func(v int32, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 1, Input: kvInput{key: "k"}, Call: call, Output: kvOutput{value: v}, Return: ret}
	}
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		want    bool
	}{
		{"write then read", []porcupine.Operation{w(7, 0, 10, false), r(7, 20, 30)}, true},
		{"acknowledged write lost", []porcupine.Operation{w(7, 0, 10, false), r(initialMax, 20, 30)}, false},
		{"unknown write absent", []porcupine.Operation{w(7, 0, math.MaxInt64, true), r(initialMax, 20, 30)}, true},
		{"unknown write present", []porcupine.Operation{w(7, 0, math.MaxInt64, true), r(7, 20, 30)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(registerModel, tc.history); got != tc.want {
				t.Fatalf("linearizable = %v, want %v", got, tc.want)
			}
		})
	}
}

// retryIdempotent calls an idempotent write until it succeeds, retrying
// only the answers a leadership change gives (Aborted: outcome unknown;
// Unavailable: no leader yet), with a short backoff, for at most within.
func retryIdempotent(within time.Duration, call func(ctx context.Context) error) error {
	deadline := time.Now().Add(within)
	backoff := 20 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := call(ctx)
		cancel()
		code := status.Code(err)
		if err == nil || (code != codes.Aborted && code != codes.Unavailable) || time.Now().Add(backoff).After(deadline) {
			return err
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

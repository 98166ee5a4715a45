//go:build multiprocess

package e2e

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	c := newCluster(t)
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

	// 2. The killed node restarts with the same flags and catches up.
	c.start(old)
	waitFor(t, 15*time.Second, old.id+" to catch up", func() bool { return c.checkFleets(old.rpc, true, want) == nil })

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
		start   = time.Now()
		stop    = make(chan struct{})
		wg      sync.WaitGroup
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
			for i := 0; i < 400; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := c.nodes[target%3]
				key := keys[(i+client)%len(keys)]
				ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
				call := now()
				if i%3 == 2 {
					resp, err := n.client().GetFleet(ctx, &shoalv1.GetFleetRequest{Name: key})
					ret := now()
					cancel()
					if err != nil {
						target++ // a failed read has no effect: leave it out
						continue
					}
					record(porcupine.Operation{ClientId: client, Input: kvInput{key: key}, Call: call, Output: kvOutput{value: resp.Fleet.Max}, Return: ret})
					continue
				}
				v := int32(1000 + client*100000 + i)
				_, err := n.client().UpdateFleet(ctx, &shoalv1.UpdateFleetRequest{Name: key, Max: &v})
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
				} else {
					mu.Lock()
					acked[key]++
					mu.Unlock()
				}
				record(op)
			}
		}(client)
	}

	// Kill the leader while both clients write.
	waitFor(t, 10*time.Second, "some acknowledged writes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(history) > 30
	})
	killed := c.leader(5 * time.Second)
	c.kill9(killed)
	newLeader := c.leader(10 * time.Second)
	t.Logf("killed leader %s; new leader %s", killed.id, newLeader.id)
	waitFor(t, 20*time.Second, "writes acknowledged by the new leader", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(history) > 150
	})
	close(stop)
	wg.Wait()

	// Final reads, after every client returned, pin down the end state.
	c.start(killed)
	for _, k := range keys {
		call := now()
		resp, err := newLeader.client().GetFleet(context.Background(), &shoalv1.GetFleetRequest{Name: k})
		if err != nil {
			t.Fatal(err)
		}
		record(porcupine.Operation{ClientId: 2, Input: kvInput{key: k}, Call: call, Output: kvOutput{value: resp.Fleet.Max}, Return: now()})
	}
	total := 0
	for _, n := range acked {
		total += n
	}
	if total < 50 {
		t.Fatalf("only %d acknowledged writes; the test did not exercise the cluster", total)
	}
	res := porcupine.CheckOperationsTimeout(registerModel, history, 30*time.Second)
	if res != porcupine.Ok {
		t.Fatalf("history of %d operations (%d acknowledged writes) is not linearizable: %v", len(history), total, res)
	}
	t.Logf("%d operations, %d acknowledged writes: linearizable", len(history), total)
}

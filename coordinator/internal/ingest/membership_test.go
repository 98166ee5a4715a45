package ingest

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func TestStaleThenGoodbye(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &network{}
		reg := newRegistry()
		n := startNode(t, nw, "n1", true, "n1", reg, true, nil)
		every, stale := n.cfg.ReconcileEvery, n.cfg.StaleAfter
		state := func(id string) shoalv1.InstanceState { return reg.state(id) }
		const inService, unhealthy = shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY

		quiet, err := connect(t, nw, "n1", hello("i-0b1e7", 1))
		if err != nil {
			t.Fatal(err)
		}
		quiet.send(t, true, smp(time.Now(), "cpu", 1.0))
		last := time.Now()
		advance(every)
		if got := state("i-0b1e7"); got != inService {
			t.Fatalf("one reconcile after a ready sample: %s, want in service", got)
		}
		// Silent, but the stream stays up: fresh until StaleAfter has passed,
		// unhealthy at the first reconcile after that.
		advance(time.Until(last.Add(stale)) - time.Millisecond)
		if got := state("i-0b1e7"); got != inService {
			t.Fatalf("silent for less than %s: %s, want in service", stale, got)
		}
		advance(every + time.Millisecond)
		if got := state("i-0b1e7"); got != unhealthy {
			t.Fatalf("silent for %s and a reconcile: %s, want unhealthy", time.Since(last), got)
		}

		bye, err := connect(t, nw, "n1", hello("i-0b7e", 1))
		if err != nil {
			t.Fatal(err)
		}
		bye.send(t, true, smp(time.Now(), "cpu", 1.0))
		advance(every)
		if _, ok := reg.Instance("i-0b7e"); !ok {
			t.Fatal("i-0b7e not registered one reconcile after its first sample")
		}
		if err := bye.sendRaw(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Goodbye{Goodbye: &shoalv1.AgentGoodbye{Reason: "shutdown"}}}); err != nil {
			t.Fatal(err)
		}
		advance(every)
		if _, ok := reg.Instance("i-0b7e"); ok {
			t.Fatal("i-0b7e still registered one reconcile after its goodbye")
		}
		bye.cancel()
		// The node must have seen that stream end before the restarted agent
		// connects, or it rightly refuses a second agent for a live id.
		synctest.Wait()

		// The agent restarts (a new start time) and registers again.
		back, err := connect(t, nw, "n1", hello("i-0b7e", 2))
		if err != nil {
			t.Fatal(err)
		}
		back.send(t, true, smp(time.Now(), "cpu", 1.0))
		advance(every)
		if got := state("i-0b7e"); got != inService {
			t.Fatalf("restarted agent: %s, want in service", got)
		}
	})
}

// TestCutStreamKeepsReadinessForTheGrace: a stream that ends without a
// goodbye (a cut connection, a node going away) leaves the instance in
// service for the rest of StaleAfter, so its LBs keep it while the agent
// reconnects; silence past the grace still makes it unhealthy.
func TestCutStreamKeepsReadinessForTheGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &network{}
		reg := newRegistry()
		n := startNode(t, nw, "n1", true, "n1", reg, true, nil)
		every, stale := n.cfg.ReconcileEvery, n.cfg.StaleAfter
		const inService, unhealthy = shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY

		a, err := connect(t, nw, "n1", hello("i-0c47", 1))
		if err != nil {
			t.Fatal(err)
		}
		a.send(t, true, smp(time.Now(), "cpu", 1.0))
		advance(every)
		if got := reg.state("i-0c47"); got != inService {
			t.Fatalf("after a ready sample: %s, want in service", got)
		}
		a.cancel() // cut, no goodbye
		synctest.Wait()
		advance(every)
		if got := reg.state("i-0c47"); got != inService {
			t.Fatalf("one reconcile after a cut stream: %s, want in service for the grace", got)
		}
		// The same agent comes back within the grace: never left service.
		b, err := connect(t, nw, "n1", hello("i-0c47", 1))
		if err != nil {
			t.Fatal(err)
		}
		b.send(t, true, smp(time.Now(), "cpu", 1.0))
		last := time.Now()
		advance(every)
		if got := reg.state("i-0c47"); got != inService {
			t.Fatalf("reconnected within the grace: %s, want in service", got)
		}
		b.cancel()
		synctest.Wait()
		advance(time.Until(last.Add(stale)) + every)
		if got := reg.state("i-0c47"); got != unhealthy {
			t.Fatalf("cut and silent for %s: %s, want unhealthy", time.Since(last), got)
		}
	})
}

// TestRaftSeesOnlyMembership streams 50 agents, half through a follower, and
// counts registry commits: one registration and at most one state change per
// agent, and none at all once the fleet is steady however long it streams.
func TestRaftSeesOnlyMembership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, _, reg := cluster2(t, nil)
		const agents = 50
		var as []*testAgent
		for i := range agents {
			node := []string{"L", "F"}[i%2]
			a, err := connect(t, nw, node, hello(fmt.Sprintf("i-%02d", i), 1))
			if err != nil {
				t.Fatal(err)
			}
			as = append(as, a)
		}
		batches := 0
		// One round is one second of the fleet at 1 Hz.
		round := func() {
			for _, a := range as {
				a.send(t, true, smp(time.Now(), "cpu", 50.0, "mem", 20.0))
			}
			batches++
			advance(time.Second)
		}
		allInService := func() bool {
			for i := range agents {
				if reg.state(fmt.Sprintf("i-%02d", i)) != shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE {
					return false
				}
			}
			return true
		}
		round()
		round() // a follower's agents reach the leader one ForwardEvery late
		if !allInService() {
			t.Fatal("agents not all in service after two rounds")
		}
		settled := reg.commitCount()
		for range 50 { // 50 more rounds: 2,500 more batches
			round()
		}
		if got := reg.commitCount(); got != settled {
			reg.mu.Lock()
			t.Errorf("registry commits grew from %d to %d while a steady fleet streamed: %v", settled, got, reg.commits[settled:])
			reg.mu.Unlock()
		}
		if settled > 2*agents {
			t.Errorf("%d commits for %d agents; want at most a registration and one state change each", settled, agents)
		}
		if agg := l.svc.Aggregates("web", time.Minute)["cpu"]; agg.Count != agents || agg.Avg != 50 {
			t.Errorf("cpu aggregate = %+v, want all %d agents at 50", agg, agents)
		}
		t.Logf("%d agents, %d batches each, %d registry commits", agents, batches, settled)
	})
}

func TestLeaderChangeRebuilds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, f, reg := cluster2(t, nil)
		a, err := connect(t, nw, "F", hello("i-1", 1))
		if err != nil {
			t.Fatal(err)
		}
		a.every(t, time.Second, "cpu", 7.0)
		advance(f.cfg.ForwardEvery + l.cfg.ReconcileEvery)
		if st := reg.state("i-1"); st != shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE {
			t.Fatalf("state = %s, want in service", st)
		}
		// F takes over; L steps down.
		f.cluster.set(true, "F")
		l.cluster.set(false, "F")
		// The agent's next sample lands in F's own store.
		advance(time.Second)
		if agg := f.svc.Aggregates("web", 2*time.Second)["cpu"]; agg.Count != 1 || agg.Avg != 7 {
			t.Errorf("aggregate on the new leader = %+v, want i-1 at 7", agg)
		}
		if l.svc.Aggregates("web", time.Second) != nil {
			t.Error("a follower served aggregates")
		}
		// Past StaleAfter in office the new leader judges the registered
		// instances it has no report for; i-1 must not be one of them.
		advance(f.cfg.StaleAfter + f.cfg.ReconcileEvery)
		if st := reg.state("i-1"); st != shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE {
			t.Errorf("state under the new leader = %s, want in service", st)
		}
	})
}

// TestAgentFillsInAddressOfPreRegisteredInstance: the scaler registers a
// group member as pending before its agent is up, without an address; the
// agent's hello must fill it in (the LB needs it) and keep pending until
// the agent says it is ready.
func TestAgentFillsInAddressOfPreRegisteredInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &network{}
		reg := newRegistry()
		ctx := context.Background()
		if err := reg.RegisterInstance(ctx, &shoalv1.Instance{Id: "i-ea41", Fleet: "web", State: shoalv1.InstanceState_INSTANCE_STATE_PENDING}); err != nil {
			t.Fatal(err)
		}
		// A control: in service, and no agent ever reports for it.
		if err := reg.RegisterInstance(ctx, &shoalv1.Instance{Id: "i-0a7e", Fleet: "web", State: shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE, PrivateIp: "127.0.0.8"}); err != nil {
			t.Fatal(err)
		}
		n := startNode(t, nw, "n1", true, "n1", reg, true, nil)
		// Past StaleAfter from taking office (the first reconcile), the
		// leader judges the instances no agent reported.
		advance(n.cfg.StaleAfter + 2*n.cfg.ReconcileEvery)
		if got := reg.state("i-0a7e"); got != shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY {
			t.Fatalf("the unreported in-service instance is %v: the leader has not judged yet", got)
		}
		if got := reg.state("i-ea41"); got != shoalv1.InstanceState_INSTANCE_STATE_PENDING {
			t.Fatalf("an instance whose agent is not up yet went %v, want it to stay pending", got)
		}
		a, err := connect(t, nw, "n1", hello("i-ea41", 1))
		if err != nil {
			t.Fatal(err)
		}
		a.send(t, false, smp(time.Now(), "cpu", 1.0))
		advance(n.cfg.ReconcileEvery)
		in, ok := reg.Instance("i-ea41")
		if !ok || in.GetPrivateIp() != "127.0.0.9" {
			t.Fatalf("one reconcile after the agent's hello: %v, want its address filled in", in)
		}
		if got := in.GetState(); got != shoalv1.InstanceState_INSTANCE_STATE_PENDING {
			t.Fatalf("state = %v, want pending until ready", got)
		}
	})
}

// TestForgetsRetiredSilentInstance: an instance whose agent died without a
// goodbye and which then left the registry (the scaler retired it after its
// termination) must not linger in the leader's view as pending.
func TestForgetsRetiredSilentInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := &network{}
		reg := newRegistry()
		n := startNode(t, nw, "n1", true, "n1", reg, true, nil)
		every := n.cfg.ReconcileEvery
		a, err := connect(t, nw, "n1", hello("i-90e", 1))
		if err != nil {
			t.Fatal(err)
		}
		a.send(t, true, smp(time.Now(), "cpu", 1.0))
		advance(every)
		if got := reg.state("i-90e"); got != shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE {
			t.Fatalf("state = %v, want in service", got)
		}
		a.cancel() // killed: no goodbye
		advance(n.cfg.StaleAfter + every)
		if got := reg.state("i-90e"); got != shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY {
			t.Fatalf("one reconcile after its stream broke and the grace ended: %v, want unhealthy", got)
		}
		if err := reg.LeaveInstance(context.Background(), "i-90e"); err != nil {
			t.Fatal(err)
		}
		advance(every)
		if ins, err := n.svc.Instances("web"); err != nil || len(ins) != 0 {
			t.Fatalf("one reconcile after it left the registry: Instances = %v, %v; want it forgotten", ins, err)
		}
	})
}

package ingest

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// eventLog records what the leader's sink got.
type eventLog struct {
	mu  sync.Mutex
	got []string
}

func (l *eventLog) sink(fleet, id string, ev *shoalv1.InstanceEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, fleet+"/"+id+"/"+eventKindLabel(ev.GetKind())+"/"+ev.GetAction()+ev.GetState())
}

func (l *eventLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func spotEv() *shoalv1.InstanceEvent {
	return &shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION, Action: "terminate", Time: timestamppb.New(time.Now().Add(2 * time.Minute))}
}

func sendEvent(t *testing.T, a *testAgent, ev *shoalv1.InstanceEvent) {
	t.Helper()
	if err := a.sendRaw(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Event{Event: ev}}); err != nil {
		t.Fatal(err)
	}
}

// An event reaches the leader's sink from an agent on the leader at once,
// and from an agent on a follower within one forward flush; readiness is
// not disturbed by it. A new leader behind the same follower hears the
// newest event of each kind again.
func TestEventsReachTheLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log eventLog
		nw, l, f, _ := cluster2(t, func(c *Config) { c.OnEvent = log.sink })
		a, err := connect(t, nw, "L", hello("i-1", 1))
		if err != nil {
			t.Fatal(err)
		}
		a.send(t, true, smp(time.Now(), "cpu", 1.0))
		sendEvent(t, a, spotEv())
		synctest.Wait()
		if got := log.list(); len(got) != 1 || got[0] != "web/i-1/spot_interruption/terminate" {
			t.Fatalf("leader sink = %v", got)
		}
		ins, _ := l.svc.Instances("web")
		if len(ins) != 1 || !ins[0].GetReady() {
			t.Fatalf("an event changed readiness: %v", ins)
		}

		b, err := connect(t, nw, "F", hello("i-2", 1))
		if err != nil {
			t.Fatal(err)
		}
		sendEvent(t, b, &shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_TARGET_LIFECYCLE_STATE, State: "Warmed:Running"})
		advance(f.cfg.ForwardEvery)
		if got := log.list(); len(got) != 2 || got[1] != "web/i-2/target_lifecycle_state/Warmed:Running" {
			t.Fatalf("sink after the follower's flush = %v", got)
		}
		if n := testutil.ToFloat64(l.svc.em.accepted.WithLabelValues("target_lifecycle_state")); n != 1 {
			t.Errorf("accepted target states %v, want 1", n)
		}

		// The follower's forward stream ends (the leader stepped down) and
		// a new one opens: the newest event of each of its agents goes
		// again, because the old leader may have died before acting on it.
		l.cluster.set(false, "L")
		b.send(t, true, smp(time.Now(), "cpu", 1.0))
		advance(f.cfg.ForwardEvery)
		l.cluster.set(true, "L")
		advance(5 * time.Second)
		got := log.list()
		if len(got) < 3 || got[len(got)-1] != "web/i-2/target_lifecycle_state/Warmed:Running" {
			t.Fatalf("sink after the forward stream restarted = %v", got)
		}
	})
}

func TestMalformedEventEndsTheStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log eventLog
		nw, _, _, _ := cluster2(t, func(c *Config) { c.OnEvent = log.sink })
		a, err := connect(t, nw, "L", hello("i-1", 1))
		if err != nil {
			t.Fatal(err)
		}
		sendEvent(t, a, &shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION, Action: "explode"})
		select {
		case err := <-a.done:
			if s, _ := status.FromError(err); s.Code() != codes.InvalidArgument {
				t.Fatalf("stream ended with %v, want InvalidArgument", err)
			}
		case <-time.After(wait):
			t.Fatal("a malformed event was accepted")
		}
		if got := log.list(); len(got) != 0 {
			t.Fatalf("sink got %v", got)
		}
	})
}

package stream

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func spotEvent(sec int64) *shoalv1.InstanceEvent {
	return &shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION, Action: "terminate", Time: timestamppb.New(time.Unix(sec, 0))}
}

// An event queued while no node answers goes out on the first stream, and a
// later stream (another node, possibly behind a new leader) hears the newest
// event of each kind again, so a notice accepted by a node that died before
// acting is not lost.
func TestEventsBufferedAndReplayedOnNewStream(t *testing.T) {
	nw := newNetwork(t)
	a := newNode("a")
	var mu sync.Mutex
	streams := 0
	a.handle = func(st grpc.BidiStreamingServer[shoalv1.ConnectRequest, shoalv1.ConnectResponse]) error {
		mu.Lock()
		streams++
		first := streams == 1
		mu.Unlock()
		if first {
			// Read the two events, then drop the stream.
			for range 2 {
				m, err := st.Recv()
				if err != nil {
					return err
				}
				a.events <- m.GetEvent()
			}
			return status.Error(codes.Unavailable, "node restarting")
		}
		return a.loop(st)
	}
	c := startClient(t, nw, []string{"a"}, nil)
	c.Event(spotEvent(100))
	c.Event(&shoalv1.InstanceEvent{Kind: shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_TARGET_LIFECYCLE_STATE, State: "InService"})
	nw.start(a) // only now can a stream carry them
	recv(t, a.hellos, "first hello")
	if e := recv(t, a.events, "first event"); e.GetAction() != "terminate" || e.GetTime().GetSeconds() != 100 {
		t.Fatalf("first event = %v", e)
	}
	if e := recv(t, a.events, "second event"); e.GetState() != "InService" {
		t.Fatalf("second event = %v", e)
	}
	recv(t, a.hellos, "hello after reconnect")
	// Replayed in kind order: the interruption, then the lifecycle state.
	if e := recv(t, a.events, "replayed interruption"); e.GetKind() != shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION {
		t.Fatalf("first replay = %v", e)
	}
	if e := recv(t, a.events, "replayed state"); e.GetState() != "InService" {
		t.Fatalf("second replay = %v", e)
	}
	c.Event(spotEvent(200))
	if e := recv(t, a.events, "new event"); e.GetTime().GetSeconds() != 200 {
		t.Fatalf("new event = %v", e)
	}
	// The client counts an event sent once its Send returns, which can be
	// just after the node has read it: poll, bounded.
	deadline := time.Now().Add(wait)
	for {
		s := c.Stats()
		if s.EventsSent == 5 && s.EventsDropped == 0 {
			break
		}
		if s.EventsSent > 5 || s.EventsDropped != 0 || time.Now().After(deadline) {
			t.Fatalf("stats = %+v, want 5 sent, 0 dropped", s)
		}
		select {
		case <-time.After(time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

func TestEventQueueBoundedAndDropsCounted(t *testing.T) {
	var e events
	for i := range maxEvents + 3 {
		e.push(spotEvent(int64(i)))
	}
	if len(e.queue) != maxEvents || e.dropped != 3 {
		t.Fatalf("queue %d, dropped %d; want %d, 3", len(e.queue), e.dropped, maxEvents)
	}
	if got := e.peek().GetTime().GetSeconds(); got != 3 {
		t.Fatalf("oldest kept = %d, want 3 (the oldest go first)", got)
	}
	first := e.peek()
	e.done(first)
	e.push(spotEvent(99)) // full again
	e.replay()            // the sent one comes back at the head; the newest unsent stay, the oldest goes
	if len(e.queue) != maxEvents || e.peek() == first || e.dropped != 4 || e.queue[len(e.queue)-1].GetTime().GetSeconds() != 99 {
		t.Fatalf("after replay: queue %d, head %v, dropped %d", len(e.queue), e.peek(), e.dropped)
	}
}

// Streams that end before sending anything replay the sent events once,
// not once per stream.
func TestReplayQueuesEachSentEventOnce(t *testing.T) {
	var e events
	e.push(spotEvent(1))
	e.done(e.peek())
	for range 5 {
		e.replay()
	}
	if len(e.queue) != 1 || e.dropped != 0 {
		t.Fatalf("after 5 replays without a send: queue %d, dropped %d; want 1, 0", len(e.queue), e.dropped)
	}
}

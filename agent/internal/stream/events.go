package stream

import (
	"slices"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// maxEvents bounds the instance events held while no stream can carry them.
// Notices are rare (a handful per instance life), so a full queue means the
// coordinator has been unreachable a long time; the oldest go first and are
// counted.
const maxEvents = 32

// events holds instance events for the stream. Client guards it.
type events struct {
	queue []*shoalv1.InstanceEvent
	// current is the newest event of each kind already sent: a new stream
	// (a reconnect, another node, a new leader behind it) hears it again,
	// because the node that got it before may have died before acting.
	current map[shoalv1.InstanceEventKind]*shoalv1.InstanceEvent
	dropped uint64
	sent    uint64
}

func (e *events) push(ev *shoalv1.InstanceEvent) {
	if len(e.queue) == maxEvents {
		e.queue = append(e.queue[:0:0], e.queue[1:]...)
		e.dropped++
	}
	e.queue = append(e.queue, ev)
}

// replay queues the events already sent on an earlier stream, ahead of the
// unsent ones, in kind order.
func (e *events) replay() {
	var again []*shoalv1.InstanceEvent
	for k := shoalv1.InstanceEventKind(1); int(k) < len(shoalv1.InstanceEventKind_name); k++ {
		// A stream that ended before it sent the last replay left it
		// queued: once is enough, or a flapping stream would fill the
		// queue with copies and count them as drops.
		if ev := e.current[k]; ev != nil && !slices.Contains(e.queue, ev) {
			again = append(again, ev)
		}
	}
	if len(again) == 0 {
		return
	}
	e.queue = append(again, e.queue...)
	if over := len(e.queue) - maxEvents; over > 0 {
		e.queue = e.queue[over:]
		e.dropped += uint64(over)
	}
}

func (e *events) peek() *shoalv1.InstanceEvent {
	if len(e.queue) == 0 {
		return nil
	}
	return e.queue[0]
}

// done removes ev, just sent, from the head of the queue.
func (e *events) done(ev *shoalv1.InstanceEvent) {
	if len(e.queue) > 0 && e.queue[0] == ev {
		e.queue = e.queue[1:]
	}
	if e.current == nil {
		e.current = map[shoalv1.InstanceEventKind]*shoalv1.InstanceEvent{}
	}
	e.current[ev.GetKind()] = ev
	e.sent++
}

// Event queues an instance event for the coordinator. It never blocks; the
// event goes out on the current stream at once, or on the next one.
func (c *Client) Event(ev *shoalv1.InstanceEvent) {
	c.mu.Lock()
	c.events.push(ev)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sendEvents sends every queued event, oldest first.
func (c *Client) sendEvents(send func(*shoalv1.ConnectRequest) error) error {
	for {
		c.mu.Lock()
		ev := c.events.peek()
		c.mu.Unlock()
		if ev == nil {
			return nil
		}
		if err := send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Event{Event: ev}}); err != nil {
			return err
		}
		c.mu.Lock()
		c.events.done(ev)
		c.mu.Unlock()
	}
}

package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
)

const (
	topicCluster = "cluster"
	topicFleets  = "fleets"
	topicFleet   = "fleet:"
	topicLBs     = "lbs"
)

// event is one server-sent event, encoded once for every subscriber.
type event struct {
	name string
	data []byte
}

// frame is ev in text/event-stream form.
func (ev event) frame() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\ndata: ", ev.name)
	b.Write(ev.data)
	b.WriteString("\n\n")
	return b.Bytes()
}

// producer builds a topic's events: first is the event a new subscriber
// gets at once; tick is the next periodic event (nil: nothing new).
type producer interface {
	first(ctx context.Context) event
	tick(ctx context.Context) *event
}

// topic is one producer and its subscribers.
type topic struct {
	name  string
	p     producer
	subs  map[chan []byte]struct{}
	idle  time.Time // when the last subscriber left
	close chan struct{}
}

type hub struct {
	c      *Console
	mu     sync.Mutex
	topics map[string]*topic
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	// ctx ends with close, so a read in progress (a forwarded read to a
	// dead leader) does not hold up the node's shutdown.
	ctx    context.Context
	cancel context.CancelFunc
}

func newHub(c *Console) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{c: c, topics: map[string]*topic{}, done: make(chan struct{}), ctx: ctx, cancel: cancel}
}

func (h *hub) close() {
	h.once.Do(func() { close(h.done); h.cancel() })
	h.wg.Wait()
}

// eventCtx bounds one event's reads: a few periods, and never past close.
func (h *hub) eventCtx(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, 3*h.c.cfg.Every+2*time.Second)
	stop := context.AfterFunc(h.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// subscribe joins topic name, starting its producer when it has none. The
// channel receives encoded frames; a subscriber too slow to take one
// misses it (the next carries the whole current state but the history).
func (h *hub) subscribe(name string, mk func() producer) (*topic, chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.topics[name]
	if !ok {
		t = &topic{name: name, p: mk(), subs: map[chan []byte]struct{}{}, close: make(chan struct{})}
		h.topics[name] = t
		h.wg.Add(1)
		go h.run(t)
	}
	ch := make(chan []byte, 4)
	t.subs[ch] = struct{}{}
	return t, ch
}

func (h *hub) unsubscribe(t *topic, ch chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(t.subs, ch)
	if len(t.subs) == 0 {
		t.idle = h.c.cfg.Now()
	}
}

// run ticks t's producer while it has subscribers, and for Linger after
// the last one left (so a fleet's chart keeps its history), then ends it.
func (h *hub) run(t *topic) {
	defer h.wg.Done()
	tk := time.NewTicker(h.c.cfg.Every)
	defer tk.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-tk.C:
		}
		h.mu.Lock()
		n := len(t.subs)
		if n == 0 && h.c.cfg.Now().Sub(t.idle) >= h.linger(t) {
			delete(h.topics, t.name)
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		ctx, cancel := h.eventCtx(context.Background())
		ev := t.p.tick(ctx)
		cancel()
		if ev == nil {
			continue
		}
		f := ev.frame()
		h.mu.Lock()
		for ch := range t.subs {
			select {
			case ch <- f:
			default:
			}
		}
		h.mu.Unlock()
	}
}

// linger is how long an unwatched topic lives: only fleet charts keep
// history worth keeping.
func (h *hub) linger(t *topic) time.Duration {
	if strings.HasPrefix(t.name, topicFleet) {
		return h.c.cfg.Linger
	}
	return 0
}

// streamWriteTimeout bounds how long one event may take to reach a viewer:
// a viewer that takes nothing (a dead peer, a stalled tab) loses its
// stream and its MaxStreams slot instead of holding them until TCP gives
// up, which takes minutes.
const streamWriteTimeout = 10 * time.Second

// stream serves one page's events: the token is checked for method first
// and again before each event is written, so a deleted or expired token
// ends the stream within a second.
func (c *Console) stream(which func(*http.Request) (topicName, method string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, method := which(r)
		ctx, ok := c.authorize(w, r, method)
		if !ok {
			return
		}
		if _, ok := w.(http.Flusher); !ok {
			http.Error(w, "console: streaming unsupported", http.StatusInternalServerError)
			return
		}
		mk, err := c.producerFor(ctx, name)
		if err != nil {
			writeError(w, err)
			return
		}
		select {
		case c.slot <- struct{}{}:
			defer func() { <-c.slot }()
		default:
			http.Error(w, fmt.Sprintf("console: %d event streams are open on this node; close some pages", c.cfg.MaxStreams), http.StatusServiceUnavailable)
			return
		}
		t, ch := c.hub.subscribe(name, mk)
		defer c.hub.unsubscribe(t, ch)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		rc := http.NewResponseController(w)
		send := func(b []byte) error {
			// A writer without deadlines (ErrNotSupported) stays unbounded.
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if _, err := w.Write(b); err != nil {
				return err
			}
			return rc.Flush()
		}
		fctx, fcancel := c.hub.eventCtx(r.Context())
		first := t.p.first(fctx)
		fcancel()
		if send(first.frame()) != nil {
			return
		}
		auth := r.Header.Get("Authorization")
		for {
			select {
			case <-r.Context().Done():
				return
			case <-c.hub.done:
				return
			case f := <-ch:
				if _, err := c.cfg.Authorize(r.Context(), acl.FullMethod(acl.ControlService, method), auth); err != nil {
					_ = send(event{name: "denied", data: mustJSON(map[string]string{"error": err.Error()})}.frame())
					return
				}
				if send(f) != nil {
					return
				}
			}
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only view types go through here; they always encode.
		panic(err)
	}
	return b
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(mustJSON(v))
}

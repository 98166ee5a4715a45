package console

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/coordinator/internal/authz"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

type statusAPI struct {
	shoalv1.UnimplementedControlServiceServer
	reads atomic.Int64
}

func (s *statusAPI) GetStatus(context.Context, *shoalv1.GetStatusRequest) (*shoalv1.GetStatusResponse, error) {
	s.reads.Add(1)
	return &shoalv1.GetStatusResponse{LeaderId: "n1", NodeId: "n1", Term: 7}, nil
}

// TestStreamEndsWhenTheTokenGoes: a stream opens with a valid token,
// carries events, and ends with a "denied" event once the token is no
// longer accepted; several viewers share one producer's reads.
func TestStreamEndsWhenTheTokenGoes(t *testing.T) {
	api := &statusAPI{}
	var valid atomic.Bool
	valid.Store(true)
	cfg := DefaultConfig()
	cfg.API, cfg.Local, cfg.Every = api, fakeLocal{}, 50*time.Millisecond
	cfg.Authorize = func(ctx context.Context, method, auth string) (context.Context, error) {
		if auth != "Bearer good" || !valid.Load() {
			return nil, status.Error(codes.Unauthenticated, "token refused")
		}
		return authz.WithCaller(ctx, authz.Caller{TokenName: "viewer", Policy: acl.PolicyRead}), nil
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := httptest.NewServer(c)
	defer srv.Close()
	// Bounds every wait below: a stream that never ends fails the test.
	srv.Client().Timeout = 10 * time.Second

	open := func() *bufio.Scanner {
		req, _ := http.NewRequest("GET", srv.URL+"/ui/api/v1/cluster/events", nil)
		req.Header.Set("Authorization", "Bearer good")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return bufio.NewScanner(resp.Body)
	}
	// next returns the next event's name and data.
	next := func(sc *bufio.Scanner) (string, string) {
		var name, data string
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "event: "):
				name = l[7:]
			case strings.HasPrefix(l, "data: "):
				data = l[6:]
			case l == "" && name != "":
				return name, data
			}
		}
		return "", ""
	}
	viewers := []*bufio.Scanner{open(), open(), open()}
	for _, sc := range viewers {
		name, data := next(sc)
		var ev view.ConsoleCluster
		if err := json.Unmarshal([]byte(data), &ev); name != "cluster" || err != nil || ev.Status.Term != 7 || ev.Node != "n1" {
			t.Fatalf("first event %q %s (%v)", name, data, err)
		}
	}
	before := api.reads.Load()
	for range 5 {
		for _, sc := range viewers {
			if name, _ := next(sc); name != "cluster" {
				t.Fatalf("event %q, want cluster", name)
			}
		}
	}
	// 5 periodic events for 3 viewers: one read per tick, not one per
	// viewer, which would be 15 (a few ticks may pass between reads).
	if reads := api.reads.Load() - before; reads > 10 {
		t.Errorf("%d status reads for 5 events to 3 viewers; want one per tick", reads)
	}
	valid.Store(false)
	for _, sc := range viewers {
		for {
			name, _ := next(sc)
			if name == "denied" {
				break
			}
			if name == "" {
				t.Fatal("stream ended without a denied event")
			}
		}
		if name, _ := next(sc); name != "" {
			t.Errorf("event %q after denied; want the stream to end", name)
		}
	}
}

// TestWhoami: operate tokens may write; read tokens may not; without ACLs
// (insecure) everyone may.
func TestWhoami(t *testing.T) {
	for _, tc := range []struct {
		name     string
		insecure bool
		policy   acl.Policy
		want     bool
	}{
		{"read", false, acl.PolicyRead, false},
		{"operate", false, acl.PolicyOperate, true},
		{"admin", false, acl.PolicyAdmin, true},
		{"insecure", true, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.API, cfg.Local, cfg.Insecure = &statusAPI{}, fakeLocal{}, tc.insecure
			cfg.Authorize = func(ctx context.Context, _, _ string) (context.Context, error) {
				if tc.insecure {
					return ctx, nil
				}
				return authz.WithCaller(ctx, authz.Caller{TokenName: "x", Policy: tc.policy}), nil
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			w := httptest.NewRecorder()
			c.ServeHTTP(w, httptest.NewRequest("GET", "/ui/api/v1/whoami", nil))
			var who view.ConsoleWho
			if err := json.Unmarshal(w.Body.Bytes(), &who); err != nil || who.CanOperate != tc.want || who.Insecure != tc.insecure {
				t.Errorf("%s: %+v (%v); want can_operate %v", w.Body, who, err, tc.want)
			}
		})
	}
}

// blockingAPI's GetStatus holds every read until its context ends, as a
// forwarded read to a dead leader does.
type blockingAPI struct {
	shoalv1.UnimplementedControlServiceServer
	in chan struct{}
}

func (b *blockingAPI) GetStatus(ctx context.Context, _ *shoalv1.GetStatusRequest) (*shoalv1.GetStatusResponse, error) {
	select {
	case b.in <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

// TestCloseEndsReadsInProgress: Close (the node's shutdown) cancels a
// producer's read in progress instead of waiting out its timeout.
func TestCloseEndsReadsInProgress(t *testing.T) {
	api := &blockingAPI{in: make(chan struct{}, 2)}
	cfg := DefaultConfig()
	// A read's own bound is 3 periods + 2 s (5 s), more than Close is
	// given below: only Close's cancel can end it in time.
	cfg.API, cfg.Local, cfg.Every = api, fakeLocal{}, time.Second
	cfg.Authorize = func(ctx context.Context, _, _ string) (context.Context, error) { return ctx, nil }
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/ui/api/v1/cluster/events", nil)
	go func() {
		if resp, err := srv.Client().Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	// The stream's first read, then the producer's first tick, both held.
	for i := range 2 {
		select {
		case <-api.in:
		case <-ctx.Done():
			t.Fatalf("read %d never started", i+1)
		}
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(4 * time.Second):
		t.Fatal("Close waits for a read in progress to time out")
	}
}

// TestMaxStreams: past MaxStreams open streams a page is refused with
// 503; a closed stream frees its slot.
func TestMaxStreams(t *testing.T) {
	cfg := DefaultConfig()
	cfg.API, cfg.Local, cfg.MaxStreams = &statusAPI{}, fakeLocal{}, 1
	cfg.Authorize = func(ctx context.Context, _, _ string) (context.Context, error) { return ctx, nil }
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := httptest.NewServer(c)
	defer srv.Close()
	srv.Client().Timeout = 10 * time.Second
	open := func(ctx context.Context) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/ui/api/v1/cluster/events", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ctx1, close1 := context.WithCancel(context.Background())
	first := open(ctx1)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("first stream: %d", first.StatusCode)
	}
	second := open(context.Background())
	second.Body.Close()
	if second.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a stream past MaxStreams: %d, want 503", second.StatusCode)
	}
	close1()
	first.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := open(context.Background())
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the first stream closed: %d, want its slot back", r.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deadlineWriter is a ResponseWriter with write deadlines; it tells, per
// frame written, whether a deadline in the future was set since the last.
type deadlineWriter struct {
	h        http.Header
	mu       sync.Mutex
	deadline time.Time
	frames   chan bool // per Write: a fresh deadline was set
}

func (d *deadlineWriter) Header() http.Header { return d.h }
func (d *deadlineWriter) WriteHeader(int)     {}
func (d *deadlineWriter) Flush()              {}
func (d *deadlineWriter) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deadline = t
	return nil
}
func (d *deadlineWriter) Write(b []byte) (int, error) {
	d.mu.Lock()
	fresh := d.deadline.After(time.Now())
	d.deadline = time.Time{}
	d.mu.Unlock()
	select {
	case d.frames <- fresh:
	default:
	}
	return len(b), nil
}

// TestStreamWritesHaveADeadline: every event is written under a write
// deadline, so a viewer that stops reading loses its stream and slot.
func TestStreamWritesHaveADeadline(t *testing.T) {
	cfg := DefaultConfig()
	cfg.API, cfg.Local, cfg.Every = &statusAPI{}, fakeLocal{}, 20*time.Millisecond
	cfg.Authorize = func(ctx context.Context, _, _ string) (context.Context, error) { return ctx, nil }
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	w := &deadlineWriter{h: http.Header{}, frames: make(chan bool, 8)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "/ui/api/v1/cluster/events", nil))
	}()
	for i := range 3 {
		select {
		case fresh := <-w.frames:
			if !fresh {
				t.Errorf("event %d written without a write deadline", i+1)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d never written", i+1)
		}
	}
	cancel()
	<-done
}

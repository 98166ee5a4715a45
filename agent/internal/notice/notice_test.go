package notice

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoal-dev/shoal/agent/internal/health"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// fakeIMDS is IMDSv2: GETs need the token from PUT /latest/api/token.
type fakeIMDS struct {
	mu     sync.Mutex
	values map[string]string
	tokens int
	denied int
}

const token = "tok-notice"

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut || r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
			http.Error(w, "bad token request", http.StatusBadRequest)
			return
		}
		f.tokens++
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
		_, _ = io.WriteString(w, token)
		return
	}
	if r.Header.Get("X-Aws-Ec2-Metadata-Token") != token {
		f.denied++
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	v, ok := f.values[strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	_, _ = io.WriteString(w, v)
}

func (f *fakeIMDS) set(path, v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v == "" {
		delete(f.values, path)
	} else {
		f.values[path] = v
	}
}

func newWatcher(t *testing.T) (*Watcher, *fakeIMDS, *prometheus.Registry) {
	t.Helper()
	f := &fakeIMDS{values: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.Registerer = srv.URL, reg
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Now = func() time.Time { return time.Unix(1_800_000_000, 0) }
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w, f, reg
}

func count(t *testing.T, w *Watcher, kind string) float64 {
	t.Helper()
	return testutil.ToFloat64(w.notices.WithLabelValues(kind))
}

func TestPollSendsEachNoticeOnce(t *testing.T) {
	w, f, _ := newWatcher(t)
	ctx := context.Background()
	if got := w.Poll(ctx); len(got) != 0 {
		t.Fatalf("no notices (all 404) gave %v", got)
	}
	f.set(PathSpot, `{"action": "terminate", "time": "2027-01-15T08:22:00Z"}`)
	got := w.Poll(ctx)
	if len(got) != 1 || got[0].GetKind() != shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION ||
		got[0].GetAction() != "terminate" || !got[0].GetTime().AsTime().Equal(time.Date(2027, 1, 15, 8, 22, 0, 0, time.UTC)) ||
		got[0].GetObserveTime().GetSeconds() != 1_800_000_000 {
		t.Fatalf("first poll with a notice = %v", got)
	}
	for range 3 {
		if again := w.Poll(ctx); len(again) != 0 {
			t.Fatalf("a repeated notice was sent again: %v", again)
		}
	}
	// A different notice (EC2 moved the time) is new.
	f.set(PathSpot, `{"action": "terminate", "time": "2027-01-15T08:23:00Z"}`)
	f.set(PathRebalance, `{"noticeTime": "2027-01-15T08:20:00Z"}`)
	got = w.Poll(ctx)
	if len(got) != 2 || got[0].GetTime().AsTime().Minute() != 23 || got[1].GetKind() != shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_REBALANCE_RECOMMENDATION {
		t.Fatalf("changed spot notice and new rebalance = %v", got)
	}
	if c := count(t, w, KindSpot); c != 2 {
		t.Errorf("spot notices counted %v, want 2", c)
	}
	if c := count(t, w, KindRebalance); c != 1 {
		t.Errorf("rebalance notices counted %v, want 1", c)
	}
	if f.denied != 0 || f.tokens == 0 {
		t.Errorf("token handling: %d tokens fetched, %d reads denied", f.tokens, f.denied)
	}
}

func TestTargetStateAndWarmGate(t *testing.T) {
	w, f, _ := newWatcher(t)
	ctx := context.Background()
	gate := w.Gate(health.None{})
	if r := gate.Check(ctx); r.Ready {
		t.Fatalf("before the first poll (a warm-pool instance may be booting) readiness = %v, want not ready", r)
	}
	if got := w.Poll(ctx); len(got) != 0 {
		t.Fatalf("poll with no notices = %v", got)
	}
	if r := gate.Check(ctx); !r.Ready {
		t.Fatalf("no target state (outside a group) after a poll: %v", r)
	}
	f.set(PathTargetState, "Warmed:Stopped")
	got := w.Poll(ctx)
	if len(got) != 1 || got[0].GetState() != "Warmed:Stopped" {
		t.Fatalf("poll = %v", got)
	}
	if r := gate.Check(ctx); r.Ready || !strings.Contains(r.Reason, "Warmed:Stopped") {
		t.Fatalf("warm instance readiness = %v, want not ready naming the state", r)
	}
	f.set(PathTargetState, "InService")
	if got := w.Poll(ctx); len(got) != 1 || got[0].GetState() != "InService" {
		t.Fatalf("poll after leaving the pool = %v", got)
	}
	if r := gate.Check(ctx); !r.Ready {
		t.Fatalf("in service readiness = %v", r)
	}
	f.set(PathTargetState, "Terminated")
	if got := w.Poll(ctx); len(got) != 1 || got[0].GetState() != "Terminated" {
		t.Fatalf("poll at termination = %v", got)
	}
	if c := count(t, w, KindTargetState); c != 3 {
		t.Errorf("target states counted %v, want 3", c)
	}
}

func TestBadNoticesAreCountedNotSent(t *testing.T) {
	w, f, _ := newWatcher(t)
	f.set(PathSpot, `{"action": "explode", "time": "2027-01-15T08:22:00Z"}`)
	f.set(PathRebalance, `not json`)
	if got := w.Poll(context.Background()); len(got) != 0 {
		t.Fatalf("bad notices sent: %v", got)
	}
	if c := testutil.ToFloat64(w.errs.WithLabelValues(PathSpot)); c != 1 {
		t.Errorf("spot errors %v, want 1", c)
	}
	if c := testutil.ToFloat64(w.errs.WithLabelValues(PathRebalance)); c != 1 {
		t.Errorf("rebalance errors %v, want 1", c)
	}
}

func TestRunEmitsWithinOnePoll(t *testing.T) {
	w, f, _ := newWatcher(t)
	w.cfg.Poll = 100 * time.Millisecond
	f.set(PathSpot, `{"action": "stop", "time": "2027-01-15T08:22:00Z"}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *shoalv1.InstanceEvent, 4)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(e *shoalv1.InstanceEvent) { got <- e }) }()
	select {
	case e := <-got:
		if e.GetAction() != "stop" {
			t.Fatalf("event = %v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if len(got) != 0 {
		t.Fatalf("repeat emitted: %v", <-got)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.Poll = 10 * time.Millisecond
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "imds-poll") {
		t.Fatalf("err = %v", err)
	}
}

package chaos

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/demoapp"
)

// TestLoadgenRecordsEachRequest: every request is recorded with its
// status and the answering instance; 5xx answers and refused connections
// count as failed; the spike raises the rate.
func TestLoadgenRecordsEachRequest(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(demoapp.InstanceHeader, "i-1")
		if n.Add(1)%10 == 0 {
			http.Error(w, "over capacity", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	t0 := time.Now()
	g := newLoadgen(srv.URL+"/", t0, 20, 100, []Spike{{StartS: 0.5, EndS: 1}})
	g.run(context.Background(), 1500*time.Millisecond)
	reqs := g.requests()
	// 0.5 s at 20/s + 0.5 s at 100/s + 0.5 s at 20/s = 70 requests; a
	// loaded machine may send fewer (the generator never bursts to catch
	// up), never more.
	if len(reqs) < 20 || len(reqs) > 72 {
		t.Fatalf("%d requests in 1.5 s, want at most 70 and more than the baseline's 30", len(reqs))
	}
	failed := 0
	for _, q := range reqs {
		if q.Instance != "i-1" || q.EndMS < q.StartMS {
			t.Fatalf("request %+v", q)
		}
		if q.Failed() {
			failed++
			if q.Err != "over capacity" {
				t.Fatalf("a 503's body was not kept: %+v", q)
			}
		}
	}
	if want := int(n.Load() / 10); failed != want {
		t.Fatalf("%d failed, want %d (every tenth answered 503)", failed, want)
	}
	srv.Close()
	g2 := newLoadgen(srv.URL+"/", time.Now(), 10, 10, nil)
	g2.run(context.Background(), 300*time.Millisecond)
	for _, q := range g2.requests() {
		if !q.Failed() || q.Err == "" {
			t.Fatalf("a request to a closed server: %+v", q)
		}
	}
	if len(g2.requests()) == 0 {
		t.Fatal("no request recorded against a closed server")
	}
}

package chaos

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/demoapp"
)

// Request is one request the load generator sent through shoal-lb. Times
// are milliseconds since the run's start.
type Request struct {
	StartMS int64 `json:"start_ms"`
	EndMS   int64 `json:"end_ms"`
	// Status is the HTTP status, 0 when no answer came.
	Status int    `json:"status"`
	Err    string `json:"err,omitempty"`
	// Instance is the demoapp instance that answered (its header).
	Instance string `json:"instance,omitempty"`
}

// Failed reports whether the request failed: no answer, or a 5xx.
func (r Request) Failed() bool { return r.Status == 0 || r.Status >= 500 }

// Spike is a window of higher load, in seconds since the start.
type Spike struct {
	StartS, EndS float64
}

// loadgen sends requests at a rate that follows the baseline and spikes,
// each on its own goroutine (bounded by maxInFlight), and records each.
type loadgen struct {
	url      string
	t0       time.Time
	baseline int
	spikeRPS int
	spikes   []Spike
	client   *http.Client

	mu   sync.Mutex
	reqs []Request
	// skipped counts requests not sent because maxInFlight were in flight;
	// each is recorded as failed, since the LB did not answer in time.
	skipped int
}

// maxInFlight bounds the generator's goroutines; with the 10 s timeout a
// stuck LB costs at most this many.
const maxInFlight = 512

func newLoadgen(url string, t0 time.Time, baseline, spikeRPS int, spikes []Spike) *loadgen {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	return &loadgen{url: url, t0: t0, baseline: baseline, spikeRPS: spikeRPS, spikes: spikes,
		client: &http.Client{Timeout: 10 * time.Second, Transport: tr}}
}

func (g *loadgen) rateAt(sec float64) int {
	for _, s := range g.spikes {
		if sec >= s.StartS && sec < s.EndS {
			return g.spikeRPS
		}
	}
	return g.baseline
}

// run sends until ctx ends or d passes, then waits for the requests in
// flight (each bounded by the client timeout).
func (g *loadgen) run(ctx context.Context, d time.Duration) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	end := g.t0.Add(d)
	// Requests follow a schedule: each slot's rate is the one at the slot's
	// own time, so a generator that lags sends what was planned, no more.
	next := time.Now()
	for {
		rate := g.rateAt(next.Sub(g.t0).Seconds())
		next = next.Add(time.Second / time.Duration(max(rate, 1)))
		if ctx.Err() != nil || next.After(end) {
			break
		}
		if wait := time.Until(next); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		} else if wait < -time.Second {
			next = time.Now() // fell behind (a loaded machine): do not burst
		}
		select {
		case sem <- struct{}{}:
		default:
			g.mu.Lock()
			g.skipped++
			ms := time.Since(g.t0).Milliseconds()
			g.reqs = append(g.reqs, Request{StartMS: ms, EndMS: ms, Err: "generator: too many requests in flight"})
			g.mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			g.one()
		})
	}
	wg.Wait()
}

func (g *loadgen) one() {
	start := time.Now()
	r := Request{StartMS: start.Sub(g.t0).Milliseconds()}
	resp, err := g.client.Get(g.url)
	if err != nil {
		r.Err = err.Error()
	} else {
		// A failed answer keeps the start of its body: it says whether the
		// LB or the backend refused, and why.
		var head []byte
		if resp.StatusCode >= 500 {
			head, _ = io.ReadAll(io.LimitReader(resp.Body, 160))
		}
		_, cerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r.Status, r.Instance = resp.StatusCode, resp.Header.Get(demoapp.InstanceHeader)
		if len(head) > 0 {
			r.Err = strings.TrimSpace(string(head))
		}
		if cerr != nil {
			r.Status, r.Err = 0, "body: "+cerr.Error()
		}
	}
	r.EndMS = time.Since(g.t0).Milliseconds()
	g.mu.Lock()
	g.reqs = append(g.reqs, r)
	g.mu.Unlock()
}

func (g *loadgen) requests() []Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Request(nil), g.reqs...)
}

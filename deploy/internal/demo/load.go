package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
)

// loadSecond is one per-second line of `shoal-lb loadtest`.
type loadSecond struct {
	requests, errors int
	p99ms            float64
	codes            string
}

// loadTotals is a loadtest's final summary line.
type loadTotals struct {
	requests, ok, errors int
	// unsent counts requests the generator's schedule called for but could
	// not send, every connection being busy: load the fleet never saw.
	unsent int
}

// loadgen is one `shoal-lb loadtest` process; its per-second lines are placed
// on the demo's timeline.
type loadgen struct {
	t0   time.Time
	end  time.Time // when its measured duration ends
	proc *sandbox.Process

	mu      sync.Mutex
	offset  int // timeline second before this process's t=1s
	seconds map[int]loadSecond
	totals  *loadTotals
	done    chan struct{}
}

// startLoad starts loadtest at rate for d against url, writing its CSV.
func startLoad(sb *sandbox.Sandbox, t0 time.Time, name, url string, rate, conns int, d time.Duration, csvPath string) (*loadgen, error) {
	pr, pw := io.Pipe()
	args := []string{"loadtest", "--target", url, "--rate", strconv.Itoa(rate), "--duration", d.String(),
		"--connections", strconv.Itoa(conns), "--streams", "1", "--timeout", "10s", "--csv", csvPath, "--log-level", "warn"}
	p, err := sb.Spawn(name, "shoal-lb", args, pw)
	if err != nil {
		pw.Close()
		return nil, err
	}
	g := &loadgen{t0: t0, end: time.Now().Add(d), proc: p, seconds: map[int]loadSecond{}, offset: -1, done: make(chan struct{})}
	go func() {
		<-p.Done()
		pw.Close()
	}()
	go g.read(pr)
	return g, nil
}

func (g *loadgen) read(r io.Reader) {
	defer close(g.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f := fields(line)
		switch {
		case strings.HasPrefix(line, "t="):
			sec, err := strconv.Atoi(strings.TrimSuffix(f["t"], "s"))
			if err != nil {
				continue
			}
			g.mu.Lock()
			if g.offset < 0 {
				// Place the process's seconds on the timeline once, by when
				// its first second ended, so jitter never shifts a line.
				g.offset = int(math.Round(time.Since(g.t0).Seconds())) - sec
			}
			g.seconds[g.offset+sec] = loadSecond{
				requests: atoi(f["rate"]), errors: atoi(f["err"]),
				p99ms: atof(strings.TrimSuffix(f["p99"], "ms")), codes: f["codes"],
			}
			g.mu.Unlock()
		case strings.HasPrefix(line, "summary "):
			g.mu.Lock()
			g.totals = &loadTotals{requests: atoi(f["requests"]), ok: atoi(f["ok"]), errors: atoi(f["errors"]), unsent: atoi(f["dropped"])}
			g.mu.Unlock()
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// second returns the load measured in timeline second t, if any.
func (g *loadgen) second(t int) (loadSecond, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.seconds[t]
	return s, ok
}

// wait waits for the process and its output, and returns its totals.
func (g *loadgen) wait(ctx context.Context) (loadTotals, error) {
	if err := g.proc.Wait(ctx); err != nil {
		return loadTotals{}, fmt.Errorf("loadtest %s: %w", g.proc.Name, err)
	}
	select {
	case <-g.done:
	case <-ctx.Done():
		return loadTotals{}, ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.totals == nil {
		return loadTotals{}, fmt.Errorf("loadtest %s: no summary line", g.proc.Name)
	}
	return *g.totals, nil
}

// fields parses "k=v k=v" lines.
func fields(line string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func atof(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

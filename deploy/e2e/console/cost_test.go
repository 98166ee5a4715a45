//go:build multiprocess

package console

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times.
const clockTicks = 100

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command may hold spaces; the fields after its ")" are fixed.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// TestFiftyFleetPagesCost is a measured run, not an assertion on speed:
// it reports the serving node's CPU with 50 open fleet pages (50 event
// streams over HTTPS, as browsers hold them) against the same node with
// none before they open. It runs only with
// SHOAL_CONSOLE_COST=1 (`make bench-console`).
func TestFiftyFleetPagesCost(t *testing.T) {
	if os.Getenv("SHOAL_CONSOLE_COST") != "1" {
		t.Skip("a measured run; make bench-console sets SHOAL_CONSOLE_COST=1")
	}
	const pages, period = 50, 20 * time.Second
	bin := testkit.BinDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	opts := sandbox.DefaultOptions()
	opts.BinDir = bin
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if _, err := sb.RunGolden(ctx, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Min: 2, Max: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.WaitInService(ctx, "web", 2, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	readTok := token(t, ctx, sb, "viewer", "read")
	leader, err := sb.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(sb.CACert())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, MaxConnsPerHost: pages}
	hc := &http.Client{Transport: tr}
	url := "https://" + leader.HTTPAddr + "/ui/api/v1/fleets/web/events"

	measure := func() float64 {
		c0, t0 := cpuSeconds(t, leader.Pid()), time.Now()
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(period):
		}
		return (cpuSeconds(t, leader.Pid()) - c0) / time.Since(t0).Seconds()
	}
	idle1 := measure()
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	events := 0
	for range pages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(pctx, "GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+readTok)
			resp, err := hc.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 4<<20)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "event: ") {
					mu.Lock()
					events++
					mu.Unlock()
				}
			}
			_, _ = io.Copy(io.Discard, resp.Body)
		}()
	}
	loaded := measure()
	stop()
	wg.Wait()
	// After the pages close, the fleet's producer keeps reading once a
	// second for the console's Linger (15 min, so a reopened page keeps
	// its chart): this period is not idle, and is reported, not taken as
	// the baseline, or half the producer's cost would count as idle.
	after := measure()
	if events < pages*int(period/time.Second)/2 {
		t.Fatalf("the %d pages received %d events in %v: the streams did not run", pages, events, period)
	}
	t.Logf("leader %s CPU: idle %.2f%% of a core, with %d open fleet pages %.2f%%: the pages add %.2f%% of a core (%d events); after they closed, with the fleet's producer lingering, %.2f%%",
		leader.ID, idle1*100, pages, loaded*100, (loaded-idle1)*100, events, after*100)
}

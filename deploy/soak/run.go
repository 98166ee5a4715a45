package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
)

// Fleet is the soaked fleet, the demo's.
const Fleet = "web"

// ErrFailedRequests: the load saw failed requests.
var ErrFailedRequests = errors.New("failed requests")

// Phase is one stretch of constant offered load.
type Phase struct {
	Start, Length time.Duration
	RPS           int
	Spike         bool
}

// Schedule splits d into baseline and spikes: every SpikeEvery, the last
// SpikeFor of it at SpikeRPS. A run too short for a whole spike ends in a
// shortened one.
func (c Config) Schedule() []Phase {
	var out []Phase
	for at := time.Duration(0); at < c.Duration; {
		base := min(c.SpikeEvery-c.SpikeFor, c.Duration-at)
		out = append(out, Phase{Start: at, Length: base, RPS: c.BaselineRPS})
		at += base
		if at >= c.Duration {
			break
		}
		spike := min(c.SpikeFor, c.Duration-at)
		out = append(out, Phase{Start: at, Length: spike, RPS: c.SpikeRPS, Spike: true})
		at += spike
	}
	return out
}

// Run brings the system up as the demo does, runs the load schedule while
// sampling every process, writes the report and stops everything, also
// when ctx ends. It returns the report, and ErrFailedRequests when any
// request failed.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out := cfg.Out
	opts := sandbox.DefaultOptions()
	opts.BinDir, opts.PublishInterval, opts.KeepDir, opts.AgentHTTPPort = cfg.BinDir, cfg.PublishInterval, cfg.KeepDir, cfg.AgentHTTPPort
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	defer func() {
		cerr := sb.Close()
		left, lerr := sb.Leftovers()
		switch {
		case cerr != nil || lerr != nil:
			err = errors.Join(err, cerr, lerr)
		case len(left) > 0:
			err = errors.Join(err, fmt.Errorf("%w: %v", sandbox.ErrLeftBehind, left))
		}
	}()
	fmt.Fprintf(out, "soak: %d coordinators at %s (secure: %v), sandbox %s\n", len(sb.Nodes()), strings.Join(sb.RPCAddrs(), ", "), sb.Secure(), sb.Dir)
	if _, err := sb.RunGolden(ctx, cfg.Capacity); err != nil {
		return nil, err
	}
	if _, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Fleet: Fleet, Min: cfg.Min, Max: cfg.Max, Metric: "util", Target: cfg.Target, ScaleInWindow: cfg.ScaleInWindow}); err != nil {
		return nil, err
	}
	if err := sb.StartLB(ctx, Fleet); err != nil {
		return nil, err
	}
	if _, err := sb.WaitInService(ctx, Fleet, cfg.Min, 90*time.Second); err != nil {
		return nil, err
	}
	// In service on the coordinators is not yet serving through the LB:
	// its feed and health checks follow. Load starts once the LB answers
	// through each of the fleet's instances, or requests fail for the
	// harness's own haste.
	if err := waitLBServes(ctx, sb, cfg.Min); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "soak: fleet %s serving through %s; %s of load, a spike to %d req/s every %s\n", Fleet, sb.LBURL, cfg.Duration, cfg.SpikeRPS, cfg.SpikeEvery)

	sampler, err := NewSampler(func() ([]Proc, error) { return listProcs(sb) }, time.Now)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sampler.Run(sctx, cfg.SampleEvery) })
	terms := &termWatch{out: out, t0: started}
	wg.Go(func() { terms.run(sctx, sb, cfg.SampleEvery) })
	reqs, spikes, loadErr := runLoad(ctx, sb, cfg)
	// One last point at the end of the load, so every slope spans it.
	_ = sampler.Sample(ctx)
	stopSampling()
	wg.Wait()

	rep = &Report{
		Started: started, DurationS: time.Since(started).Seconds(), WarmUpS: cfg.WarmUp.Seconds(), SampleEvery: cfg.SampleEvery.Seconds(),
		Spikes: spikes, Requests: reqs, Processes: Summarize(sampler.Series(), cfg.WarmUp), MetricsErrors: sampler.MetricsErrors(),
		LeaderChanges: terms.list(),
	}
	if werr := rep.Write(cfg.ReportDir); werr != nil {
		return rep, errors.Join(loadErr, werr)
	}
	_ = WriteTable(out, rep)
	fmt.Fprintf(out, "soak: report in %s\n", cfg.ReportDir)
	if loadErr != nil {
		return rep, loadErr
	}
	if reqs.Failed > 0 {
		return rep, fmt.Errorf("%w: %d of %d", ErrFailedRequests, reqs.Failed, reqs.Total)
	}
	return rep, nil
}

// waitLBServes polls the LB until its answers came from n distinct
// instances (X-Shoal-Instance) and the last 2n answers were all 200.
func waitLBServes(ctx context.Context, sb *sandbox.Sandbox, n int) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	seen := map[string]bool{}
	ok := 0
	return sandbox.Poll(ctx, 60*time.Second, fmt.Sprintf("shoal-lb serving through %d instances", n), func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, sb.LBURL+"/", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			ok = 0
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			ok = 0
			return fmt.Errorf("status %s", resp.Status)
		}
		ok++
		seen[resp.Header.Get("X-Shoal-Instance")] = true
		if len(seen) < n || ok < 2*n {
			return fmt.Errorf("%d instances answered, %d answers in a row", len(seen), ok)
		}
		return nil
	})
}

// termWatch records each leader (and term) the cluster reports, sampled
// with the processes: under a starved CPU raft re-elects, and a failed
// request or a lost CloudWatch period is then read against these.
type termWatch struct {
	out io.Writer
	t0  time.Time

	mu      sync.Mutex
	changes []LeaderChange
}

func (w *termWatch) run(ctx context.Context, sb *sandbox.Sandbox, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := sb.Status(cctx)
		cancel()
		if err == nil && st.LeaderID != "" {
			w.mu.Lock()
			if n := len(w.changes); n == 0 || w.changes[n-1].Term != st.Term {
				c := LeaderChange{T: time.Since(w.t0).Seconds(), At: time.Now().UTC(), Leader: st.LeaderID, Term: st.Term}
				w.changes = append(w.changes, c)
				if n > 0 {
					fmt.Fprintf(w.out, "soak: %s leader %s (term %d)\n", c.At.Format(time.TimeOnly), c.Leader, c.Term)
				}
			}
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *termWatch) list() []LeaderChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]LeaderChange(nil), w.changes...)
}

// listProcs is every process of the system except the load generators,
// which come and go with the schedule and are not under test.
func listProcs(sb *sandbox.Sandbox) ([]Proc, error) {
	ls, err := sb.Processes()
	if err != nil {
		return nil, err
	}
	out := make([]Proc, 0, len(ls))
	for _, l := range ls {
		if p := (Proc{PID: l.PID, Exe: l.Exe, Args: l.Args}); UnderTest(p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// UnderTest says whether p is part of the system rather than of the soak:
// load generators come and go with the schedule, and CLI calls (the soak's
// own status reads, the bootstrap) run the coordinator binary too; only
// `serve` is a node.
func UnderTest(p Proc) bool {
	args := " " + p.Args + " "
	if strings.Contains(args, " loadtest ") {
		return false
	}
	if strings.HasPrefix(filepath.Base(p.Exe), "shoal-coordinator") && !strings.Contains(args, " serve ") {
		return false
	}
	return true
}

// runLoad runs the schedule's phases one after another, each one
// `shoal-lb loadtest` bounded by its phase's length, and adds up their
// summaries.
func runLoad(ctx context.Context, sb *sandbox.Sandbox, cfg Config) (Requests, int, error) {
	var total Requests
	spikes := 0
	for i, ph := range cfg.Schedule() {
		if ph.Length < time.Second {
			continue
		}
		if ph.Spike {
			spikes++
			fmt.Fprintf(cfg.Out, "soak: %s spike %d: %d req/s for %s\n", ph.Start.Round(time.Second), spikes, ph.RPS, ph.Length)
		}
		conns := max(4, ph.RPS/25)
		t, err := loadtest(ctx, sb, "load-"+strconv.Itoa(i+1), sb.LBURL+"/", ph.RPS, conns, ph.Length)
		total.Total += t.Total
		total.OK += t.OK
		total.Failed += t.Failed
		total.Unsent += t.Unsent
		for code, n := range t.FailedByCode {
			if total.FailedByCode == nil {
				total.FailedByCode = map[string]int{}
			}
			total.FailedByCode[code] += n
		}
		if err != nil {
			return total, spikes, err
		}
		if t.Failed > 0 || t.Unsent > 0 {
			fmt.Fprintf(cfg.Out, "soak: phase %d (%d req/s from %s, ended %s): %d of %d requests failed %v, %d unsent (all %d connections waiting)\n",
				i+1, ph.RPS, ph.Start.Round(time.Second), time.Now().UTC().Format(time.TimeOnly), t.Failed, t.Total, t.FailedByCode, t.Unsent, conns)
		}
	}
	return total, spikes, nil
}

// loadtest runs one `shoal-lb loadtest` and returns its summary.
func loadtest(ctx context.Context, sb *sandbox.Sandbox, name, url string, rps, conns int, d time.Duration) (Requests, error) {
	pr, pw := io.Pipe()
	args := []string{"loadtest", "--target", url, "--rate", strconv.Itoa(rps), "--duration", d.String(),
		"--connections", strconv.Itoa(conns), "--streams", "1", "--timeout", "10s", "--log-level", "warn"}
	p, err := sb.Spawn(name, "shoal-lb", args, pw)
	if err != nil {
		pw.Close()
		return Requests{}, err
	}
	go func() {
		<-p.Done()
		pw.Close()
	}()
	sum := make(chan *Requests, 1)
	go func() { sum <- parseLoadOutput(pr) }()
	wctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	if err := p.Wait(wctx); err != nil {
		_ = p.Stop(time.Second)
		return Requests{}, fmt.Errorf("loadtest %s: %w", name, err)
	}
	select {
	case r := <-sum:
		if r == nil {
			return Requests{}, fmt.Errorf("loadtest %s: no summary line", name)
		}
		return *r, nil
	case <-wctx.Done():
		return Requests{}, fmt.Errorf("loadtest %s: %w", name, wctx.Err())
	}
}

// ParseSummary reads loadtest's output to the end and returns its
// "summary requests=N ok=N errors=N ..." line, or nil without one.
func ParseSummary(r io.Reader) *Requests {
	var out *Requests
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "summary ")
		if !ok {
			continue
		}
		f := map[string]int{}
		for _, kv := range strings.Fields(rest) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				if n, err := strconv.Atoi(v); err == nil {
					f[k] = n
				}
			}
		}
		out = &Requests{Total: f["requests"], OK: f["ok"], Failed: f["errors"], Unsent: f["dropped"]}
	}
	return out
}

// parseLoadOutput is ParseSummary plus the "errors_by_code" line.
func parseLoadOutput(r io.Reader) *Requests {
	var out *Requests
	codes := map[string]int{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "errors_by_code "); ok {
			for _, kv := range strings.Fields(rest) {
				for _, part := range strings.Split(kv, ";") {
					if k, v, ok := strings.Cut(part, "="); ok {
						if n, err := strconv.Atoi(v); err == nil {
							codes[k] += n
						}
					}
				}
			}
			continue
		}
		if r := ParseSummary(strings.NewReader(line)); r != nil {
			out = r
		}
	}
	_, _ = io.Copy(io.Discard, r)
	if out != nil && len(codes) > 0 {
		out.FailedByCode = codes
	}
	_, _ = io.Copy(io.Discard, r)
	return out
}

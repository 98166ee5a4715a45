package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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
	fmt.Fprintf(out, "soak: fleet %s serving through %s; %s of load, a spike to %d req/s every %s\n", Fleet, sb.LBURL, cfg.Duration, cfg.SpikeRPS, cfg.SpikeEvery)

	sampler, err := NewSampler(func() ([]Proc, error) { return listProcs(sb) }, time.Now)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sampler.Run(sctx, cfg.SampleEvery) })
	reqs, spikes, loadErr := runLoad(ctx, sb, cfg)
	// One last point at the end of the load, so every slope spans it.
	_ = sampler.Sample(ctx)
	stopSampling()
	wg.Wait()

	rep = &Report{
		Started: started, DurationS: time.Since(started).Seconds(), WarmUpS: cfg.WarmUp.Seconds(), SampleEvery: cfg.SampleEvery.Seconds(),
		Spikes: spikes, Requests: reqs, Processes: Summarize(sampler.Series(), cfg.WarmUp), MetricsErrors: sampler.MetricsErrors(),
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

// listProcs is every process of the system except the load generators,
// which come and go with the schedule and are not under test.
func listProcs(sb *sandbox.Sandbox) ([]Proc, error) {
	ls, err := sb.Processes()
	if err != nil {
		return nil, err
	}
	out := make([]Proc, 0, len(ls))
	for _, l := range ls {
		if strings.Contains(" "+l.Args+" ", " loadtest ") {
			continue
		}
		out = append(out, Proc{PID: l.PID, Exe: l.Exe, Args: l.Args})
	}
	return out, nil
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
		if err != nil {
			return total, spikes, err
		}
		if t.Failed > 0 {
			fmt.Fprintf(cfg.Out, "soak: phase %d (%d req/s from %s): %d of %d requests failed\n", i+1, ph.RPS, ph.Start.Round(time.Second), t.Failed, t.Total)
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
	go func() { sum <- ParseSummary(pr) }()
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
		out = &Requests{Total: f["requests"], OK: f["ok"], Failed: f["errors"]}
	}
	_, _ = io.Copy(io.Discard, r)
	return out
}

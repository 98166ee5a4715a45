package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Config configures a run; start from DefaultConfig.
type Config struct {
	// BinDir holds `make build`'s binaries, shoal-coordinator-failpoints
	// among them. Required.
	BinDir string
	// ReportDir receives report.json, records.json and timeline.svg
	// (default chaos-report).
	ReportDir string
	// Seed draws the faults and their timing; Fixed runs FixedScript
	// instead (no randomness).
	Seed  uint64
	Fixed bool
	// Duration is a seeded run's load time, faults included (default 5m).
	Duration time.Duration
	// Nodes is the coordinator count: 3 (default) or 5.
	Nodes int
	// BaselineRPS and SpikeRPS are the load through shoal-lb (30 and 90);
	// Capacity is each instance's demoapp capacity in requests/s (50).
	BaselineRPS, SpikeRPS, Capacity int
	// KeepDir keeps the sandbox's directory (every process's log).
	KeepDir bool
	// Out receives progress lines.
	Out io.Writer
}

// DefaultConfig is a 3-node, 5-minute seeded run at demo-like load.
func DefaultConfig() Config {
	return Config{ReportDir: "chaos-report", Seed: 1, Duration: 5 * time.Minute, Nodes: 3,
		BaselineRPS: 30, SpikeRPS: 90, Capacity: 50, Out: io.Discard}
}

// Validate names the field that is wrong and why; it changes nothing.
func (c Config) Validate() error {
	switch {
	case c.BinDir == "":
		return errors.New("bin dir: required (the directory `make build` fills)")
	case c.ReportDir == "":
		return errors.New("report dir: required")
	case c.Nodes != 3 && c.Nodes != 5:
		return fmt.Errorf("nodes (%d): must be 3 or 5", c.Nodes)
	case !c.Fixed && (c.Duration < 30*time.Second || c.Duration > 24*time.Hour):
		return fmt.Errorf("duration (%s): must be between 30s and 24h", c.Duration)
	case c.BaselineRPS < 1 || c.SpikeRPS < c.BaselineRPS || c.SpikeRPS > 2000:
		return fmt.Errorf("load (baseline %d, spike %d req/s): need 1 <= baseline <= spike <= 2000", c.BaselineRPS, c.SpikeRPS)
	case c.Capacity < 1:
		return fmt.Errorf("capacity (%d): must be >= 1", c.Capacity)
	case c.Out == nil:
		return errors.New("out: required (io.Discard for silence)")
	}
	return nil
}

// Script is the run's plan: FixedScript, or drawn from Seed for Duration.
func (c Config) Script() Script {
	if c.Fixed {
		return FixedScript()
	}
	s := SeededScript(c.Seed, c.Duration-20*time.Second)
	s.Settle = 20 * time.Second
	return s
}

// Result is a finished run.
type Result struct {
	Records    *Records
	Invariants []Invariant
	Report     Report
	// Wall is the whole run's time, start-up and checks included.
	Wall time.Duration
	// Links counts the connections each directed link's proxies accepted
	// ("n1→n2": 14): a link at 0 was bypassed, and its faults proved nothing.
	Links map[string]int
}

const (
	fleetName = "web"
	fleetMin  = 2
	fleetMax  = 6
)

// Run brings the system up behind the proxies, runs the script under load
// with the operator's commands, heals, collects the records, checks them
// and writes the report. It returns an error only when the run itself
// could not happen; broken invariants are in the result.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	script := cfg.Script()
	if err := script.Validate(); err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	began := time.Now()
	var logMu sync.Mutex
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(cfg.Out, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05.000")}, args...)...)
	}
	w := &wiring{net: NewNet()}
	defer w.net.Close()
	opts := sandbox.DefaultOptions()
	opts.BinDir, opts.Nodes, opts.KeepDir = cfg.BinDir, cfg.Nodes, cfg.KeepDir
	opts.CoordinatorBin = "shoal-coordinator-failpoints"
	opts.Prepare = w.prepare
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	defer func() {
		if cerr := sb.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	logf("sandbox up in %s: %d nodes, every link behind a proxy (%d endpoints); logs in %s", time.Since(began).Round(time.Millisecond), cfg.Nodes, len(w.net.Endpoints()), sb.Dir)

	if _, err := sb.RunGolden(ctx, cfg.Capacity); err != nil {
		return nil, err
	}
	if _, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Fleet: fleetName, Min: fleetMin, Max: fleetMax,
		Extra: []string{"--coordinators", strings.Join(w.agents, ",")}}); err != nil {
		return nil, err
	}
	if err := sb.StartLBAt(ctx, fleetName, w.lb); err != nil {
		return nil, err
	}
	if _, err := sb.WaitInService(ctx, fleetName, fleetMin, 90*time.Second); err != nil {
		return nil, err
	}
	if err := waitLB(ctx, sb.LBURL); err != nil {
		return nil, err
	}
	logf("fleet %s serving through shoal-lb at %s", fleetName, sb.LBURL)

	t0 := time.Now()
	op, ccs, err := newOperator(sb.Dial, w.operator, fleetName, fleetMin, fleetMax, t0, cfg.Seed)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, cc := range ccs {
			cc.Close()
		}
	}()
	if err := op.loadPolicy(ctx); err != nil {
		return nil, err
	}
	rec := &Records{Seed: cfg.Seed, T0MS: t0.UnixMilli(), Fleet: fleetName, Min: fleetMin, Max: fleetMax,
		EvalIntervalMS: opts.EvalInterval.Milliseconds(), PublishIntervalMS: opts.PublishInterval.Milliseconds(),
		DrainTimeoutMS: opts.DrainTimeout.Milliseconds(), InitialTarget: op.policy.GetTargetTracking()[0].GetTarget(),
		BackendKills: []BackendKill{}}

	total := script.End() + script.Settle
	if !cfg.Fixed {
		total = cfg.Duration
	}
	logf("load and faults for %s: %d faults, %d spikes (seed %d, fixed=%v)", total, len(script.Steps), len(script.Spikes), cfg.Seed, cfg.Fixed)
	load := newLoadgen(sb.LBURL+"/", t0, cfg.BaselineRPS, cfg.SpikeRPS, script.Spikes)
	nem := newNemesis(sb, w, t0, logf)
	runCtx, stopRun := context.WithTimeout(ctx, total)
	defer stopRun()
	// The operator stops with the faults' settle time to spare, so the
	// checks see a quiet system.
	opCtx, stopOp := context.WithTimeout(ctx, script.End()+script.Settle/2)
	defer stopOp()
	var wg sync.WaitGroup
	wg.Go(func() { load.run(runCtx, total) })
	wg.Go(func() { op.run(opCtx) })
	wg.Go(func() { nem.run(runCtx, script) })
	wg.Go(func() { nem.supervise(runCtx) })
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	w.net.Heal()
	logf("load over: %d requests; collecting records", len(load.requests()))

	// Every node up for the FSM comparison (a detected disk fault may have
	// ended one that the supervisor had no time to restart). A node that
	// will not start is a finding, not the end of the run: its FSM reads as
	// an error.
	for _, n := range sb.Nodes() {
		if !n.Alive() {
			if err := sb.RestartNode(ctx, n); err != nil {
				logf("%s does not start after the faults: %v", n.ID, err)
			}
		}
	}
	rec.Requests, rec.Ops, rec.Faults = load.requests(), op.history(), nem.recorded()
	if rec.Faults == nil {
		rec.Faults = []Fault{}
	}
	leader, err := sb.Leader(ctx)
	if err != nil {
		return nil, err
	}
	cc, err := sb.Dial(leader.RPCAddr)
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	ctl := shoalv1.NewControlServiceClient(cc)
	if err := collect(ctx, sb, ctl, rec); err != nil {
		return nil, err
	}
	logf("records: %s", rec.Coverage())
	invs := Check(rec)
	rep := NewReport(rec, invs)
	if err := WriteReport(cfg.ReportDir, rec, rep); err != nil {
		return nil, err
	}
	for _, inv := range invs {
		mark := "✓"
		if !inv.OK {
			mark = "✗"
		}
		logf("%s %s %s", mark, inv.Name, strings.Join(inv.Counterexamples, "; "))
	}
	logf("report in %s: %d requests, %d failed", cfg.ReportDir, rep.Requests.Total, rep.Requests.Failed)
	return &Result{Records: rec, Invariants: invs, Report: rep, Wall: time.Since(began), Links: w.net.Accepted()}, nil
}

// collect reads the independent records into rec.
func collect(ctx context.Context, sb *sandbox.Sandbox, ctl shoalv1.ControlServiceClient, rec *Records) error {
	cfg, err := sb.AWSConfig(ctx)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	f, err := ctl.GetFleet(fctx, &shoalv1.GetFleetRequest{Fleet: rec.Fleet})
	cancel()
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	rec.Group = f.GetFleet().GetAsg()
	checkedFrom := time.Since(time.UnixMilli(rec.T0MS)).Milliseconds()
	rec.Convergence = converge(ctx, cfg, ctl, rec.Fleet, rec.Group, 30*time.Second)
	rec.Convergence.CheckedFromMS = checkedFrom
	if rec.Decisions, err = readDecisions(ctx, ctl, rec.Fleet); err != nil {
		return err
	}
	rec.FSM = readFSMs(ctx, sb, 30*time.Second)
	if rec.Audit, err = readAudit(ctx, sb.CloudURL); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if rec.Periods, err = readPeriods(pctx, cfg, time.UnixMilli(rec.T0MS)); err != nil {
		return err
	}
	return nil
}

// waitLB waits for one request answered 200 through the LB.
func waitLB(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	return sandbox.Poll(ctx, 30*time.Second, "a request answered through shoal-lb", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

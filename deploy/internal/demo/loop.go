package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// load runs the load profile through the load balancer (through both in a
// compare run, at the same moments and rates), prints one line per second
// and returns the summary.
func (r *run) load(ctx context.Context) (*Summary, error) {
	cfg := r.cfg
	// Start on a whole second so timeline seconds are clock seconds.
	r.t0 = time.Now().Truncate(time.Second).Add(time.Second)
	baseline := int(cfg.Baseline.Round(time.Second) / time.Second)
	if cfg.AlignSpike {
		for (r.t0.Unix()+int64(baseline))%10 != 0 {
			baseline++
		}
	}
	spike := int(cfg.Spike.Round(time.Second) / time.Second)
	total := baseline + spike + int(cfg.Recovery.Round(time.Second)/time.Second)
	r.spikeAt, r.spikeEnd, r.loadEnd = baseline, baseline+spike, total
	if err := sleepUntil(ctx, r.t0); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.ReportDir, 0o755); err != nil {
		return nil, err
	}
	// The generators run in the sandbox's directory.
	reportDir, err := filepath.Abs(cfg.ReportDir)
	if err != nil {
		return nil, err
	}
	base, err := startLoad(r.sb, r.t0, "load-baseline", r.sb.LBURL+"/", cfg.BaselineRPS, r.conns(8), time.Duration(total)*time.Second,
		filepath.Join(reportDir, "load-baseline.csv"))
	if err != nil {
		return nil, err
	}
	gens := []*loadgen{base}
	if r.aws != nil {
		g, err := startLoad(r.sb, r.t0, "load-baseline-aws", r.aws.lbURL+"/", cfg.BaselineRPS, r.conns(8), time.Duration(total)*time.Second,
			filepath.Join(reportDir, "load-baseline-aws.csv"))
		if err != nil {
			_ = base.proc.Stop(time.Second)
			return nil, err
		}
		r.aws.gens = append(r.aws.gens, g)
	}
	fmt.Fprintf(cfg.Out, "\nload: %d req/s now; spike to %d req/s at t=%ds for %ds; back to %d req/s until t=%ds\n\n",
		cfg.BaselineRPS, cfg.SpikeRPS, baseline, spike, cfg.BaselineRPS, total)
	if r.aws != nil {
		fmt.Fprintf(cfg.Out, "(each fleet gets that load through its own load balancer; the recovery ends once both are back at %d)\n\n", cfg.Min)
		printCompareHeader(cfg.Out)
	} else {
		fmt.Fprintf(cfg.Out, "%4s %5s %9s %7s %7s %10s %8s  %s\n", "t", "rps", "p99", "cpu_avg", "desired", "in_service", "draining", "decision")
	}

	var runErr error
	failures := 0
	settle := total + 45 // observe past the load until the fleet is back at min
	if r.aws != nil {
		settle = total
	}
	stoppedEarly := false
	for k := 1; k <= settle; k++ {
		if err := sleepUntil(ctx, r.t0.Add(time.Duration(k)*time.Second)); err != nil {
			runErr = err
			break
		}
		if k == baseline {
			if runErr = r.startSpike(reportDir, spike, &gens); runErr != nil {
				break
			}
		}
		// Half a second for the generators' lines on second k to arrive.
		if err := sleepUntil(ctx, r.t0.Add(time.Duration(k)*time.Second+500*time.Millisecond)); err != nil {
			runErr = err
			break
		}
		all := gens
		if r.aws != nil {
			all = append(append([]*loadgen(nil), gens...), r.aws.gens...)
		}
		if err := early(all, r.t0.Add(time.Duration(k)*time.Second)); err != nil {
			runErr = err
			break
		}
		row, err := r.sample(ctx, k, gens)
		if err != nil {
			// A slow answer (an election, a loaded machine) keeps the last
			// fleet state for a row; only a coordinator gone for good ends
			// the run.
			if failures++; failures >= 5 || ctx.Err() != nil {
				runErr = fmt.Errorf("t=%ds: %w", k, err)
				break
			}
			fmt.Fprintf(cfg.Out, "     # t=%ds: coordinator did not answer in time: %v\n", k, err)
			if n := len(r.rows); n > 0 {
				prev := r.rows[n-1]
				row.Desired, row.InService, row.Draining, row.CPUAvg, row.CPUKnown, row.Running = prev.Desired, prev.InService, prev.Draining, prev.CPUAvg, prev.CPUKnown, prev.Running
				if prev.AWS != nil && row.AWS != nil {
					keep := *prev.AWS
					keep.RPS, keep.Errors, keep.P99ms, keep.Change = row.AWS.RPS, row.AWS.Errors, row.AWS.P99ms, ""
					row.AWS = &keep
				}
			}
		} else {
			failures = 0
		}
		r.rows = append(r.rows, row)
		if r.aws != nil {
			printCompareLine(cfg.Out, row)
		} else {
			cpu := "-"
			if row.CPUKnown {
				cpu = fmt.Sprintf("%.1f", row.CPUAvg)
			}
			fmt.Fprintf(cfg.Out, "%4d %5d %7.1fms %7s %7d %10d %8d  %s\n", row.T, row.RPS, row.P99ms, cpu, row.Desired, row.InService, row.Draining, row.Decision)
		}
		if k%2 == 0 || k >= total {
			ch, _, err := r.obs.alarmChanges(ctx, k)
			if err == nil {
				for _, c := range ch {
					fmt.Fprintf(cfg.Out, "     # alarm %s: %s → %s\n", c.Name, c.From, c.To)
				}
				r.changes = append(r.changes, ch...)
			}
		}
		if r.aws != nil {
			// The recovery ends once both fleets are back at min (5 s on,
			// so the chart shows it), or when the run's budget runs out.
			if k > r.spikeEnd && r.bothAtMinFor(5) {
				stoppedEarly = true
				break
			}
			if cfg.Budget > 0 && time.Since(r.began) >= cfg.Budget {
				fmt.Fprintf(cfg.Out, "     # t=%ds: the run's budget (%s) is spent; stopping the load\n", k, cfg.Budget)
				stoppedEarly = true
				break
			}
			continue
		}
		// Past the load, stop once the fleet is back at min and the high
		// alarm no longer fires.
		if k >= total && row.Desired == cfg.Min && row.InService == cfg.Min && row.Draining == 0 && !r.obs.firing() {
			break
		}
	}
	if stoppedEarly {
		// The generators print their totals on SIGINT.
		r.loadEnd = len(r.rows)
		for _, g := range r.allGens(gens) {
			_ = g.proc.Signal(syscall.SIGINT)
		}
	}
	totals, awsTotals := loadTotals{}, loadTotals{}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	for _, g := range r.allGens(gens) {
		if runErr != nil {
			_ = g.proc.Stop(time.Second)
			continue
		}
		t, err := g.wait(wctx)
		if err != nil {
			runErr = err
			continue
		}
		sum := &totals
		if r.aws != nil && strings.HasSuffix(g.proc.Name, "-aws") {
			sum = &awsTotals
		}
		sum.requests += t.requests
		sum.ok += t.ok
		sum.errors += t.errors
		sum.unsent += t.unsent
	}
	if len(r.rows) == 0 {
		return nil, runErr
	}
	launches := r.launches(wctx)
	s := r.summarise(totals, runErr == nil)
	s.Fleets = r.fleetResults(s, totals, awsTotals, runErr == nil, launches)
	if r.aws != nil {
		sent, dropped, last := r.aws.agent.counts()
		s.AWSAgent = &AgentCounts{Sent: sent, Dropped: dropped}
		if last != nil {
			s.AWSAgent.LastErr = last.Error()
		}
	}
	return s, runErr
}

// startSpike starts the spike's generators: one per load balancer.
func (r *run) startSpike(reportDir string, spike int, gens *[]*loadgen) error {
	cfg := r.cfg
	g, err := startLoad(r.sb, r.t0, "load-spike", r.sb.LBURL+"/", cfg.SpikeRPS-cfg.BaselineRPS, r.conns(16), time.Duration(spike)*time.Second,
		filepath.Join(reportDir, "load-spike.csv"))
	if err != nil {
		return err
	}
	*gens = append(*gens, g)
	if r.aws == nil {
		return nil
	}
	g, err = startLoad(r.sb, r.t0, "load-spike-aws", r.aws.lbURL+"/", cfg.SpikeRPS-cfg.BaselineRPS, r.conns(16), time.Duration(spike)*time.Second,
		filepath.Join(reportDir, "load-spike-aws.csv"))
	if err != nil {
		return err
	}
	r.aws.gens = append(r.aws.gens, g)
	return nil
}

// conns is a generator's connection count: the default run's n, or 32
// times n in a compare run (256 for the baseline, 512 for the spike).
// A fleet that cannot keep up holds each request for seconds (AWS's, for
// half a minute); with too few connections the generator would stop
// sending instead of offering the load, and the load the fleet could not
// take would go unseen. The 768 stay under the 1,000 requests two
// instances queue (demoapp's 500 each), so an overloaded fleet queues
// rather than answers 503, which would make the load balancer eject its
// backends and skew the metric. Requests the generator still could not
// send are counted (loadTotals.unsent) and reported as failed.
func (r *run) conns(n int) int {
	if r.aws == nil {
		return n
	}
	return 32 * n
}

func (r *run) allGens(gens []*loadgen) []*loadgen {
	if r.aws == nil {
		return gens
	}
	return append(append([]*loadgen(nil), gens...), r.aws.gens...)
}

// bothAtMinFor reports whether the last n rows have both fleets at min
// with nothing draining.
func (r *run) bothAtMinFor(n int) bool {
	if len(r.rows) < n {
		return false
	}
	for _, row := range r.rows[len(r.rows)-n:] {
		if row.Desired != r.cfg.Min || row.InService != r.cfg.Min || row.Draining != 0 || row.AWS == nil || !row.AWS.atMin(r.cfg.Min) {
			return false
		}
	}
	return true
}

// early reports a generator that ended before its duration.
func early(gens []*loadgen, now time.Time) error {
	for _, g := range gens {
		if g.proc.Exited() && now.Before(g.end.Add(-time.Second)) {
			return fmt.Errorf("loadtest %s ended early: %v (see its log in the sandbox's logs/)", g.proc.Name, g.proc.Wait(context.Background()))
		}
	}
	return nil
}

// sample builds timeline row k from the load generators and the coordinators.
func (r *run) sample(ctx context.Context, k int, gens []*loadgen) (Row, error) {
	row := Row{T: k}
	for _, g := range gens {
		if s, ok := g.second(k); ok {
			row.RPS += s.requests
			row.Errors += s.errors
			// p99 of the union is at most the larger p99; the spike
			// generator carries most requests when both run.
			row.P99ms = max(row.P99ms, s.p99ms)
		}
	}
	running, ierr := r.running(ctx)
	row.Running = running[r.group]
	if r.aws != nil {
		a, err := r.aws.sample(ctx, k, running)
		row.AWS = &a
		if err != nil {
			return row, err
		}
	}
	if ierr != nil {
		return row, ierr
	}
	st, err := r.obs.state(ctx)
	if err != nil {
		return row, err
	}
	row.Desired, row.InService, row.Draining = st.desired, st.inService, st.draining
	row.CPUAvg, row.CPUKnown = st.metricAvg, st.metricOK
	ds, err := r.obs.newDecisions(ctx)
	if err != nil {
		return row, err
	}
	var marks []string
	for _, d := range ds {
		at := d.GetCreateTime().AsTime()
		m := DecisionMark{T: at.Sub(r.t0).Seconds(), From: int(d.GetPreviousCapacity()), To: int(d.GetCapacity()), Reason: d.GetReason(), Source: sourceWord(d.GetSource())}
		r.decisions = append(r.decisions, m)
		marks = append(marks, fmt.Sprintf("%d->%d", m.From, m.To))
	}
	row.Decision = strings.Join(marks, " ")
	return row, nil
}

// running counts each group's instances that are pending or running in
// the local cloud.
func (r *run) running(ctx context.Context) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	insts, err := r.sb.Instances(ctx)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	out := map[string]int{}
	for _, in := range insts {
		if in.Group != "" && (in.State == "pending" || in.State == "running") {
			out[in.Group]++
		}
	}
	return out, nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
)

// Fleet is the demo fleet's name.
const Fleet = "web"

// metric is the policy's custom metric: demoapp_utilization as the agent
// forwards it.
const metric = "util"

// Inspect runs after the report is written and before everything is
// stopped, with the system still up (the e2e test checks CloudWatch there).
type Inspect func(ctx context.Context, sb *sandbox.Sandbox, sum *Summary) error

// Run brings the system up, runs the load profile, writes the report and
// stops everything, also when ctx is cancelled (Ctrl-C). Start cfg from
// DefaultConfig; inspect may be nil.
func Run(ctx context.Context, cfg Config, inspect Inspect) (sum *Summary, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	out := cfg.Out
	if cfg.Scenario == ScenarioSpot {
		fmt.Fprintf(out, "Shoal demo, spot scenario: up to %s of %d req/s on a fleet held at %d instances of %d req/s (max %d), two Spot interruptions\n",
			cfg.Total(), cfg.BaselineRPS, cfg.Min, cfg.Capacity, cfg.Max)
	} else {
		fmt.Fprintf(out, "Shoal demo: %s of load (%d req/s baseline, %d req/s spike for %s), fleet %d–%d instances of %d req/s, target %s %.0f\n",
			cfg.Total(), cfg.BaselineRPS, cfg.SpikeRPS, cfg.Spike, cfg.Min, cfg.Max, cfg.Capacity, metric, cfg.Target)
	}

	opts := sandbox.DefaultOptions()
	opts.BinDir, opts.PublishInterval, opts.KeepDir = cfg.BinDir, cfg.PublishInterval, cfg.KeepDir
	if cfg.Scenario == ScenarioSpot {
		opts.CoordinatorArgs = append(opts.CoordinatorArgs, "--spot-drain-margin", cfg.SpotDrainMargin.String())
	}
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	defer func() {
		fmt.Fprintln(out, "stopping everything…")
		cerr := sb.Close()
		left, lerr := sb.Leftovers()
		switch {
		case cerr != nil || lerr != nil:
			err = errors.Join(err, cerr, lerr)
		case len(left) > 0:
			err = errors.Join(err, fmt.Errorf("%w: %v", sandbox.ErrLeftBehind, left))
		default:
			fmt.Fprintln(out, "stopped: no process left behind")
		}
	}()
	if cfg.KeepDir {
		fmt.Fprintf(out, "sandbox (data and every process's log): %s\n", sb.Dir)
	}
	fmt.Fprintf(out, "✓ local cloud (EC2, Auto Scaling, CloudWatch) at %s\n", sb.CloudURL)
	fmt.Fprintf(out, "✓ coordinator cluster: %d raft nodes at %s\n", len(sb.Nodes()), strings.Join(sb.RPCAddrs(), ", "))
	if sb.Secure() {
		fmt.Fprintf(out, "✓ mutual TLS on every connection (CA %s), agents enroll with signed identity documents, ACLs bootstrapped\n", sb.CACert())
	}

	if err := printConsole(ctx, out, sb); err != nil {
		return nil, err
	}

	golden, err := sb.RunGolden(ctx, cfg.Capacity)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "✓ golden instance %s: demoapp (%d req/s) + shoal-agent scraping demoapp_utilization\n", golden, cfg.Capacity)

	raw, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Fleet: Fleet, Min: cfg.Min, Max: cfg.Max, Metric: metric, Target: cfg.Target, ScaleInWindow: cfg.ScaleInWindow})
	if err != nil {
		return nil, err
	}
	var made []Made
	if err := json.Unmarshal(raw, &made); err != nil {
		return nil, fmt.Errorf("bootstrap output %q: %w", raw, err)
	}
	fmt.Fprintf(out, "✓ shoal-coordinator fleet bootstrap %s --from-instance %s:\n", Fleet, golden)
	for _, m := range made {
		fmt.Fprintf(out, "    %-20s %-28s %s\n", m.Kind, m.ID, m.Note)
	}

	if err := sb.StartLB(ctx, Fleet); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "✓ load balancer shoal-lb at %s, backends fed by the coordinators\n", sb.LBURL)

	obs, err := newObserver(sb.Dial, sb.RPCAddrs()[0], Fleet, metric)
	if err != nil {
		return nil, err
	}
	defer obs.close()
	if err := waitServing(ctx, sb, obs, cfg.Min); err != nil {
		return nil, err
	}
	var alarms []alarmInfo
	if err := sandbox.Poll(ctx, 60*time.Second, "the fleet's CloudWatch alarms", func(ctx context.Context) error {
		_, as, err := obs.alarmChanges(ctx, 0)
		if err != nil {
			return err
		}
		alarms = alarms[:0]
		for _, a := range as {
			alarms = append(alarms, alarmInfo{Name: a.GetName(), Metric: a.GetMetric(), Comparison: comparisonWord(a.GetComparison()), Threshold: a.GetThreshold(), State: alarmStateWord(a.GetState())})
		}
		if len(alarms) < 2 {
			return fmt.Errorf("%d alarms", len(alarms))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, a := range alarms {
		fmt.Fprintf(out, "✓ CloudWatch alarm %s: %s %s %.1f (%s)\n", a.Name, a.Metric, a.Comparison, a.Threshold, a.State)
	}
	if err := obs.skipDecisions(ctx); err != nil {
		return nil, err
	}

	r := &run{cfg: cfg, sb: sb, obs: obs, made: made, alarms: alarms, golden: golden, began: began}
	for _, m := range made {
		if m.Kind == "auto-scaling-group" {
			r.group = m.ID
		}
	}
	if cfg.Compare == CompareAWS {
		a, err := r.setupAWS(ctx)
		if a != nil {
			defer a.close()
		}
		if err != nil {
			return nil, err
		}
		a.agent.start(ctx)
		defer a.agent.stop()
		r.aws = a
	}
	if cfg.OnLoad != nil {
		cfg.OnLoad(ctx, sb)
	}
	load := r.load
	if cfg.Scenario == ScenarioSpot {
		load = r.loadSpot
	}
	sum, runErr := load(ctx)
	if sum == nil {
		return nil, runErr
	}
	if err := r.writeReport(sum); err != nil {
		return sum, errors.Join(runErr, err)
	}
	printSummary(out, cfg, sum)
	if runErr != nil {
		return sum, runErr
	}
	if inspect != nil {
		ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := inspect(ictx, sb, sum); err != nil {
			return sum, err
		}
	}
	if cfg.Hold {
		hold(ctx, out, cfg, sb)
	}
	return sum, nil
}

// hold keeps the system up for the CLI tour until ctx ends (Ctrl-C).
func hold(ctx context.Context, out io.Writer, cfg Config, sb *sandbox.Sandbox) {
	fmt.Fprintf(out, "\nThe system stays up until Ctrl-C. In another shell:\n\n")
	for _, l := range sb.Exports() {
		fmt.Fprintf(out, "  %s\n", l)
	}
	for _, c := range []string{"status", "instances " + Fleet, "decisions " + Fleet, "explain " + Fleet, "alarms " + Fleet, "metrics " + Fleet + " --metric " + metric + " --since 5m", "top " + Fleet} {
		fmt.Fprintf(out, "  %s/shoal-coordinator %s\n", cfg.BinDir, c)
	}
	fmt.Fprintf(out, "  %s/shoal-lb loadtest --target %s/ --rate 100 --duration 20s --connections 8 --streams 1\n\n", cfg.BinDir, sb.LBURL)
	fmt.Fprintf(out, "The operator console: %s\n\n", consoleURL(sb))
	<-ctx.Done()
}

// Made is one thing the bootstrap made (its JSON output).
type Made struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Created bool   `json:"created"`
	Note    string `json:"note,omitempty"`
}

type alarmInfo struct {
	Name       string  `json:"name"`
	Metric     string  `json:"metric"`
	Comparison string  `json:"comparison"`
	Threshold  float64 `json:"threshold"`
	State      string  `json:"state"`
}

// waitServing waits for min in-service instances and a request answered
// through the load balancer.
func waitServing(ctx context.Context, sb *sandbox.Sandbox, obs *observer, min int) error {
	return waitServingAt(ctx, obs, sb.LBURL, min)
}

// waitServingAt is waitServing for the load balancer at lbURL.
func waitServingAt(ctx context.Context, obs *observer, lbURL string, min int) error {
	if err := sandbox.Poll(ctx, 60*time.Second, fmt.Sprintf("%d instances of %s in service", min, obs.fleet), func(ctx context.Context) error {
		st, err := obs.state(ctx)
		if err != nil {
			return err
		}
		if st.inService < min {
			return fmt.Errorf("%d in service", st.inService)
		}
		return nil
	}); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	return sandbox.Poll(ctx, 30*time.Second, "a request answered through shoal-lb at "+lbURL, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, lbURL+"/", nil)
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

// run is the load phase and what it records.
type run struct {
	began  time.Time // when Run started, for cfg.Budget
	group  string    // the Shoal fleet's group
	aws    *awsSide  // the AWS-scaled fleet in a compare run, else nil
	cfg    Config
	sb     *sandbox.Sandbox
	obs    *observer
	made   []Made
	alarms []alarmInfo
	golden string

	t0        time.Time
	spikeAt   int // timeline second the spike starts
	spikeEnd  int
	loadEnd   int
	rows      []Row
	decisions []DecisionMark
	changes   []alarmChange
}

// Row is one second of the timeline.
type Row struct {
	T         int     `json:"t"`
	RPS       int     `json:"rps"`
	P99ms     float64 `json:"p99_ms"`
	CPUAvg    float64 `json:"cpu_avg"`
	CPUKnown  bool    `json:"-"`
	Desired   int     `json:"desired"`
	InService int     `json:"in_service"`
	Draining  int     `json:"draining"`
	Decision  string  `json:"decision"`
	Errors    int     `json:"errors"`
	// Running counts the group's instances pending or running in the
	// cloud: what is billed, for instance_seconds.
	Running int `json:"running"`
	// AWS is the AWS-scaled fleet's second in a compare run.
	AWS *SideRow `json:"aws,omitempty"`
}

// DecisionMark is a scaling decision on the timeline.
type DecisionMark struct {
	T      float64 `json:"t"`
	From   int     `json:"from"`
	To     int     `json:"to"`
	Reason string  `json:"reason"`
	Source string  `json:"source"`
}

// consoleURL is the first node's operator console (HTTPS when the sandbox
// runs TLS; its certificate chains to the sandbox CA).
func consoleURL(sb *sandbox.Sandbox) string {
	scheme := "https"
	if !sb.Secure() {
		scheme = "http"
	}
	ns := sb.Nodes()
	if len(ns) == 0 {
		return ""
	}
	return scheme + "://" + ns[0].HTTPAddr + "/ui/"
}

// printConsole prints the console's URL and, with ACLs on, a read token
// made for it, so the console can be watched while the load runs.
func printConsole(ctx context.Context, out io.Writer, sb *sandbox.Sandbox) error {
	if !sb.Secure() {
		fmt.Fprintf(out, "✓ operator console: %s\n", consoleURL(sb))
		return nil
	}
	var tok struct {
		Secret string `json:"secret"`
	}
	if err := sb.CLIJSON(ctx, &tok, "acl", "token", "create", "--name", "demo-console", "--policy", "read"); err != nil {
		return fmt.Errorf("console token: %w", err)
	}
	fmt.Fprintf(out, "✓ operator console: %s (any node serves it; HTTPS with the sandbox CA's certificates; read token %s)\n", consoleURL(sb), tok.Secret)
	return nil
}

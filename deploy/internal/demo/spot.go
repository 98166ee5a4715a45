package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Interruption is one Spot interruption of the spot scenario, in seconds
// from the load's start (t=0); -1 where the moment was never seen. Each
// moment comes from its own record: NoticeT from the demo sending the
// notice, DrainStartedT and ReplacementInServiceT from the coordinators'
// instance list, TerminatedT from the local cloud's own instance state.
type Interruption struct {
	Instance string `json:"instance"`
	// Replacement is the first instance the group launched after this
	// notice that no earlier notice claimed.
	Replacement           string  `json:"replacement"`
	NoticeT               float64 `json:"notice_t"`
	DrainStartedT         float64 `json:"drain_started_t"`
	ReplacementInServiceT float64 `json:"replacement_in_service_t"`
	TerminatedT           float64 `json:"terminated_t"`
}

// spotPoll is how often the watcher reads both records: the drain start
// is measured "poll included", so this bounds the added error.
const spotPoll = 200 * time.Millisecond

// spotWatch follows the fleet in the coordinators' and the cloud's records
// between polls of the per-second timeline, so each moment is measured to
// within spotPoll.
type spotWatch struct {
	c     shoalv1.ControlServiceClient
	sb    *sandbox.Sandbox
	fleet string
	group string
	t0    time.Time

	mu         sync.Mutex
	inService  []string           // the coordinators' in-service instances, last poll
	launched   []string           // the group's instances, in the order first seen in the cloud
	launchedAt map[string]float64 // when first seen in the cloud
	draining   map[string]float64 // first seen draining
	serving    map[string]float64 // first seen in service
	terminated map[string]float64 // first seen terminated in the cloud
	notices    []*Interruption
	// preNotice is the in-service count just before the first notice;
	// minAfter the least seen from then on (-1 before any notice).
	preNotice, minAfter int
	errs                int
}

func newSpotWatch(c shoalv1.ControlServiceClient, sb *sandbox.Sandbox, fleet, group string, t0 time.Time) *spotWatch {
	return &spotWatch{c: c, sb: sb, fleet: fleet, group: group, t0: t0, launchedAt: map[string]float64{},
		draining: map[string]float64{}, serving: map[string]float64{}, terminated: map[string]float64{}, preNotice: -1, minAfter: -1}
}

// run polls until ctx ends.
func (w *spotWatch) run(ctx context.Context) {
	tick := time.NewTicker(spotPoll)
	defer tick.Stop()
	for {
		w.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// since is seconds from t0, to the millisecond (the polls are 200 ms apart).
func (w *spotWatch) since() float64 {
	return float64(time.Since(w.t0).Milliseconds()) / 1000
}

// poll reads both records once. A failed read is counted and skipped: the
// next one is spotPoll away.
func (w *spotWatch) poll(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	li, err := w.c.ListInstances(pctx, &shoalv1.ListInstancesRequest{Fleet: w.fleet})
	at := w.since()
	insts, cerr := w.sb.Instances(pctx)
	cat := w.since()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil || cerr != nil {
		w.errs++
	}
	if err == nil {
		w.inService = w.inService[:0]
		for _, in := range li.GetInstances() {
			id := in.GetId()
			switch in.GetState() {
			case shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE:
				if _, ok := w.serving[id]; !ok {
					w.serving[id] = at
				}
				w.inService = append(w.inService, id)
			case shoalv1.InstanceState_INSTANCE_STATE_DRAINING:
				if _, ok := w.draining[id]; !ok {
					w.draining[id] = at
				}
			}
		}
		if len(w.notices) > 0 {
			w.minAfter = min(w.minAfter, len(w.inService))
		}
	}
	if cerr == nil {
		for _, in := range insts {
			if in.Group != w.group {
				continue
			}
			if _, ok := w.launchedAt[in.ID]; !ok {
				w.launchedAt[in.ID] = cat
				w.launched = append(w.launched, in.ID)
			}
			if in.State == "terminated" {
				if _, ok := w.terminated[in.ID]; !ok {
					w.terminated[in.ID] = cat
				}
			}
		}
	}
}

func (w *spotWatch) missed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errs
}

// victim picks the in-service instance to interrupt next: the first by id
// not interrupted yet among those launched before the first notice.
func (w *spotWatch) victim() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := slices.Sorted(slices.Values(w.inService))
	for _, id := range ids {
		// A replacement is no victim: the scenario interrupts instances
		// that served before the first notice.
		if len(w.notices) > 0 && w.launchedAt[id] >= w.notices[0].NoticeT {
			continue
		}
		if !slices.ContainsFunc(w.notices, func(n *Interruption) bool { return n.Instance == id }) {
			return id, true
		}
	}
	return "", false
}

// noticed records a notice sent at t.
func (w *spotWatch) noticed(id string, t float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.notices) == 0 {
		w.preNotice = len(w.inService)
		w.minAfter = w.preNotice
	}
	w.notices = append(w.notices, &Interruption{Instance: id, NoticeT: t})
}

// results pairs each notice with its replacement and fills in the moments
// seen.
func (w *spotWatch) results() (out []Interruption, preNotice, minAfter int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	claimed := map[string]bool{}
	for _, n := range w.notices {
		i := *n
		i.DrainStartedT, i.ReplacementInServiceT, i.TerminatedT = -1, -1, -1
		if t, ok := w.draining[i.Instance]; ok && t >= i.NoticeT {
			i.DrainStartedT = t
		}
		if t, ok := w.terminated[i.Instance]; ok {
			i.TerminatedT = t
		}
		for _, id := range w.launched {
			if !claimed[id] && w.launchedAt[id] >= i.NoticeT {
				claimed[id] = true
				i.Replacement = id
				if t, ok := w.serving[id]; ok {
					i.ReplacementInServiceT = t
				}
				break
			}
		}
		out = append(out, i)
	}
	return out, w.preNotice, w.minAfter
}

// done reports whether every notice's instance is terminated and its
// replacement in service.
func (w *spotWatch) done(want int) bool {
	is, _, _ := w.results()
	if len(is) < want {
		return false
	}
	for _, i := range is {
		if i.TerminatedT < 0 || i.ReplacementInServiceT < 0 {
			return false
		}
	}
	return true
}

// interrupt sends a Spot interruption notice for id through the local
// cloud's admin endpoint: terminated `in` from now.
func interrupt(ctx context.Context, cloudURL, id string, in time.Duration) error {
	q := url.Values{"instance": {id}, "in": {in.String()}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cloudURL, "/")+"/_localcloud/interrupt?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("interrupt %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("interrupt %s: %s: %s", id, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// spotConns is the generator's connection count: at 120 req/s, 8 leave
// requests unsent whenever a shared machine stretches p99 past 60 ms; 32
// cover a p99 of 250 ms.
const spotConns = 32

// spotInterruptions is how many instances the spot scenario interrupts.
const spotInterruptions = 2

// loadSpot runs the spot scenario: steady load through the load balancer
// at Min instances; at SpotFirstNotice one in-service instance gets an
// interruption notice, and SpotGap later, once its replacement serves, a
// second one does
// (their 40 s windows overlap, but capacity drops by one at most). The
// load runs its whole length, so the generator's per-second account is
// complete (a generator stopped early would leave its last part-second
// unplaced); by its end both instances must be terminated and replaced,
// the fleet back at Min with nothing draining.
func (r *run) loadSpot(ctx context.Context) (*Summary, error) {
	cfg := r.cfg
	r.t0 = time.Now().Truncate(time.Second).Add(time.Second)
	total := int(cfg.Total().Round(time.Second) / time.Second)
	// No spike: the phases collapse to the load's end.
	r.spikeAt, r.spikeEnd, r.loadEnd = total, total, total
	if err := sleepUntil(ctx, r.t0); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.ReportDir, 0o755); err != nil {
		return nil, err
	}
	// The generator runs in the sandbox's directory.
	reportDir, err := filepath.Abs(cfg.ReportDir)
	if err != nil {
		return nil, err
	}
	base, err := startLoad(r.sb, r.t0, "load-baseline", r.sb.LBURL+"/", cfg.BaselineRPS, spotConns, time.Duration(total)*time.Second,
		filepath.Join(reportDir, "load-baseline.csv"))
	if err != nil {
		return nil, err
	}
	gens := []*loadgen{base}
	w := newSpotWatch(r.obs.c, r.sb, Fleet, r.group, r.t0)
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		w.run(wctx)
	}()
	defer func() {
		stopWatch()
		<-watched
	}()
	fmt.Fprintf(cfg.Out, "\nload: %d req/s steady through the load balancer at %d instances; Spot interruption notices (terminate in %s, coordinators' --spot-drain-margin %s) at t=%ds and at t=%ds or once the first replacement serves\n\n",
		cfg.BaselineRPS, cfg.Min, cfg.SpotNoticeIn, cfg.SpotDrainMargin, cfg.SpotFirstNotice, cfg.SpotFirstNotice+cfg.SpotGap)
	fmt.Fprintf(cfg.Out, "%4s %5s %9s %7s %7s %10s %8s  %s\n", "t", "rps", "p99", "cpu_avg", "desired", "in_service", "draining", "decision")

	var runErr error
	failures, sent, settledAt := 0, 0, -1
	for k := 1; k <= total; k++ {
		if err := sleepUntil(ctx, r.t0.Add(time.Duration(k)*time.Second)); err != nil {
			runErr = err
			break
		}
		if sent < spotInterruptions && r.noticeDue(w, k, sent) {
			id, ok := w.victim()
			if !ok {
				runErr = fmt.Errorf("t=%ds: no in-service instance left to interrupt", k)
				break
			}
			at := w.since()
			if runErr = interrupt(ctx, r.sb.CloudURL, id, cfg.SpotNoticeIn); runErr != nil {
				break
			}
			w.noticed(id, at)
			sent++
			fmt.Fprintf(cfg.Out, "     # t=%.2fs: Spot interruption notice for %s (terminated in %s)\n", at, id, cfg.SpotNoticeIn)
		}
		if err := sleepUntil(ctx, r.t0.Add(time.Duration(k)*time.Second+500*time.Millisecond)); err != nil {
			runErr = err
			break
		}
		if err := early(gens, r.t0.Add(time.Duration(k)*time.Second)); err != nil {
			runErr = err
			break
		}
		row, err := r.sample(ctx, k, gens)
		if err != nil {
			if failures++; failures >= 5 || ctx.Err() != nil {
				runErr = fmt.Errorf("t=%ds: %w", k, err)
				break
			}
			fmt.Fprintf(cfg.Out, "     # t=%ds: coordinator did not answer in time: %v\n", k, err)
			if n := len(r.rows); n > 0 {
				prev := r.rows[n-1]
				row.Desired, row.InService, row.Draining, row.CPUAvg, row.CPUKnown, row.Running = prev.Desired, prev.InService, prev.Draining, prev.CPUAvg, prev.CPUKnown, prev.Running
			}
		} else {
			failures = 0
		}
		r.rows = append(r.rows, row)
		cpu := "-"
		if row.CPUKnown {
			cpu = fmt.Sprintf("%.1f", row.CPUAvg)
		}
		fmt.Fprintf(cfg.Out, "%4d %5d %7.1fms %7s %7d %10d %8d  %s\n", row.T, row.RPS, row.P99ms, cpu, row.Desired, row.InService, row.Draining, row.Decision)
		if sent == spotInterruptions && w.done(sent) && row.Desired == cfg.Min && row.InService == cfg.Min && row.Draining == 0 {
			if settledAt < 0 {
				settledAt = k
			}
		} else {
			settledAt = -1
		}
	}
	stopWatch()
	<-watched
	totals, err := r.waitTotals(ctx, gens, runErr)
	runErr = joinFirst(runErr, err)
	if len(r.rows) == 0 {
		return nil, runErr
	}
	s := r.summarise(totals, runErr == nil)
	// As in the spike scenario, failed requests are those the fleet
	// answered with an error or not at all; requests the generator's
	// schedule called for while every connection was busy never reached
	// it, and are counted apart.
	s.UnsentRequests = totals.unsent
	s.SpikeRPS = cfg.BaselineRPS
	s.Interruptions, s.PreNoticeInService, s.MinInServiceAfterNotice = w.results()
	s.SpotWatchMissed = w.missed()
	switch {
	case runErr != nil:
	case sent < spotInterruptions:
		runErr = fmt.Errorf("only %d of %d interruption notices were sent before the load's end (t=%ds)", sent, spotInterruptions, total)
	case settledAt < 0:
		runErr = fmt.Errorf("by the load's end (t=%ds) the interrupted instances were not both terminated and replaced with %d in service and none draining", total, cfg.Min)
	}
	return s, runErr
}

// noticeDue says whether notice number sent (0-based) goes out at second
// k: the first at SpotFirstNotice, the next SpotGap seconds on at the
// earliest and once the previous one's replacement is in service.
func (r *run) noticeDue(w *spotWatch, k, sent int) bool {
	if sent == 0 {
		return k >= r.cfg.SpotFirstNotice
	}
	if k < r.cfg.SpotFirstNotice+sent*r.cfg.SpotGap {
		return false
	}
	is, _, _ := w.results()
	return len(is) == sent && is[sent-1].ReplacementInServiceT >= 0
}

// waitTotals waits for the generators' summaries (stops them at once when
// the run already failed) and adds them up.
func (r *run) waitTotals(ctx context.Context, gens []*loadgen, runErr error) (loadTotals, error) {
	var totals loadTotals
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	var err error
	for _, g := range gens {
		if runErr != nil {
			_ = g.proc.Stop(time.Second)
			continue
		}
		t, werr := g.wait(wctx)
		if werr != nil {
			err = joinFirst(err, werr)
			continue
		}
		totals.requests += t.requests
		totals.ok += t.ok
		totals.errors += t.errors
		totals.unsent += t.unsent
	}
	return totals, err
}

// joinFirst keeps the first error.
func joinFirst(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

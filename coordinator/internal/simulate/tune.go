package simulate

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/coordinator/internal/decide"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Candidate is one policy the tuner tried (every knob, sustain included,
// is in Policy) and how it scored: TimeshareU is the mean over the traces,
// InstanceHours and SLOBreachS the sums, and CostRatio the mean over the
// traces of its instance-hours over the given policy's, so a long trace
// does not outweigh a short one.
type Candidate struct {
	Policy        *shoalv1.ScalingPolicy
	TimeshareU    float64
	InstanceHours float64
	CostRatio     float64
	SLOBreachS    int64
}

// The grid the tuner searches, around the policy's first target-tracking
// entry. Each knob is a policy field; the grid is small on purpose:
// 6 × 2 × 3 × 7 = 252 runs per trace, twice that when the policy's warm-up
// differs from the model's, and 6 × 2 × 3 more when its sustain is not on
// the grid.
var (
	tuneTargetFactors = []float64{0.6, 0.7, 0.8, 0.9, 1.0, 1.15}
	tuneTolerances    = []float64{0.05, 0.1}
	tuneScaleIn       = []time.Duration{time.Minute, 3 * time.Minute, 5 * time.Minute}
	tuneSustain       = []float64{0, 0.02, 0.035, 0.05, 0.1, 0.2, 0.33}
)

// candidates builds the grid from base. Warm-up takes the policy's value
// and the model's; sustain the grid's values and the policy's own (or
// --sustain's, which stands in for it).
func candidates(base *shoalv1.ScalingPolicy, cfg Config) ([]Candidate, error) {
	if base == nil || len(base.TargetTracking) == 0 {
		return nil, fmt.Errorf("%w: policy: --tune needs a target_tracking entry to tune around", ErrBadConfig)
	}
	tt := base.TargetTracking[0]
	warmups := []time.Duration{decide.Warmup(base)}
	if cfg.Warmup != warmups[0] {
		warmups = append(warmups, cfg.Warmup)
	}
	outW, _ := decide.Windows(base)
	own := base.Sustain
	if cfg.Sustain != nil {
		own = *cfg.Sustain
	}
	sustains := tuneSustain
	if !slices.Contains(sustains, own) {
		sustains = append(slices.Clone(sustains), own)
	}
	var out []Candidate
	for _, f := range tuneTargetFactors {
		target := tt.Target * f
		if tt.Metric != "requests_per_target" {
			target = min(target, 100)
		}
		for _, tol := range tuneTolerances {
			for _, in := range tuneScaleIn {
				for _, w := range warmups {
					for _, s := range sustains {
						p := proto.Clone(base).(*shoalv1.ScalingPolicy)
						p.TargetTracking[0].Target = math.Round(target*100) / 100
						p.TargetTracking[0].Tolerance = tol
						decide.SetWarmup(p, w)
						decide.SetWindows(p, outW, in)
						p.Sustain = s
						out = append(out, Candidate{Policy: p})
					}
				}
			}
		}
	}
	return out, nil
}

// traceTick is the coarsest decision cadence that still sees every change
// of demand: the greatest common divisor of the trace's row spacing, at
// most 60 s (a 1-minute trace decides once a minute, a per-second trace
// every second).
func traceTick(tr Trace) int64 {
	g := int64(0)
	for i := 1; i < len(tr) && g != 1; i++ {
		g = gcd(g, tr[i].T-tr[i-1].T)
	}
	return min(max(g, 1), 60)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Tune runs every candidate on every trace, Shoal only, on workers
// goroutines, and returns them all scored. It stays fast by (1) running
// only decide, not the comparison models; (2) deciding at the trace's own
// resolution (traceTick), while the fleet and the score still move each
// second; and (3) spreading the independent runs over the cores.
func Tune(traces []Trace, fleet *shoalv1.Fleet, cfg Config, workers int) ([]Candidate, error) {
	if len(traces) == 0 {
		return nil, fmt.Errorf("%w: trace: --tune needs at least one", ErrBadTrace)
	}
	cands, err := candidates(fleet.GetPolicy(), cfg)
	if err != nil {
		return nil, err
	}
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	// Demand in instances is the yardstick every candidate is scored
	// against; it must not move with the candidate's target, or a laxer
	// target would score itself as less under-provisioned.
	if cfg.TargetUtilization == 0 {
		base, err := targetOf(fleet.GetPolicy(), cfg)
		if err != nil {
			return nil, err
		}
		cfg.TargetUtilization = base.Utilization
	}
	// The given policy, as it is (with --sustain, if given, in place of
	// its own), is the cost yardstick.
	base := make([]float64, len(traces))
	for i, tr := range traces {
		res, err := Run(tr, Setup{Fleet: fleet, Config: cfg, Tick: traceTick(tr)})
		if err != nil {
			return nil, err
		}
		base[i] = res.Scores[0].InstanceHours
	}
	type job struct{ c, t int }
	jobs := make(chan job)
	scores := make([][]Score, len(cands))
	for i := range scores {
		scores[i] = make([]Score, len(traces))
	}
	errs := make([]error, len(cands))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				c := cands[j.c]
				f := proto.Clone(fleet).(*shoalv1.Fleet)
				f.Policy = c.Policy
				conf := cfg
				conf.Sustain = nil // the candidate's own, from the grid
				res, err := Run(traces[j.t], Setup{Fleet: f, Config: conf, Tick: traceTick(traces[j.t])})
				if err != nil {
					errs[j.c] = err
					continue
				}
				scores[j.c][j.t] = res.Scores[0]
			}
		}()
	}
	for c := range cands {
		for t := range traces {
			jobs <- job{c, t}
		}
	}
	close(jobs)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("candidate %d: %w", i, err)
		}
	}
	for i := range cands {
		for t, s := range scores[i] {
			cands[i].TimeshareU += s.TimeshareU / float64(len(traces))
			cands[i].InstanceHours += s.InstanceHours
			if base[t] > 0 {
				cands[i].CostRatio += s.InstanceHours / base[t] / float64(len(traces))
			}
			cands[i].SLOBreachS += s.SLOBreachS
		}
	}
	return cands, nil
}

// Pareto returns the candidates no other beats on both under-provisioning
// and cost (CostRatio), cheapest first.
func Pareto(cands []Candidate) []Candidate {
	sorted := append([]Candidate(nil), cands...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].CostRatio != sorted[j].CostRatio {
			return sorted[i].CostRatio < sorted[j].CostRatio
		}
		return sorted[i].TimeshareU < sorted[j].TimeshareU
	})
	var front []Candidate
	best := math.Inf(1)
	for _, c := range sorted {
		if c.TimeshareU < best {
			front = append(front, c)
			best = c.TimeshareU
		}
	}
	return front
}

// Cheapest is the front's cheapest candidate whose under-provisioning is
// below maxU.
func Cheapest(front []Candidate, maxU float64) (Candidate, error) {
	for _, c := range front {
		if c.TimeshareU < maxU {
			return c, nil
		}
	}
	lowest := math.Inf(1)
	for _, c := range front {
		lowest = min(lowest, c.TimeshareU)
	}
	return Candidate{}, fmt.Errorf("%w: max-timeshare-u: no candidate keeps timeshare_u below %v; the lowest found is %.3f", ErrBadConfig, maxU, lowest)
}

// WriteFront prints the Pareto front, one candidate a row.
func WriteFront(w io.Writer, front []Candidate) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TARGET\tTOLERANCE\tSCALE_IN_WINDOW\tWARMUP\tSUSTAIN\tTIMESHARE_U\tCOST_RATIO\tINSTANCE_HOURS\tSLO_BREACH_S\t")
	for _, c := range front {
		tt := c.Policy.TargetTracking[0]
		_, in := decide.Windows(c.Policy)
		fmt.Fprintf(tw, "%s %.4g\t%.2f\t%v\t%v\t%.3g\t%.3f\t%.3f\t%.2f\t%d\t\n", tt.Metric, tt.Target, tt.Tolerance, in, decide.Warmup(c.Policy), c.Policy.GetSustain(), c.TimeshareU, c.CostRatio, c.InstanceHours, c.SLOBreachS)
	}
	return tw.Flush()
}

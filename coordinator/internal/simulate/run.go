package simulate

import (
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/coordinator/internal/decide"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// ErrBadConfig is wrapped by Config.Validate errors.
var ErrBadConfig = errors.New("bad simulation config")

// Config is the fleet model.
type Config struct {
	// CapacityPerInstance is the requests/s one instance serves at 100 %.
	CapacityPerInstance float64
	// LaunchDelay is launch to in service; Warmup is in service to
	// reporting a stable metric; Drain is how long a scale-in victim stays
	// billed after it stops taking requests.
	LaunchDelay time.Duration
	Warmup      time.Duration
	Drain       time.Duration
	// TargetUtilization (0..1] turns demand into instances for the
	// scorecard and sets the comparison policies' target. Zero takes it
	// from the policy's first target-tracking entry.
	TargetUtilization float64
	// Sustain, when set (--sustain given), replaces the policy's sustain
	// (the share of the launch delay a rise must last before it is bought
	// in full) for the run. Nil runs the policy's own, as the live engine
	// does.
	Sustain *float64
}

// DefaultConfig is the model the issue describes.
func DefaultConfig() Config {
	return Config{CapacityPerInstance: 100, LaunchDelay: 60 * time.Second, Warmup: 30 * time.Second, Drain: 10 * time.Second}
}

// MaxDelay bounds the model's durations: a delay longer than the longest
// trace (MaxTraceSeconds) could never show in a run.
const MaxDelay = MaxTraceSeconds * time.Second

// Validate names the first wrong field.
func (c Config) Validate() error {
	switch {
	case !(c.CapacityPerInstance > 0) || math.IsInf(c.CapacityPerInstance, 0):
		return fmt.Errorf("%w: capacity-per-instance: must be > 0 (got %v)", ErrBadConfig, c.CapacityPerInstance)
	case c.LaunchDelay < 0 || c.LaunchDelay > MaxDelay:
		return fmt.Errorf("%w: launch-delay: must be in [0, %v] (got %v)", ErrBadConfig, MaxDelay, c.LaunchDelay)
	case c.Warmup < 0 || c.Warmup > MaxDelay:
		return fmt.Errorf("%w: warmup: must be in [0, %v] (got %v)", ErrBadConfig, MaxDelay, c.Warmup)
	case c.Drain < 0 || c.Drain > MaxDelay:
		return fmt.Errorf("%w: drain: must be in [0, %v] (got %v)", ErrBadConfig, MaxDelay, c.Drain)
	case c.Sustain != nil && !(*c.Sustain >= 0 && *c.Sustain <= decide.MaxSustain):
		return fmt.Errorf("%w: sustain: must be in [0, %d] (got %v)", ErrBadConfig, decide.MaxSustain, *c.Sustain)
	case c.TargetUtilization < 0 || c.TargetUtilization > 1 || math.IsNaN(c.TargetUtilization):
		return fmt.Errorf("%w: target-utilization: must be in (0, 1], or 0 to take it from the policy (got %v)", ErrBadConfig, c.TargetUtilization)
	}
	return nil
}

func secs(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }

// Observation is what a policy sees at one simulated second.
type Observation struct {
	Now      int64 // seconds since the trace started
	Desired  int32 // pending + in service
	Min, Max int32
	// Serving are the instances in service; Reporting says which of them
	// are past the model's warm-up and so report a metric.
	Serving   []Member
	Reporting int
	// Value is each reporting instance's metric, in the policy target's
	// units (utilisation % or requests/s per target).
	Value float64
	// Values holds Value under every metric name the Shoal policy uses.
	Values map[string]float64
}

// Member is one serving instance.
type Member struct {
	InService int64
	Reporting bool
}

// Autoscaler is one policy under test. Step is called every simulated
// second and returns the capacity it wants (Desired for no change).
type Autoscaler interface {
	Name() string
	Step(obs *Observation) (int32, error)
}

// Setup is everything a run needs besides the trace.
type Setup struct {
	Fleet  *shoalv1.Fleet
	Config Config
	// Compare names the comparison policies: aws-target-tracking,
	// aws-target-tracking-hires[:10|:30|:60], hpa.
	Compare []string
	// PricePerHour is what one instance costs per hour, for Score.CostUSD;
	// zero leaves the cost at zero.
	PricePerHour float64
	// Tick is how often, in seconds, the policy decides; zero or one is
	// every second, as the scaler does. The fleet and the scorecard still
	// move second by second. The tuner decides less often on a coarse
	// trace, whose demand cannot change between rows; the comparison
	// models keep their own cadences and so run only at Tick 1.
	Tick int64
}

// comparison returns the named comparison policy.
func comparison(name string, target float64) (Autoscaler, error) {
	switch name {
	case PolicyAWS:
		return NewAWSTargetTracking(target), nil
	case PolicyHPA:
		return NewHPA(target), nil
	}
	period, ok, err := parseHires(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: compare: unknown policy %q (want %s, %s[:10|:30|:60] or %s)", ErrBadConfig, name, PolicyAWS, PolicyAWSHires, PolicyHPA)
	}
	return NewAWSTargetTrackingHires(target, period)
}

// Target is the comparison target: the metric the policies track and its
// value, plus the utilisation fraction demand-in-instances is measured at.
type Target struct {
	Metric      string
	Value       float64
	Utilization float64
}

// targetOf picks the tracked metric from the policy's first target-tracking
// entry; requests_per_target is in requests/s, anything else in percent.
func targetOf(p *shoalv1.ScalingPolicy, cfg Config) (Target, error) {
	if p != nil && len(p.TargetTracking) > 0 {
		tt := p.TargetTracking[0]
		t := Target{Metric: tt.Metric, Value: tt.Target}
		if tt.Metric == "requests_per_target" {
			t.Utilization = tt.Target / cfg.CapacityPerInstance
		} else {
			t.Utilization = tt.Target / 100
		}
		if cfg.TargetUtilization > 0 {
			t.Utilization = cfg.TargetUtilization
		}
		return t, nil
	}
	if cfg.TargetUtilization == 0 {
		return Target{}, fmt.Errorf("%w: target-utilization: required when the policy has no target_tracking entry", ErrBadConfig)
	}
	return Target{Metric: "cpu", Value: cfg.TargetUtilization * 100, Utilization: cfg.TargetUtilization}, nil
}

// Series is one policy's run: supply (serving instances) and billed
// instances per second.
type Series struct {
	Policy string
	Supply []int32
	Billed []int32
}

// Result is a whole run.
type Result struct {
	Target Target
	// Demand is per second, in requests/s and in instances at the target.
	Demand          []float64
	DemandInstances []int32
	Runs            []Series
	Scores          []Score
}

// Run simulates every policy on the trace. It never sleeps: each policy
// runs the trace second by second on its own copy of the fleet model.
func Run(tr Trace, s Setup) (*Result, error) {
	if err := s.Config.Validate(); err != nil {
		return nil, err
	}
	if s.Fleet == nil {
		return nil, fmt.Errorf("%w: policy: no fleet given", ErrBadConfig)
	}
	if s.Config.Sustain != nil && s.Fleet.Policy != nil {
		f := proto.CloneOf(s.Fleet)
		f.Policy.Sustain = *s.Config.Sustain
		s.Fleet = f
	}
	if err := decide.Validate(s.Fleet.Policy, s.Fleet.Min, s.Fleet.Max); err != nil {
		return nil, err
	}
	target, err := targetOf(s.Fleet.Policy, s.Config)
	if err != nil {
		return nil, err
	}
	if s.Tick < 0 || s.Tick > 3600 || (s.Tick > 1 && len(s.Compare) > 0) {
		return nil, fmt.Errorf("%w: tick: must be in [0, 3600] s, and at most 1 s with comparison policies (got %d)", ErrBadConfig, s.Tick)
	}
	scalers := []Autoscaler{newShoal(s.Fleet, initialCapacity(s.Fleet), s.Config)}
	for _, name := range s.Compare {
		sc, err := comparison(name, target.Value)
		if err != nil {
			return nil, err
		}
		scalers = append(scalers, sc)
	}

	demand := tr.Seconds()
	res := &Result{Target: target, Demand: demand, DemandInstances: make([]int32, len(demand))}
	perInstance := s.Config.CapacityPerInstance * target.Utilization
	if err := tr.checkInstances(perInstance); err != nil {
		return nil, err
	}
	for i, d := range demand {
		res.DemandInstances[i] = int32(math.Ceil(d/perInstance - 1e-9))
	}
	for _, sc := range scalers {
		ser, err := runOne(tr[0].T, demand, s, target, sc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc.Name(), err)
		}
		res.Runs = append(res.Runs, ser)
		score := Scorecard(sc.Name(), demand, res.DemandInstances, ser.Supply, ser.Billed, s.Config.CapacityPerInstance)
		score.CostUSD = score.InstanceHours * s.PricePerHour
		res.Scores = append(res.Scores, score)
	}
	return res, nil
}

func runOne(start int64, demand []float64, s Setup, target Target, sc Autoscaler) (Series, error) {
	f := newFleet(s.Config, initialCapacity(s.Fleet))
	ser := Series{Policy: sc.Name(), Supply: make([]int32, len(demand)), Billed: make([]int32, len(demand))}
	names := metricNames(s.Fleet.Policy)
	warm := secs(s.Config.Warmup)
	tick := max(s.Tick, 1)
	obs := &Observation{Min: s.Fleet.Min, Max: s.Fleet.Max}
	for i, d := range demand {
		now := start + int64(i)
		if int64(i)%tick != 0 {
			continue // filled by fillBetween
		}
		f.advance(now)
		serving := f.servingCount(now)
		ser.Supply[i] = int32(serving)
		ser.Billed[i] = int32(f.billed())

		obs.Now = now - start
		obs.Desired = f.desired()
		obs.Serving = obs.Serving[:0]
		obs.Reporting = 0
		for _, m := range f.members {
			if m.draining || now < m.inService {
				continue
			}
			rep := now >= m.inService+warm
			if rep {
				obs.Reporting++
			}
			obs.Serving = append(obs.Serving, Member{InService: m.inService - start, Reporting: rep})
		}
		util := math.Inf(1)
		rps := math.Inf(1)
		if serving > 0 {
			rps = d / float64(serving)
			util = rps / s.Config.CapacityPerInstance * 100
		}
		// A fresh map each second: decide may keep references in its
		// output, and Observation must not change under it.
		obs.Values = make(map[string]float64, len(names))
		for _, n := range names {
			if n == "requests_per_target" {
				obs.Values[n] = rps
			} else {
				obs.Values[n] = util
			}
		}
		if target.Metric == "requests_per_target" {
			obs.Value = rps
		} else {
			obs.Value = util
		}
		want, err := sc.Step(obs)
		if err != nil {
			return ser, fmt.Errorf("t=%ds: %w", now, err)
		}
		if want != obs.Desired {
			f.setDesired(want, now)
		}
		if tick > 1 {
			end := min(i+int(tick), len(demand))
			f.fillBetween(now, ser.Supply[i+1:end], ser.Billed[i+1:end])
		}
	}
	return ser, nil
}

func metricNames(p *shoalv1.ScalingPolicy) []string {
	var out []string
	if p == nil {
		return out
	}
	for _, t := range p.TargetTracking {
		out = append(out, t.Metric)
	}
	for _, s := range p.StepScaling {
		out = append(out, s.Metric)
	}
	return out
}

// initialCapacity is the fleet's desired capacity, inside its bounds.
func initialCapacity(f *shoalv1.Fleet) int32 { return min(max(f.Desired, f.Min), f.Max) }

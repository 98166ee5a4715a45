package simulate

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/decide"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func TestFleetModel(t *testing.T) {
	f := newFleet(Config{LaunchDelay: 60 * time.Second, Drain: 10 * time.Second}, 2)
	check := func(now int64, wantDesired int32, wantServing, wantBilled int) {
		t.Helper()
		f.advance(now)
		if d, s, b := f.desired(), len(f.serving(now)), f.billed(); d != wantDesired || s != wantServing || b != wantBilled {
			t.Fatalf("t=%d: desired %d serving %d billed %d, want %d %d %d", now, d, s, b, wantDesired, wantServing, wantBilled)
		}
	}
	f.setDesired(4, 0)
	check(0, 4, 2, 4)
	check(59, 4, 2, 4)
	check(60, 4, 4, 4) // launch delay over
	f.setDesired(6, 70)
	f.setDesired(5, 80) // a pending launch is cancelled, nobody drains
	check(80, 5, 4, 5)
	check(130, 5, 5, 5)
	f.setDesired(2, 200) // three victims drain: out of service, still billed
	check(200, 2, 2, 5)
	check(209, 2, 2, 5)
	check(210, 2, 2, 2)
}

func fleetWith(min, max, desired int32, p *shoalv1.ScalingPolicy) *shoalv1.Fleet {
	return &shoalv1.Fleet{Name: "t", Min: min, Max: max, Desired: desired, Policy: p}
}

func cpu60() *shoalv1.ScalingPolicy {
	return &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 60}}, Warmup: durationpb.New(30_000 * time.Millisecond)}
}

func flat(seconds int64, demand float64) Trace {
	return Trace{{0, demand}, {seconds, demand}}
}

func TestRunFlatTraceConverges(t *testing.T) {
	// 300 req/s at 60 % of 100 req/s needs 5 instances; every policy must
	// end there from 10, Shoal only once its 60 s scale-in window has run.
	res, err := Run(flat(2400, 300), Setup{Fleet: fleetWith(1, 20, 10, cpu60()), Config: DefaultConfig(), Compare: []string{PolicyAWS, PolicyHPA}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 3 {
		t.Fatalf("runs = %d, want 3", len(res.Runs))
	}
	for _, r := range res.Runs {
		if got := r.Supply[len(r.Supply)-1]; got != 5 {
			t.Errorf("%s ends at %d instances, want 5", r.Policy, got)
		}
	}
	if s := res.Runs[0].Supply; s[60] != 10 || s[61] != 5 {
		t.Errorf("shoal supply at 60/61 s = %d/%d, want 10/5 (decided at 60 s)", s[60], s[61])
	}
	if d := res.DemandInstances[0]; d != 5 {
		t.Fatalf("demand in instances = %d, want 5", d)
	}
}

func TestRunLaunchDelay(t *testing.T) {
	// Demand doubles at t=100; Shoal decides that second, and the new
	// instances serve exactly one launch delay later.
	tr := Trace{{0, 300}, {100, 600}, {400, 600}}
	res, err := Run(tr, Setup{Fleet: fleetWith(1, 20, 5, cpu60()), Config: DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Runs[0].Supply
	if s[159] != 5 || s[160] != 10 {
		t.Fatalf("supply at 159/160 = %d/%d, want 5/10", s[159], s[160])
	}
	if res.Scores[0].SLOBreachS != 60 {
		t.Fatalf("slo breach = %d s, want 60 (t=100..159)", res.Scores[0].SLOBreachS)
	}
}

// TestRunMatchesDecide checks the "shoal" row is the decide package: the
// first decision on a known input is what Decide says directly.
func TestRunMatchesDecide(t *testing.T) {
	p := cpu60()
	res, err := Run(flat(10, 900), Setup{Fleet: fleetWith(1, 50, 5, p), Config: DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	var insts []decide.Instance
	for i := 0; i < 5; i++ {
		insts = append(insts, decide.Instance{InService: epoch.Add(-longAgo * time.Second), Metrics: map[string]float64{"cpu": 180}})
	}
	d, _, err := decide.Decide(decide.Input{Now: epoch, Policy: p, Min: 1, Max: 50, Current: 5, Instances: insts}, decide.State{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Desired != 15 {
		t.Fatalf("decide says %d, want ceil(5 × 180/60) = 15", d.Desired)
	}
	b := res.Runs[0].Billed
	if b[0] != 5 || b[1] != d.Desired {
		t.Fatalf("billed at t=0/1 = %d/%d, want 5/%d", b[0], b[1], d.Desired)
	}
}

func loadExample(t testing.TB, trace string) (Trace, *shoalv1.Fleet) {
	t.Helper()
	tf, err := os.Open("../../../deploy/traces/" + trace)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	tr, err := ReadTrace(tf)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := os.ReadFile("../../../deploy/traces/policy.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err := view.ParseFleet(pb)
	if err != nil {
		t.Fatal(err)
	}
	return tr, f
}

// TestSpikeScorecard is the claim, on a deterministic simulation:
// on the flash spike Shoal with sustain 0 (the README's "Shoal, sustain 0"
// column, --sustain 0) is under-provisioned less of the time than both
// comparison policies, without buying it with more than 1.3x AWS's
// instance-hours. With the tuned policy's own sustain 0.02 it stays ahead
// of AWS and breaches the SLO least, but gives up the lead over the HPA's
// timeshare_u, as the README reports.
func TestSpikeScorecard(t *testing.T) {
	tr, f := loadExample(t, "spike.csv")
	score := func(cfg Config) (shoal, aws, hpa Score) {
		t.Helper()
		res, err := Run(tr, Setup{Fleet: f, Config: cfg, Compare: []string{PolicyAWS, PolicyHPA}})
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]Score{}
		for _, s := range res.Scores {
			by[s.Policy] = s
		}
		t.Logf("shoal %+v\naws %+v\nhpa %+v", by[PolicyShoal], by[PolicyAWS], by[PolicyHPA])
		return by[PolicyShoal], by[PolicyAWS], by[PolicyHPA]
	}
	cfg := DefaultConfig()
	zero := 0.0
	cfg.Sustain = &zero
	shoal, aws, hpa := score(cfg)
	if !(shoal.TimeshareU < aws.TimeshareU) || !(shoal.TimeshareU < hpa.TimeshareU) {
		t.Errorf("sustain 0: timeshare_u: shoal %.4f, aws %.4f, hpa %.4f; want shoal lowest", shoal.TimeshareU, aws.TimeshareU, hpa.TimeshareU)
	}
	if shoal.InstanceHours > 1.3*aws.InstanceHours {
		t.Errorf("sustain 0: instance_hours: shoal %.2f > 1.3 × aws %.2f", shoal.InstanceHours, aws.InstanceHours)
	}
	if shoal.SLOBreachS >= aws.SLOBreachS {
		t.Errorf("sustain 0: slo_breach_s: shoal %d, aws %d; want shoal lower", shoal.SLOBreachS, aws.SLOBreachS)
	}

	shoal, aws, hpa = score(DefaultConfig())
	if !(shoal.TimeshareU < aws.TimeshareU) || !(shoal.SLOBreachS < aws.SLOBreachS) || !(shoal.SLOBreachS < hpa.SLOBreachS) {
		t.Errorf("tuned: shoal %+v\nwant timeshare_u below aws %.4f and slo_breach_s below aws %d and hpa %d", shoal, aws.TimeshareU, aws.SLOBreachS, hpa.SLOBreachS)
	}
}

func TestRunDeterministic(t *testing.T) {
	tr, f := loadExample(t, "spike.csv")
	s := Setup{Fleet: f, Config: DefaultConfig(), Compare: []string{PolicyAWS, PolicyHPA}}
	a, err := Run(tr, s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Run(tr, s)
	if !reflect.DeepEqual(a.Scores, b.Scores) || !reflect.DeepEqual(a.Runs, b.Runs) {
		t.Fatal("two runs of the same trace differ")
	}
}

func TestRunErrors(t *testing.T) {
	bad := cpu60()
	bad.TargetTracking[0].Target = 0
	steps := &shoalv1.ScalingPolicy{StepScaling: []*shoalv1.StepScaling{{Metric: "cpu", Steps: []*shoalv1.Step{
		{Lower: ptr(80.0), AdjustmentType: shoalv1.AdjustmentType_ADJUSTMENT_TYPE_CHANGE_IN_CAPACITY, Adjustment: 2}}}}}
	cases := []struct {
		name  string
		setup Setup
		is    error
		want  string
	}{
		{name: "invalid policy", setup: Setup{Fleet: fleetWith(1, 5, 1, bad), Config: DefaultConfig()},
			is: decide.ErrInvalidPolicy, want: "policy.target_tracking[0].target: must be > 0"},
		{name: "min above max", setup: Setup{Fleet: fleetWith(6, 5, 1, cpu60()), Config: DefaultConfig()},
			is: decide.ErrInvalidPolicy, want: "min (6) must be <= max (5)"},
		{name: "unknown comparison", setup: Setup{Fleet: fleetWith(1, 5, 1, cpu60()), Config: DefaultConfig(), Compare: []string{"gke"}},
			is: ErrBadConfig, want: `compare: unknown policy "gke"`},
		{name: "zero capacity", setup: Setup{Fleet: fleetWith(1, 5, 1, cpu60()), Config: Config{}},
			is: ErrBadConfig, want: "capacity-per-instance: must be > 0"},
		{name: "step policy needs a target utilisation", setup: Setup{Fleet: fleetWith(1, 5, 1, steps), Config: DefaultConfig()},
			is: ErrBadConfig, want: "target-utilization: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Run(flat(10, 100), c.setup)
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %v containing %q", err, c.is, c.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestAzureScorecard is the README's claim on the real trace: with the
// tuned policy as policy.json holds it (sustain 0.02 included), Shoal is
// under-provisioned less of the time than AWS (both cadences) and the HPA,
// breaches the SLO least, and costs less than the HPA.
func TestAzureScorecard(t *testing.T) {
	tr, f := loadExample(t, "azure-conv.csv")
	if s := f.Policy.GetSustain(); s != 0.02 {
		t.Fatalf("policy.json sustain = %v, want the tuned 0.02 the README reports", s)
	}
	res, err := Run(tr, Setup{Fleet: f, Config: DefaultConfig(), Compare: DefaultCompare})
	if err != nil {
		t.Fatal(err)
	}
	shoal := res.Scores[0]
	for _, peer := range res.Scores[1:] {
		if !(shoal.TimeshareU < peer.TimeshareU) || !(shoal.SLOBreachS < peer.SLOBreachS) {
			t.Errorf("shoal %+v\nnot ahead of %+v", shoal, peer)
		}
		if peer.Policy == PolicyHPA && !(shoal.InstanceHours < peer.InstanceHours) {
			t.Errorf("instance_hours: shoal %.2f, hpa %.2f; want shoal cheaper", shoal.InstanceHours, peer.InstanceHours)
		}
	}
}

// burst is 400 req/s (4 instances at 60 % of 100) with 1000 req/s from
// t=100 for n seconds.
func burst(n int64) Trace { return Trace{{0, 400}, {100, 1000}, {100 + n, 400}, {400, 400}} }

// TestRunUsesPolicySustain: the simulator runs the policy's own sustain,
// as the live engine does, and Config.Sustain replaces it without touching
// the caller's fleet.
func TestRunUsesPolicySustain(t *testing.T) {
	with := func(sustain float64) *shoalv1.Fleet {
		p := cpu60()
		p.Sustain = sustain
		return fleetWith(1, 20, 7, p)
	}
	peak := func(f *shoalv1.Fleet, cfg Config) int32 {
		t.Helper()
		res, err := Run(burst(10), Setup{Fleet: f, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		var hi int32
		for _, b := range res.Runs[0].Billed {
			hi = max(hi, b)
		}
		return hi
	}
	// A 10 s burst against a 60 s launch delay: sustain 0.5 waits 30 s.
	if got := peak(with(0), DefaultConfig()); got <= 7 {
		t.Fatalf("sustain 0: peak billed %d, want the burst bought (> 7)", got)
	}
	if got := peak(with(0.5), DefaultConfig()); got != 7 {
		t.Fatalf("sustain 0.5 in the policy: peak billed %d, want 7 (a 10 s burst is not bought)", got)
	}
	f := with(0.5)
	cfg := DefaultConfig()
	zero := 0.0
	cfg.Sustain = &zero
	if got := peak(f, cfg); got <= 7 {
		t.Fatalf("policy sustain 0.5, Config.Sustain 0: peak billed %d, want the burst bought", got)
	}
	if f.Policy.Sustain != 0.5 {
		t.Fatalf("Run changed the caller's policy: sustain %v", f.Policy.Sustain)
	}
	bad := 2.5
	cfg.Sustain = &bad
	if _, err := Run(burst(10), Setup{Fleet: f, Config: cfg}); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "sustain: must be in [0, 2] (got 2.5)") {
		t.Fatalf("Config.Sustain 2.5: err = %v", err)
	}
	f.Policy.Sustain = 2.5
	if _, err := Run(burst(10), Setup{Fleet: f, Config: DefaultConfig()}); !errors.Is(err, decide.ErrInvalidPolicy) || !strings.Contains(err.Error(), "policy.sustain") {
		t.Fatalf("policy sustain 2.5: err = %v", err)
	}
}

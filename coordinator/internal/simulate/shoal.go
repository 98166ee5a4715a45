package simulate

import (
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/decide"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Policy names as they appear in the scorecard and in --compare.
const (
	PolicyShoal    = "shoal"
	PolicyAWS      = "aws-target-tracking"
	PolicyAWSHires = "aws-target-tracking-hires"
	PolicyHPA      = "hpa"
)

// DefaultCompare is the comparison set when --compare is not given.
var DefaultCompare = []string{PolicyAWS, PolicyAWSHires, PolicyHPA}

// epoch anchors the simulated clock; any fixed instant would do.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// shoal drives the decide package exactly as the scaler loop does: once a
// second, with the State it returned last time.
type shoal struct {
	fleet *shoalv1.Fleet
	cfg   Config
	state decide.State
	insts []decide.Instance
	// Last is the most recent decision, for callers that want the reason.
	last decide.Decision
}

// newShoal starts from a seeded history, as a leader does: the fleet has
// been running at its initial capacity.
func newShoal(f *shoalv1.Fleet, initial int32, cfg Config) *shoal {
	return &shoal{fleet: f, cfg: cfg, state: decide.Seed(epoch, initial)}
}

func (s *shoal) Name() string { return PolicyShoal }

func (s *shoal) Step(obs *Observation) (int32, error) {
	s.insts = s.insts[:0]
	for _, m := range obs.Serving {
		in := decide.Instance{InService: epoch.Add(time.Duration(m.InService) * time.Second)}
		if m.Reporting {
			in.Metrics = obs.Values
		}
		s.insts = append(s.insts, in)
	}
	d, st, err := decide.Decide(decide.Input{
		Now:       epoch.Add(time.Duration(obs.Now) * time.Second),
		Policy:    s.fleet.Policy,
		Min:       s.fleet.Min,
		Max:       s.fleet.Max,
		Current:   obs.Desired,
		Instances: s.insts,
		// The model's launch delay is known exactly; the live engine
		// measures it per group. The policy carries its sustain.
		LaunchDelay: s.cfg.LaunchDelay,
	}, s.state)
	if err != nil {
		return obs.Desired, err
	}
	s.state, s.last = st, d
	return d.Desired, nil
}

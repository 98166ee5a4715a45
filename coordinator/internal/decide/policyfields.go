package decide

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// The policy's duration fields are read and written through these, so the
// engine and the simulator's tuner agree on unset (nil, the default) and
// zero.

// Warmup is the policy's instance warm-up.
func Warmup(p *shoalv1.ScalingPolicy) time.Duration { return p.GetWarmup().AsDuration() }

// Windows are the policy's stabilisation windows as written (zero for the
// defaults; windows applies them).
func Windows(p *shoalv1.ScalingPolicy) (out, in time.Duration) {
	return p.GetScaleOutWindow().AsDuration(), p.GetScaleInWindow().AsDuration()
}

// Period is a rate limit's period.
func Period(l *shoalv1.RateLimit) time.Duration { return l.GetPeriod().AsDuration() }

// SetWarmup sets the policy's instance warm-up.
func SetWarmup(p *shoalv1.ScalingPolicy, d time.Duration) { p.Warmup = durationpb.New(d) }

// SetWindows sets the policy's stabilisation windows.
func SetWindows(p *shoalv1.ScalingPolicy, out, in time.Duration) {
	p.ScaleOutWindow, p.ScaleInWindow = durationpb.New(out), durationpb.New(in)
}

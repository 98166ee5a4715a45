package decide

import (
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// The policy's duration fields are read and written only here, so a change
// in their wire type (milliseconds today, google.protobuf.Duration next)
// touches this file alone. The simulator's tuner writes candidate policies
// through the setters.

// Warmup is the policy's instance warm-up.
func Warmup(p *shoalv1.ScalingPolicy) time.Duration {
	return time.Duration(p.GetWarmupMs()) * time.Millisecond
}

// Windows are the policy's stabilisation windows as written (zero for the
// defaults; windows applies them).
func Windows(p *shoalv1.ScalingPolicy) (out, in time.Duration) {
	return time.Duration(p.GetScaleOutWindowMs()) * time.Millisecond, time.Duration(p.GetScaleInWindowMs()) * time.Millisecond
}

// Period is a rate limit's period.
func Period(l *shoalv1.RateLimit) time.Duration {
	return time.Duration(l.GetPeriodMs()) * time.Millisecond
}

// SetWarmup sets the policy's instance warm-up.
func SetWarmup(p *shoalv1.ScalingPolicy, d time.Duration) { p.WarmupMs = d.Milliseconds() }

// SetWindows sets the policy's stabilisation windows.
func SetWindows(p *shoalv1.ScalingPolicy, out, in time.Duration) {
	p.ScaleOutWindowMs, p.ScaleInWindowMs = out.Milliseconds(), in.Milliseconds()
}

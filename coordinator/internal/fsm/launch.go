package fsm

import (
	"fmt"
	"time"
)

// OpLaunchSample records one launch the leader timed, from the scale-out
// decision to the instance in service. Kept in the replicated state, a
// fleet's learned launch delay survives a leader change or a restart of the
// whole cluster: the new leader's warmup fallback and decide's sustain
// horizon have it at once, when a failover makes capacity decisions most
// delicate. It is written at command version 3: a release that reads only
// versions 1..2 refuses it whole.
const OpLaunchSample Op = "launch_sample"

// launchVersion is the command version that introduced OpLaunchSample.
const launchVersion = 3

// Launch kinds, as explain and `fleet get` spell them.
const (
	LaunchWarm = "warm"
	LaunchCold = "cold"
)

const (
	// MaxLaunchSamples is how many of a fleet's newest launches of each
	// kind the state keeps; the p50 and p90 are taken over them.
	MaxLaunchSamples = 50
	// MaxLaunchDelay bounds one sample: a launch slower than this is a
	// launch that failed and was retried, not a delay worth learning.
	MaxLaunchDelay = time.Hour
)

// LaunchSample is the body of OpLaunchSample.
type LaunchSample struct {
	Fleet string `json:"fleet"`
	// Kind is LaunchWarm (the instance came from the warm pool) or
	// LaunchCold.
	Kind string `json:"kind"`
	// DurationMS is from the scale-out decision to in service.
	DurationMS int64 `json:"duration_ms"`
}

// RecordLaunch records one timed launch.
func RecordLaunch(s LaunchSample) Command {
	c := newCommand(OpLaunchSample, s)
	c.Version = launchVersion
	return c
}

// launchSamples are one fleet's timed launches in milliseconds, per kind,
// oldest first, at most MaxLaunchSamples of each.
type launchSamples map[string][]int64

func (ls launchSamples) clone() launchSamples {
	c := make(launchSamples, len(ls))
	for k, v := range ls {
		c[k] = append([]int64(nil), v...)
	}
	return c
}

// checkLaunch checks one sample's kind and duration; the fleet is the
// caller's to check against its state.
func checkLaunch(kind string, ms int64) error {
	switch {
	case kind != LaunchWarm && kind != LaunchCold:
		return fmt.Errorf("kind (%q): must be %s or %s", kind, LaunchWarm, LaunchCold)
	case ms <= 0 || ms > MaxLaunchDelay.Milliseconds():
		return fmt.Errorf("duration_ms (%d): must be in 1..%d (%v)", ms, MaxLaunchDelay.Milliseconds(), MaxLaunchDelay)
	}
	return nil
}

func (f *FSM) recordLaunch(c Command) (*Result, *Error) {
	var b LaunchSample
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	if b.Fleet == "" {
		return nil, invalidf("fleet: required")
	}
	if err := checkLaunch(b.Kind, b.DurationMS); err != nil {
		return nil, invalidf("%v", err)
	}
	if _, err := f.fleet(b.Fleet); err != nil {
		return nil, err
	}
	ls := f.s.launches[b.Fleet]
	if ls == nil {
		ls = launchSamples{}
		f.s.launches[b.Fleet] = ls
	}
	d := append(ls[b.Kind], b.DurationMS)
	if over := len(d) - MaxLaunchSamples; over > 0 {
		// A new slice, so the dropped head is not kept alive behind it.
		d = append([]int64(nil), d[over:]...)
	}
	ls[b.Kind] = d
	return &Result{}, nil
}

// LaunchSamples returns a copy of fleet's timed launches per kind, oldest
// first; nil when none was recorded.
func (f *FSM) LaunchSamples(fleet string) map[string][]time.Duration {
	f.mu.RLock()
	defer f.mu.RUnlock()
	ls := f.s.launches[fleet]
	if len(ls) == 0 {
		return nil
	}
	out := make(map[string][]time.Duration, len(ls))
	for kind, ms := range ls {
		d := make([]time.Duration, len(ms))
		for i, v := range ms {
			d[i] = time.Duration(v) * time.Millisecond
		}
		out[kind] = d
	}
	return out
}

// wireLaunches is one fleet's samples of one kind in a snapshot.
type wireLaunches struct {
	Fleet string  `json:"fleet"`
	Kind  string  `json:"kind"`
	MS    []int64 `json:"ms"`
}

func encodeLaunches(l map[string]launchSamples) []wireLaunches {
	var out []wireLaunches
	for _, fleet := range sortedKeys(l) {
		for _, kind := range sortedKeys(l[fleet]) {
			out = append(out, wireLaunches{Fleet: fleet, Kind: kind, MS: l[fleet][kind]})
		}
	}
	return out
}

// decodeLaunches reads a snapshot's samples. A snapshot written before they
// were replicated has none: every fleet starts with an empty history.
func decodeLaunches(ws []wireLaunches) map[string]launchSamples {
	out := map[string]launchSamples{}
	for _, w := range ws {
		if out[w.Fleet] == nil {
			out[w.Fleet] = launchSamples{}
		}
		out[w.Fleet][w.Kind] = append([]int64(nil), w.MS...)
	}
	return out
}

// checkLaunches checks a restored snapshot's samples: each entry's fleet is
// in the snapshot, its kind and durations are ones a command could record,
// at most MaxLaunchSamples of them, and no fleet and kind is listed twice.
func checkLaunches(ws []wireLaunches, fleets map[string]bool) error {
	seen := map[[2]string]bool{}
	for i, w := range ws {
		key := [2]string{w.Fleet, w.Kind}
		switch {
		case !fleets[w.Fleet]:
			return fmt.Errorf("launch_samples[%d]: fleet %q is not in the snapshot", i, w.Fleet)
		case seen[key]:
			return fmt.Errorf("launch_samples[%d]: fleet %q kind %q listed twice", i, w.Fleet, w.Kind)
		case len(w.MS) == 0 || len(w.MS) > MaxLaunchSamples:
			return fmt.Errorf("launch_samples[%d]: %d samples, want 1..%d", i, len(w.MS), MaxLaunchSamples)
		}
		seen[key] = true
		for _, ms := range w.MS {
			if err := checkLaunch(w.Kind, ms); err != nil {
				return fmt.Errorf("launch_samples[%d]: %v", i, err)
			}
		}
	}
	return nil
}

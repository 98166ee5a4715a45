package scaler

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Launch kinds, as explain and `fleet get` spell them.
const (
	launchWarm = fsm.LaunchWarm
	launchCold = fsm.LaunchCold
)

const (
	// launchForgetAfter drops a scale-out whose instances never came (a
	// failed launch): a late instance would be timed from the wrong start.
	launchForgetAfter = 30 * time.Minute
	// warmPoolCheckEvery bounds DescribeWarmPool calls per group.
	warmPoolCheckEvery = 10 * time.Second
)

// launchState is the leader's bookkeeping for timing one fleet's launches:
// which scale-outs wait for instances, which instances were already timed,
// the warm pool. It is memory only; a new leader starts it afresh and times
// only what it saw begin. The samples themselves are committed through raft
// (fsm.RecordLaunch) and read back from the FSM, so what one leader learned
// is every later leader's p50, p90 and warmup at once.
type launchState struct {
	started time.Time
	// tracked are the scale-out decisions already counted into pending.
	tracked map[uint64]bool
	pending []pendingLaunch
	// seen are instances already in service (or there before this leader
	// started watching): never timed again.
	seen map[string]bool
	// warmIDs are instances seen in the warm pool: their launch is warm.
	warmIDs   map[string]bool
	pool      *cloud.WarmPool
	poolErr   string
	poolCheck time.Time
	// actCheck bounds DescribeScalingActivities for failed launches.
	actCheck time.Time
}

type pendingLaunch struct {
	decision uint64
	at       time.Time
	n        int32
}

func (s *Scaler) launches(fleet string) *launchState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.launch == nil {
		s.launch = map[string]*launchState{}
	}
	ls := s.launch[fleet]
	if ls == nil {
		ls = &launchState{started: s.cfg.Now(), tracked: map[uint64]bool{}, seen: map[string]bool{}, warmIDs: map[string]bool{}}
		s.launch[fleet] = ls
	}
	return ls
}

// observeLaunches times each new instance from the scale-out decision it
// answers to its first in-service state, warm-pool and cold launches apart,
// commits each sample, and reads the group's warm pool now and then.
func (s *Scaler) observeLaunches(ctx context.Context, v *view) {
	for _, t := range s.timeLaunches(ctx, v) {
		s.commitLaunch(ctx, t)
	}
}

// commitLaunch records one timed launch through raft. A sample that fails
// to commit (this node lost leadership, raft is slow) is logged and counted,
// not retried: the next launch brings another, and a retry queue would have
// to outlive the leadership it was measured under.
func (s *Scaler) commitLaunch(ctx context.Context, t fsm.LaunchSample) {
	if _, err := s.apply(ctx, fsm.RecordLaunch(t)); err != nil {
		s.met.launches.WithLabelValues("commit_failed").Inc()
		s.cfg.Logger.Warn("scaler: record launch delay", "fleet", t.Fleet, "kind", t.Kind, "ms", t.DurationMS, "err", err)
		return
	}
	s.met.launches.WithLabelValues("committed").Inc()
}

// timeLaunches does observeLaunches' bookkeeping and returns the launches
// it timed, for the caller to commit outside the lock.
func (s *Scaler) timeLaunches(ctx context.Context, v *view) []fsm.LaunchSample {
	ls := s.launches(v.f.Name)
	now := s.cfg.Now()
	if wp := s.cfg.WarmPools; wp != nil && now.Sub(ls.poolCheck) >= warmPoolCheckEvery {
		ls.poolCheck = now
		pool, err := wp.DescribeWarmPool(ctx, v.g.Name)
		s.mu.Lock()
		if err != nil {
			ls.poolErr = err.Error()
		} else {
			ls.pool, ls.poolErr = pool, ""
			if pool != nil {
				for _, in := range pool.Instances {
					ls.warmIDs[in.ID] = true
				}
			}
		}
		s.mu.Unlock()
		if err != nil {
			s.cloudErr("describe warm pool", v.g.Name, err)
		}
	}
	first := len(ls.seen) == 0 && len(ls.tracked) == 0
	if ds, err := s.deps.Store.Decisions(v.f.Name, 0); err == nil {
		listed := make(map[uint64]bool, len(ds))
		for _, d := range ds {
			listed[d.Id] = true
		}
		// A decision that left the FSM's bounded history cannot be listed
		// again: forget only those, so tracked stays the history's size and
		// never lets one still listed be counted in a second time.
		for id := range ls.tracked {
			if !listed[id] {
				delete(ls.tracked, id)
			}
		}
		for _, d := range ds {
			at := d.GetCreateTime().AsTime()
			if ls.tracked[d.Id] || d.Capacity <= d.PreviousCapacity || d.Status == failed || at.Before(ls.started) {
				continue
			}
			ls.tracked[d.Id] = true
			ls.pending = append(ls.pending, pendingLaunch{decision: d.Id, at: at, n: d.Capacity - d.PreviousCapacity})
		}
	}
	var fresh []*shoalv1.Instance
	for id, in := range v.insts {
		if ls.seen[id] {
			continue
		}
		if first {
			ls.seen[id] = true // there before this leader watched: no start to time from
			continue
		}
		if in.State == shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE && !in.Warm {
			fresh = append(fresh, in)
		}
	}
	sort.Slice(fresh, func(i, j int) bool {
		return fresh[i].GetStateChangeTime().AsTime().Before(fresh[j].GetStateChangeTime().AsTime())
	})
	var timed []fsm.LaunchSample
	s.mu.Lock()
	defer s.mu.Unlock()
	// Every tick, not only when instances come: scale-outs whose
	// instances never come (launches failing for hours) must not pile up.
	ls.dropSpent(now)
	for _, in := range fresh {
		ls.seen[in.Id] = true
		inService := in.GetStateChangeTime().AsTime()
		ls.dropSpent(now)
		if len(ls.pending) == 0 || !ls.pending[0].at.Before(inService) {
			continue
		}
		kind := launchCold
		if ls.warmIDs[in.Id] {
			kind = launchWarm
		}
		ls.pending[0].n--
		took := inService.Sub(ls.pending[0].at)
		if took > fsm.MaxLaunchDelay {
			s.met.launches.WithLabelValues("out_of_range").Inc()
			s.cfg.Logger.Warn("scaler: launch delay above the bound, not learned", "fleet", v.f.Name, "instance", in.Id, "took", took, "max", fsm.MaxLaunchDelay)
			continue
		}
		// Whole milliseconds, rounded up: a sample is never 0.
		ms := int64((took + time.Millisecond - 1) / time.Millisecond)
		timed = append(timed, fsm.LaunchSample{Fleet: v.f.Name, Kind: kind, DurationMS: ms})
	}
	// Forget what can no longer matter, so the maps stay the fleet's size.
	for id := range ls.seen {
		if _, ok := v.insts[id]; !ok {
			delete(ls.seen, id)
		}
	}
	for id := range ls.warmIDs {
		_, inGroup := v.inGroup[id]
		if !inGroup && !poolHas(ls.pool, id) {
			delete(ls.warmIDs, id)
		}
	}
	return timed
}

// dropSpent drops the oldest waiting scale-outs that are answered or too
// old to time from (pending is oldest first).
func (ls *launchState) dropSpent(now time.Time) {
	for len(ls.pending) > 0 && (now.Sub(ls.pending[0].at) > launchForgetAfter || ls.pending[0].n <= 0) {
		ls.pending = ls.pending[1:]
	}
	if len(ls.pending) == 0 {
		ls.pending = nil // let the backing array go
	}
}

// launchOutstanding says a recent scale-out still waits for instances.
func (ls *launchState) launchOutstanding(now time.Time) bool {
	for _, p := range ls.pending {
		if p.n > 0 && now.Sub(p.at) <= launchForgetAfter {
			return true
		}
	}
	return false
}

// LaunchDelays returns the learned delays of fleet, warm first, from the
// replicated samples (whichever leader timed them); empty before any launch
// was timed. Safe to call from any goroutine.
func (s *Scaler) LaunchDelays(fleet string) []*shoalv1.LaunchDelay {
	samples := s.deps.Store.LaunchSamples(fleet)
	var out []*shoalv1.LaunchDelay
	for _, kind := range []string{launchWarm, launchCold} {
		if d := samples[kind]; len(d) > 0 {
			out = append(out, &shoalv1.LaunchDelay{Kind: kind, Samples: uint32(len(d)),
				P50: durationpb.New(pct(d, 0.5)), P90: durationpb.New(pct(d, 0.9))})
		}
	}
	return out
}

// expectedDelay is the p90 the next scale-out will most likely see: warm
// while the pool has ready instances and warm launches were timed, else
// cold, else whichever kind was timed; 0 when none was.
func (s *Scaler) expectedDelay(fleet string) (time.Duration, string) {
	samples := s.deps.Store.LaunchSamples(fleet)
	if len(samples) == 0 {
		return 0, ""
	}
	s.mu.Lock()
	var pool *cloud.WarmPool
	if ls := s.launch[fleet]; ls != nil {
		pool = ls.pool
	}
	s.mu.Unlock()
	order := []string{launchCold, launchWarm}
	if pool.Ready() > 0 {
		order = []string{launchWarm, launchCold}
	}
	for _, kind := range order {
		if d := samples[kind]; len(d) > 0 {
			return pct(d, 0.9), kind
		}
	}
	return 0, ""
}

// launchDetails are explain's lines about the warm pool and launch delays;
// out is how many instances the current recommendation adds.
func (s *Scaler) launchDetails(fleet string, out int32) []string {
	s.mu.Lock()
	ls := s.launch[fleet]
	var lines []string
	if ls != nil {
		switch {
		case ls.poolErr != "":
			lines = append(lines, "warm pool: cannot read it: "+ls.poolErr)
		case ls.pool != nil:
			ready := int32(ls.pool.Ready())
			line := fmt.Sprintf("warm pool: %d ready (%s, min %d)", ready, ls.pool.PoolState, ls.pool.MinSize)
			if out > 0 {
				line += fmt.Sprintf("; this scale-out of %d takes %d from the pool and launches %d cold", out, min(out, ready), out-min(out, ready))
			}
			lines = append(lines, line)
		}
	}
	s.mu.Unlock()
	for _, ld := range s.LaunchDelays(fleet) {
		lines = append(lines, fmt.Sprintf("launch delay (%s, last %d): p50 %v, p90 %v", ld.Kind, ld.Samples,
			ld.P50.AsDuration().Round(100*time.Millisecond), ld.P90.AsDuration().Round(100*time.Millisecond)))
	}
	return lines
}

// warmupPolicy returns p with the learned p90 launch delay as its warmup
// when p sets none (an explicit 0 stays 0), and the line explain shows.
func (s *Scaler) warmupPolicy(fleet string, p *shoalv1.ScalingPolicy) (*shoalv1.ScalingPolicy, time.Duration, string) {
	d, kind := s.expectedDelay(fleet)
	if d == 0 {
		return p, 0, ""
	}
	if p.GetWarmup() != nil {
		return p, d, ""
	}
	cp := &shoalv1.ScalingPolicy{}
	if p != nil {
		cp = proto.CloneOf(p)
	}
	cp.Warmup = durationpb.New(d)
	return cp, d, fmt.Sprintf("warmup: the policy sets none; using the learned %s launch delay p90 %v", kind, d.Round(100*time.Millisecond))
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func poolHas(p *cloud.WarmPool, id string) bool {
	if p == nil {
		return false
	}
	for _, in := range p.Instances {
		if in.ID == id {
			return true
		}
	}
	return false
}

// launchCodeRE finds the EC2 error code in a failed launch's status
// message, as AWS words it: "Could not launch On-Demand Instances.
// InsufficientInstanceCapacity - We currently do not have ...".
var launchCodeRE = regexp.MustCompile(`\b([A-Z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)*) - `)

// launchCode is the EC2 error code of a failed launch, or "" when the
// message names none.
func launchCode(msg string) string {
	if m := launchCodeRE.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}

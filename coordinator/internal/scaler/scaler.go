package scaler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/decide"
	"github.com/shoal-dev/shoal/coordinator/internal/failpoint"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Store is the replicated state the scaler reads and writes. Apply goes
// through raft; reads are the leader's local FSM.
type Store interface {
	Fleets() []*shoalv1.Fleet
	Instances(fleet string) []*shoalv1.Instance
	Decisions(fleet string, limit int) ([]*shoalv1.Decision, error)
	// LaunchSamples are the fleet's timed launches per kind, oldest first,
	// as the scaler committed them (fsm.RecordLaunch).
	LaunchSamples(fleet string) map[string][]time.Duration
	Apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, error)
}

// Metrics gives each instance's latest values, keyed by instance id, then by
// metric name. Instances with no fresh report are absent.
type Metrics interface {
	Latest(fleet string) map[string]map[string]float64
}

// LBs is what the load balancers' feed knows.
type LBs interface {
	Drained(fleet, instanceID string) (bool, string)
	RequestsPerTarget(fleet string) (float64, bool)
}

// Agents runs an instance's on-drain hook through its agent's stream.
type Agents interface {
	Drain(ctx context.Context, instanceID string) error
}

// Deps are the scaler's collaborators. Metrics, LBs and Agents may be nil:
// no metrics means no automatic decisions, no LBs means a victim is drained
// at once, no agents means no on-drain hook.
type Deps struct {
	Store   Store
	Cloud   cloud.Scaling
	Metrics Metrics
	LBs     LBs
	Agents  Agents
}

// Explanation is what the engine would do for a fleet now, and why.
type Explanation struct {
	Fleet       string
	Current     int32
	Recommended int32
	Reason      string
	Details     []string
	Inputs      map[string]float64
	// Blocked says why the engine would not act now, if it would not.
	Blocked string
	At      time.Time
}

// fleetState is what the leader keeps in memory per fleet. Losing it on a
// leader change only restarts the stabilisation windows, which delays a
// scale-in and never hurts.
type fleetState struct {
	decide      decide.State
	seeded      bool
	hookEnsured bool
	groupStatus string
	launchBlock string
	launchCheck time.Time
	blockNoted  bool
	explain     Explanation
	heartbeatAt map[string]time.Time
	// hookHeartbeat is the group's hook's heartbeat timeout, as found or
	// put by ensureHook; 0 until then.
	hookHeartbeat time.Duration
	flags         map[string]string
	firstSeen     map[string]time.Time
	drainWaiting  map[string]string
	// spotNotes say, per instance that got a capacity notice, which
	// replacement path ran (spot.go); each outlives its instance a while.
	spotNotes map[string]spotNote
}

// Scaler is the leader-only loop. Create it with New; Run it while leading.
type Scaler struct {
	cfg  Config
	deps Deps
	met  *metrics

	mu       sync.Mutex
	fleets   map[string]*fleetState
	inflight map[string]bool // instance ids with a finishing drain running
	wg       sync.WaitGroup

	// desiredMu orders a scale-out's SetDesiredCapacity against a drain's
	// TerminateInstance with decrement: the first computes desired from a
	// view that counts the draining instance, the second lowers desired by
	// it, and interleaved they would buy the instance back (two launches
	// for one Spot interruption). termGen counts each fleet's decrementing
	// terminations (guarded by mu), so a view read before one is known to
	// be stale.
	desiredMu sync.Mutex
	termGen   map[string]uint64

	// Notices from agents wait here for the loop (spot.go); wake starts a
	// tick at once, so a notice does not wait for EvalInterval.
	noticeMu sync.Mutex
	notices  map[noticeKey]queuedNotice
	wake     chan struct{}
	spot     *spotMetrics
	// launch is what each fleet's launches taught this node
	// (launchdelay.go); it outlives a term, as it is only measurement.
	launch map[string]*launchState
}

// New returns a Scaler. reg may be nil.
func New(cfg Config, deps Deps, reg prometheus.Registerer) (*Scaler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Scaler{cfg: cfg, deps: deps, met: newMetrics(reg), fleets: map[string]*fleetState{}, inflight: map[string]bool{},
		notices: map[noticeKey]queuedNotice{}, wake: make(chan struct{}, 1), spot: newSpotMetrics(reg), termGen: map[string]uint64{}}, nil
}

// Run ticks every EvalInterval until ctx ends, then waits for running drain
// completions. Call it when this node becomes leader and cancel ctx when it
// stops being leader.
func (s *Scaler) Run(ctx context.Context) {
	s.mu.Lock()
	// A new term starts from the replicated state alone. The launch
	// timing bookkeeping goes too: kept from an earlier term of this node,
	// its stale "seen" set would time again the launches another leader
	// timed (and committed) in between.
	s.fleets = map[string]*fleetState{}
	s.launch = nil
	s.mu.Unlock()
	t := time.NewTicker(s.cfg.EvalInterval)
	defer t.Stop()
	defer s.wg.Wait()
	for {
		last := time.Now()
		s.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
			// Agents decide when notices come, and every tick reads the
			// cloud: a flood of them (a flapping stream replaying its
			// notices, a broken agent) must not drive the cloud calls
			// past one tick per minWakeGap.
			if gap := min(minWakeGap, s.cfg.EvalInterval) - time.Since(last); gap > 0 {
				wait := time.NewTimer(gap)
				select {
				case <-ctx.Done():
					wait.Stop()
					return
				case <-wait.C:
				}
			}
		}
	}
}

// minWakeGap is the least time between the starts of two ticks a notice
// woke: a notice still reaches the cloud well within the 1.5 s goal.
const minWakeGap = 250 * time.Millisecond

// Tick runs one evaluation of every fleet.
func (s *Scaler) Tick(ctx context.Context) {
	start := s.cfg.Now()
	defer func() { s.met.tick.Observe(s.cfg.Now().Sub(start).Seconds()) }()
	fleets := s.deps.Store.Fleets()
	if len(fleets) == 0 {
		return
	}
	names := make([]string, 0, len(fleets))
	for _, f := range fleets {
		names = append(names, f.Asg)
	}
	// Read before the groups and the registry, so a drain that finishes
	// after this is seen as one (applyPending, act, progressDrains).
	gens, finishing := map[string]uint64{}, map[string]bool{}
	s.mu.Lock()
	for _, f := range fleets {
		gens[f.Name] = s.termGen[f.Name]
	}
	for id := range s.inflight {
		finishing[id] = true
	}
	s.mu.Unlock()
	groups, err := s.deps.Cloud.DescribeGroups(ctx, names)
	if err != nil {
		s.met.cloudErrors.WithLabelValues(cloud.Classify(err).String()).Inc()
		s.cfg.Logger.Warn("scaler: describe groups", "err", err)
		return
	}
	byName := make(map[string]*cloud.Group, len(groups))
	for i := range groups {
		byName[groups[i].Name] = &groups[i]
	}
	seen := map[string]bool{}
	for _, f := range fleets {
		seen[f.Name] = true
		if ctx.Err() != nil {
			return
		}
		s.tickFleet(ctx, f, byName[f.Asg], gens[f.Name], finishing)
	}
	s.mu.Lock()
	for name := range s.fleets {
		if !seen[name] {
			delete(s.fleets, name)
		}
	}
	s.mu.Unlock()
}

func (s *Scaler) state(fleet string) *fleetState {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.fleets[fleet]
	if fs == nil {
		fs = &fleetState{heartbeatAt: map[string]time.Time{}, flags: map[string]string{}, firstSeen: map[string]time.Time{}, drainWaiting: map[string]string{}}
		s.fleets[fleet] = fs
	}
	return fs
}

// view is one fleet's situation in one tick.
type view struct {
	f     *shoalv1.Fleet
	g     *cloud.Group
	insts map[string]*shoalv1.Instance
	// inGroup maps each live group member (not yet Terminated) to its entry.
	inGroup map[string]cloud.Instance
	// draining counts registry instances being drained that the group still
	// counts in its desired capacity.
	draining int32
	// lo and hi are the bounds both Shoal and the group allow.
	lo, hi int32
	// latest is each reporting instance's metrics, read once per tick.
	latest map[string]map[string]float64
	// termGen is the fleet's count of decrementing terminations at the
	// start of the tick, before the group was read (see act).
	termGen uint64
	// finishing are the instances whose drain was finishing at the start
	// of the tick: one that ended since left the view stale (its state
	// read before or after), so it is not finished again this tick.
	finishing map[string]bool
}

// stale reports whether a drain of the fleet terminated an instance with
// the desired capacity decremented since the tick read the group: desired
// and draining in v may then disagree with each other and the cloud.
func (s *Scaler) stale(v *view) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.termGen[v.f.Name] != v.termGen
}

// current is the capacity Shoal counts: the group's desired capacity less
// what is draining, because draining capacity is as good as gone.
func (v *view) current() int32 { return v.g.Desired - v.draining }

func (s *Scaler) tickFleet(ctx context.Context, f *shoalv1.Fleet, g *cloud.Group, termGen uint64, finishing map[string]bool) {
	fs := s.state(f.Name)
	if g == nil {
		s.setExplain(fs, Explanation{Fleet: f.Name, Current: f.Desired, Recommended: f.Desired, Blocked: fmt.Sprintf("group not found: %q", f.Asg), Reason: "nothing acts on a fleet whose group does not exist"})
		s.mu.Lock()
		fs.groupStatus = "group not found"
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	fs.groupStatus = ""
	s.mu.Unlock()
	v := s.look(f, g)
	v.termGen, v.finishing = termGen, finishing
	s.syncRegistry(ctx, fs, v)
	s.handleNotices(ctx, fs, v)
	s.observeLaunches(ctx, v)
	s.recordFailedLaunches(ctx, v)
	s.spotReplace(ctx, fs, v)
	s.ensureHook(ctx, fs, v)
	s.progressDrains(ctx, fs, v)
	if pending := s.applyPending(ctx, fs, v); pending {
		return
	}
	s.decideAndAct(ctx, fs, v)
}

func (s *Scaler) look(f *shoalv1.Fleet, g *cloud.Group) *view {
	v := &view{f: f, g: g, insts: map[string]*shoalv1.Instance{}, inGroup: map[string]cloud.Instance{}}
	for _, in := range s.deps.Store.Instances(f.Name) {
		v.insts[in.Id] = in
	}
	for _, gi := range g.Instances {
		if gi.LifecycleState == cloud.LifecycleTerminated {
			continue
		}
		v.inGroup[gi.ID] = gi
	}
	for id, in := range v.insts {
		gi, ok := v.inGroup[id]
		if !ok || in.State != shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
			continue
		}
		// An instance waiting in the terminate hook has already left the
		// group's desired capacity.
		if !strings.HasPrefix(gi.LifecycleState, cloud.LifecycleTerminating) {
			v.draining++
		}
	}
	v.lo, v.hi = max(f.Min, g.Min), min(f.Max, g.Max)
	if s.deps.Metrics != nil {
		v.latest = s.deps.Metrics.Latest(f.Name)
	}
	return v
}

func (s *Scaler) apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, error) {
	r, err := s.deps.Store.Apply(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return r, r.Error()
}

// syncRegistry keeps the instance registry in step with the group: it
// registers members it has not seen (as pending, until their agent reports
// ready: readiness is ingestion's to commit), retires instances that left the
// group, and flags disagreements.
func (s *Scaler) syncRegistry(ctx context.Context, fs *fleetState, v *view) {
	now := s.cfg.Now()
	flags := map[string]string{}
	for id, gi := range v.inGroup {
		s.mu.Lock()
		if _, ok := fs.firstSeen[id]; !ok {
			fs.firstSeen[id] = now
		}
		first := fs.firstSeen[id]
		s.mu.Unlock()
		if _, known := v.insts[id]; !known {
			if strings.HasPrefix(gi.LifecycleState, cloud.LifecycleTerminating) {
				continue
			}
			reg := &shoalv1.Instance{Id: id, Fleet: v.f.Name, AvailabilityZone: gi.AZ, State: shoalv1.InstanceState_INSTANCE_STATE_PENDING}
			if _, err := s.apply(ctx, fsm.RegisterInstance(reg)); err != nil {
				s.cfg.Logger.Warn("scaler: register instance", "instance", id, "err", err)
				continue
			}
			v.insts[id] = reg
			continue
		}
		_, reporting := v.latest[id]
		if !reporting && gi.LifecycleState == cloud.LifecycleInService && now.Sub(first) > s.cfg.AgentGrace {
			flags[id] = fmt.Sprintf("agent never reported within %v of launch", s.cfg.AgentGrace)
		}
	}
	for id, in := range v.insts {
		if _, ok := v.inGroup[id]; ok {
			continue
		}
		switch {
		case in.State == shoalv1.InstanceState_INSTANCE_STATE_TERMINATED:
			s.retire(ctx, id)
			delete(v.insts, id)
		case in.State == shoalv1.InstanceState_INSTANCE_STATE_UNHEALTHY && now.Sub(in.GetStateChangeTime().AsTime()) > s.cfg.RetireUnknownAfter:
			// Unknown to the group and unhealthy this long: nobody launched
			// it, or it is long gone. Keeping it would let invented ids
			// pile up in the replicated state.
			s.cfg.Logger.Info("scaler: retiring an instance the group does not know", "fleet", v.f.Name, "instance", id, "unhealthy_for", now.Sub(in.GetStateChangeTime().AsTime()).Round(time.Second))
			s.retire(ctx, id)
			delete(v.insts, id)
		case in.State == shoalv1.InstanceState_INSTANCE_STATE_DRAINING:
			// Gone from the group mid-drain (terminated by hand, say): the
			// drain has nothing left to protect.
			if _, err := s.apply(ctx, fsm.SetInstanceState(id, shoalv1.InstanceState_INSTANCE_STATE_TERMINATED)); err != nil {
				s.cfg.Logger.Warn("scaler: instance gone", "instance", id, "err", err)
			}
		default:
			// A warm-pool instance is outside the group's Instances by
			// design; that is no disagreement.
			if !in.Warm && now.Sub(in.GetRegisterTime().AsTime()) > s.cfg.AgentGrace {
				flags[id] = fmt.Sprintf("agent reports but group %s does not know the instance", v.g.Name)
			}
		}
	}
	s.mu.Lock()
	fs.flags = flags
	for id := range fs.firstSeen {
		if _, ok := v.inGroup[id]; !ok {
			delete(fs.firstSeen, id)
		}
	}
	s.mu.Unlock()
}

// retire removes an instance from the registry and forgets its enrollment
// record: AWS never reuses an instance id, so the record only takes room.
func (s *Scaler) retire(ctx context.Context, id string) {
	if _, err := s.apply(ctx, fsm.InstanceLeave(id)); err != nil && !errors.Is(err, fsm.ErrNotFound) {
		s.cfg.Logger.Warn("scaler: instance leave", "instance", id, "err", err)
	}
	if _, err := s.apply(ctx, fsm.IdentityReset(id)); err != nil && !errors.Is(err, fsm.ErrNotFound) {
		s.cfg.Logger.Warn("scaler: forget enrollment", "instance", id, "err", err)
	}
}

// ensureHook puts Shoal's TERMINATING lifecycle hook on the group once per
// term, so terminations Shoal did not start still get drained.
func (s *Scaler) ensureHook(ctx context.Context, fs *fleetState, v *view) {
	if fs.hookEnsured {
		return
	}
	hooks, err := s.deps.Cloud.DescribeLifecycleHooks(ctx, v.g.Name)
	if err != nil {
		s.cloudErr("describe lifecycle hooks", v.g.Name, err)
		return
	}
	for _, h := range hooks {
		if h.Name == s.cfg.HookName && h.Transition == cloud.TransitionTerminating &&
			h.HeartbeatTimeout >= cloud.MinHookHeartbeat && h.HeartbeatTimeout <= cloud.MaxHookHeartbeat {
			// Someone chose this timeout (Terraform's drain_timeout_seconds,
			// fleet bootstrap's --hook-heartbeat): keep it, and heartbeat by it.
			fs.hookEnsured, fs.hookHeartbeat = true, h.HeartbeatTimeout
			return
		}
	}
	err = s.deps.Cloud.PutLifecycleHook(ctx, cloud.LifecycleHook{
		Name: s.cfg.HookName, Group: v.g.Name, Transition: cloud.TransitionTerminating,
		HeartbeatTimeout: s.cfg.HookHeartbeat, DefaultResult: cloud.ResultContinue,
	})
	if err != nil {
		s.cloudErr("put lifecycle hook", v.g.Name, err)
		return
	}
	fs.hookEnsured, fs.hookHeartbeat = true, s.cfg.HookHeartbeat
}

func (s *Scaler) cloudErr(what, group string, err error) {
	s.met.cloudErrors.WithLabelValues(cloud.Classify(err).String()).Inc()
	s.cfg.Logger.Warn("scaler: "+what, "group", group, "err", err, "class", cloud.Classify(err).String())
}

func (s *Scaler) setExplain(fs *fleetState, e Explanation) {
	e.At = s.cfg.Now()
	s.mu.Lock()
	fs.explain = e
	s.mu.Unlock()
}

// Explain returns the last evaluation of fleet, or false before the first.
func (s *Scaler) Explain(fleet string) (Explanation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, ok := s.fleets[fleet]
	if !ok || fs.explain.At.IsZero() {
		return Explanation{}, false
	}
	e := fs.explain
	e.Details = append([]string(nil), e.Details...)
	for id, why := range fs.drainWaiting {
		e.Details = append(e.Details, fmt.Sprintf("draining %s: %s", id, why))
	}
	for _, note := range fs.spotNotes {
		e.Details = append(e.Details, "capacity notice: "+note.text)
	}
	sort.Strings(e.Details[len(fs.explain.Details):])
	return e, true
}

// Flags returns why instances of fleet are flagged, by instance id.
func (s *Scaler) Flags(fleet string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	if fs, ok := s.fleets[fleet]; ok {
		for k, v := range fs.flags {
			out[k] = v
		}
	}
	return out
}

// GroupStatus returns "group not found" while the fleet's group is missing.
func (s *Scaler) GroupStatus(fleet string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fs, ok := s.fleets[fleet]; ok {
		return fs.groupStatus
	}
	return ""
}

func inject(name string) { failpoint.Inject(name) }

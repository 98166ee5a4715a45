package scaler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Reasons an instance drains because capacity is leaving, as its
// state_reason starts: the replacement logic recognises its own drains by
// them, and they survive a leader change in the FSM.
const (
	reasonSpot      = "spot interruption at "
	reasonRebalance = "rebalance recommendation at "
)

// maxSpotAttempts bounds the failed replacement decisions per interrupted
// instance; after that the replacement follows the termination.
const maxSpotAttempts = 3

// maxQueuedNotices bounds the notices waiting for the loop. They are a
// handful per instance life; the bound only matters against a flood.
const maxQueuedNotices = 1024

// noticeKey identifies a queued notice: the newest of each kind per
// instance is all that matters.
type noticeKey struct {
	id   string
	kind shoalv1.InstanceEventKind
}

type queuedNotice struct {
	fleet string
	ev    *shoalv1.InstanceEvent
	at    time.Time
}

// spotMetrics count notices and time the reaction to them.
type spotMetrics struct {
	notices   *prometheus.CounterVec
	dropped   prometheus.Counter
	toDrain   prometheus.Histogram
	replacing *prometheus.CounterVec
}

func newSpotMetrics(reg prometheus.Registerer) *spotMetrics {
	m := &spotMetrics{
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_scaler_instance_notices_total",
			Help: "Instance notices the leader acted on (a repeat of a recorded notice is not counted), by kind."}, []string{"kind"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_scaler_instance_notices_dropped_total",
			Help: "Instance notices dropped because the queue was full or their instance never registered."}),
		toDrain: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shoal_scaler_notice_to_drain_seconds",
			Help: "From the leader receiving an interruption notice to the drain committed.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		replacing: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_scaler_spot_replacements_total",
			Help: "How interrupted instances were replaced: launched (desired+1 by Shoal), capacity_rebalance (by the group), after_termination (at max)."}, []string{"path"}),
	}
	if reg != nil {
		reg.MustRegister(m.notices, m.dropped, m.toDrain, m.replacing)
	}
	return m
}

// Notify queues an instance notice for the leader's loop and wakes it. It
// never blocks: ingest calls it under its own lock.
func (s *Scaler) Notify(fleet, instanceID string, ev *shoalv1.InstanceEvent) {
	s.noticeMu.Lock()
	k := noticeKey{id: instanceID, kind: ev.GetKind()}
	if _, ok := s.notices[k]; !ok && len(s.notices) >= maxQueuedNotices {
		s.noticeMu.Unlock()
		s.spot.dropped.Inc()
		return
	}
	s.notices[k] = queuedNotice{fleet: fleet, ev: ev, at: s.cfg.Now()}
	s.noticeMu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// takeNotices removes and returns the queued notices of fleet.
func (s *Scaler) takeNotices(fleet string) map[noticeKey]queuedNotice {
	s.noticeMu.Lock()
	defer s.noticeMu.Unlock()
	out := map[noticeKey]queuedNotice{}
	for k, n := range s.notices {
		if n.fleet == fleet {
			out[k] = n
			delete(s.notices, k)
		}
	}
	return out
}

// requeue puts back a notice for an instance not registered yet, unless it
// has waited longer than an agent grace: then it never will be.
func (s *Scaler) requeue(k noticeKey, n queuedNotice) {
	if s.cfg.Now().Sub(n.at) > s.cfg.AgentGrace {
		s.spot.dropped.Inc()
		return
	}
	s.noticeMu.Lock()
	if _, newer := s.notices[k]; !newer {
		s.notices[k] = n
	}
	s.noticeMu.Unlock()
}

// handleNotices turns the fleet's queued notices into committed state: an
// interruption drains the instance with a deadline, a rebalance
// recommendation flags it at risk (and drains it with --rebalance-replace),
// a warm-pool lifecycle state flags it warm. A notice the state already
// holds (a replay after a reconnect or a leader change) changes nothing.
func (s *Scaler) handleNotices(ctx context.Context, fs *fleetState, v *view) {
	q := s.takeNotices(v.f.Name)
	keys := make([]noticeKey, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].id != keys[j].id {
			return keys[i].id < keys[j].id
		}
		return keys[i].kind < keys[j].kind
	})
	for _, k := range keys {
		n := q[k]
		in, ok := v.insts[k.id]
		if !ok {
			s.requeue(k, n)
			continue
		}
		if in.State == shoalv1.InstanceState_INSTANCE_STATE_TERMINATED {
			continue
		}
		m, kind := s.markFor(in, n.ev)
		if m == nil {
			continue
		}
		if _, err := s.apply(ctx, fsm.MarkInstance(*m)); err != nil {
			s.cfg.Logger.Warn("scaler: record instance notice", "instance", k.id, "kind", kind, "err", err)
			s.requeue(k, n)
			continue
		}
		s.spot.notices.WithLabelValues(kind).Inc()
		if v.g.CapacityRebalance && kind != "target_lifecycle_state" {
			// The group replaces it whatever else happens to it (its own
			// termination may come before a drain of Shoal's).
			s.noteSpot(fs, map[string]string{k.id: fmt.Sprintf("%s: group %s has Capacity Rebalancing on, so the group launches the replacement and Shoal does not launch a second", k.id, v.g.Name)})
		}
		s.cfg.Logger.Info("scaler: instance notice", "fleet", v.f.Name, "instance", k.id, "kind", kind, "reason", m.Reason)
		if m.Drain {
			s.spot.toDrain.Observe(s.cfg.Now().Sub(n.at).Seconds())
			if gi, inGroup := v.inGroup[k.id]; inGroup && in.State != shoalv1.InstanceState_INSTANCE_STATE_DRAINING &&
				!strings.HasPrefix(gi.LifecycleState, cloud.LifecycleTerminating) {
				v.draining++
			}
		}
		applyMark(in, m, s.cfg.Now())
	}
}

// markFor is the mark a notice calls for, or nil when the instance already
// carries it.
func (s *Scaler) markFor(in *shoalv1.Instance, ev *shoalv1.InstanceEvent) (*fsm.Mark, string) {
	draining := in.State == shoalv1.InstanceState_INSTANCE_STATE_DRAINING
	switch ev.GetKind() {
	case shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION:
		t := ev.GetTime().AsTime()
		if in.InterruptionAction == ev.GetAction() && in.GetInterruptionTime().AsTime().Equal(t.Truncate(time.Millisecond)) {
			return nil, ""
		}
		m := &fsm.Mark{ID: in.Id, InterruptionAction: ev.GetAction(), InterruptionMS: t.UnixMilli(),
			Drain: true, Reason: reasonSpot + t.UTC().Format(time.RFC3339), DrainDeadlineMS: t.Add(-s.cfg.SpotDrainMargin).UnixMilli()}
		if ev.GetAction() != "terminate" {
			m.Reason += " (" + ev.GetAction() + ")"
		}
		if draining && !replacing(in) {
			// Already leaving for a scale-in: it needs the deadline, not a
			// replacement, so its reason (none) stays.
			m.Reason = in.StateReason
		}
		return m, "spot_interruption"
	case shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_REBALANCE_RECOMMENDATION:
		replace := s.cfg.RebalanceReplace && !draining
		if in.AtRisk && !replace {
			return nil, ""
		}
		yes := true
		m := &fsm.Mark{ID: in.Id, AtRisk: &yes}
		if replace {
			m.Drain, m.Reason = true, reasonRebalance+ev.GetTime().AsTime().UTC().Format(time.RFC3339)
		}
		return m, "rebalance_recommendation"
	case shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_TARGET_LIFECYCLE_STATE:
		// Terminated needs nothing here: the group's TERMINATING hook
		// holds the instance and progressDrains drains it, as for any
		// termination the group starts.
		warm := strings.HasPrefix(ev.GetState(), cloud.LifecycleWarmedPrefix)
		if in.Warm == warm {
			return nil, ""
		}
		return &fsm.Mark{ID: in.Id, Warm: &warm}, "target_lifecycle_state"
	}
	return nil, ""
}

// applyMark mirrors a committed mark on the tick's copy of the instance.
func applyMark(in *shoalv1.Instance, m *fsm.Mark, now time.Time) {
	if m.InterruptionAction != "" {
		in.InterruptionAction = m.InterruptionAction
		in.InterruptionTime = tsMS(m.InterruptionMS)
	}
	if m.Drain {
		if in.State != shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
			in.State = shoalv1.InstanceState_INSTANCE_STATE_DRAINING
			in.StateChangeTime = tsMS(now.UnixMilli())
		}
		in.StateReason = m.Reason
		in.DrainDeadline = nil
		if m.DrainDeadlineMS != 0 {
			in.DrainDeadline = tsMS(m.DrainDeadlineMS)
		}
	}
	if m.AtRisk != nil {
		in.AtRisk = *m.AtRisk
	}
	if m.Warm != nil {
		in.Warm = *m.Warm
	}
}

// replacing reports whether in drains because its capacity is being taken
// away (so it needs a replacement), not because Shoal scaled in.
func replacing(in *shoalv1.Instance) bool {
	return in.State == shoalv1.InstanceState_INSTANCE_STATE_DRAINING &&
		(strings.HasPrefix(in.StateReason, reasonSpot) || strings.HasPrefix(in.StateReason, reasonRebalance))
}

// spotNoteTTL is how long explain keeps saying which path handled an
// instance after the last tick that saw it: the group may end an instance
// within a second of its notice (Capacity Rebalancing in a fast cloud), and
// the answer is still wanted then.
const spotNoteTTL = 2 * time.Minute

type spotNote struct {
	text  string
	until time.Time
}

// noteSpot records explain's notes by instance and forgets expired ones.
func (s *Scaler) noteSpot(fs *fleetState, notes map[string]string) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if fs.spotNotes == nil {
		fs.spotNotes = map[string]spotNote{}
	}
	for id, n := range fs.spotNotes {
		if now.After(n.until) {
			delete(fs.spotNotes, id)
		}
	}
	for id, text := range notes {
		fs.spotNotes[id] = spotNote{text: text, until: now.Add(spotNoteTTL)}
	}
}

// spotHistory is what the fleet's decisions say about replacements: the
// instances a live (pending, applied or superseded) SPOT decision names,
// and how many failed ones named each.
func spotHistory(ds []*shoalv1.Decision) (replaced map[string]bool, failures map[string]int) {
	replaced, failures = map[string]bool{}, map[string]int{}
	for _, d := range ds {
		if d.Source != fsm.SourceSpot {
			continue
		}
		for _, id := range namedInstances(d.Reason) {
			if d.Status == failed {
				failures[id]++
			} else {
				replaced[id] = true
			}
		}
	}
	return replaced, failures
}

// namedInstances reads the ids out of a replacement decision's reason,
// "replace i-1, i-2: ...".
func namedInstances(reason string) []string {
	rest, ok := strings.CutPrefix(reason, "replace ")
	if !ok {
		return nil
	}
	list, _, _ := strings.Cut(rest, ":")
	var out []string
	for _, id := range strings.Split(list, ",") {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// spotReplace asks for a replacement of every instance drained for a
// capacity notice that has none yet: one SPOT decision per tick naming them
// all, for desired+n within the fleet's max and the group's MaxSize. The
// decision is committed pending; applyPending, right after in the same
// tick, sets the group's desired capacity. Which path each instance took
// goes to explain. Everything it reads is in the FSM or the group, so a new
// leader picks up a half-handled interruption where the old one stopped.
func (s *Scaler) spotReplace(ctx context.Context, fs *fleetState, v *view) {
	notes := map[string]string{}
	defer func() { s.noteSpot(fs, notes) }()
	var need []*shoalv1.Instance
	for id, in := range v.insts {
		if _, inGroup := v.inGroup[id]; inGroup && replacing(in) {
			need = append(need, in)
		}
	}
	if len(need) == 0 {
		return
	}
	sort.Slice(need, func(i, j int) bool { return need[i].Id < need[j].Id })
	ds, err := s.deps.Store.Decisions(v.f.Name, 0)
	if err != nil {
		return
	}
	replaced, failures := spotHistory(ds)
	var launch []*shoalv1.Instance
	// Instances no launch of Shoal's replaces are terminated without
	// decrementing, so the group's desired capacity still counts them:
	// they are not "draining" capacity (see view.current), or the engine
	// would buy back what the group replaces itself (one launch too many).
	keep := func(in *shoalv1.Instance) {
		if gi := v.inGroup[in.Id]; !strings.HasPrefix(gi.LifecycleState, cloud.LifecycleTerminating) && v.draining > 0 {
			v.draining--
		}
	}
	for _, in := range need {
		id := in.Id
		switch {
		case replaced[id]:
			notes[id] = fmt.Sprintf("%s: replacement launched by Shoal (desired+1); it is terminated with the desired capacity decremented once drained%s", id, deadlineNote(in))
		case v.g.CapacityRebalance:
			keep(in)
			notes[id] = fmt.Sprintf("%s: group %s has Capacity Rebalancing on, so the group launches the replacement and Shoal does not launch a second; drained, then terminated without decrementing%s", id, v.g.Name, deadlineNote(in))
		case failures[id] >= maxSpotAttempts:
			keep(in)
			notes[id] = fmt.Sprintf("%s: %d replacement decisions failed (SetDesiredCapacity refused); the replacement follows the termination%s", id, failures[id], deadlineNote(in))
		case fs.launchBlock != "":
			notes[id] = fmt.Sprintf("%s: no replacement launched while %s; it follows the termination unless launches recover first", id, fs.launchBlock)
		default:
			launch = append(launch, in)
		}
	}
	room := min(v.f.Max, v.g.Max) - v.g.Desired
	if room < int32(len(launch)) {
		for _, in := range launch[max(room, 0):] {
			keep(in)
			notes[in.Id] = fmt.Sprintf("%s: the group is at max (desired %d, fleet max %d, group MaxSize %d): the replacement can only follow the termination%s",
				in.Id, v.g.Desired, v.f.Max, v.g.Max, deadlineNote(in))
		}
		launch = launch[:max(room, 0)]
	}
	if len(launch) == 0 {
		return
	}
	ids := make([]string, len(launch))
	for i, in := range launch {
		ids[i] = in.Id
		notes[in.Id] = fmt.Sprintf("%s: replacement asked for (desired %d → %d)%s", in.Id, v.g.Desired, v.g.Desired+int32(len(launch)), deadlineNote(in))
	}
	cur := v.current()
	why := launch[0].StateReason
	r, err := s.apply(ctx, fsm.CreateDecision(&shoalv1.Decision{
		Fleet: v.f.Name, PreviousCapacity: cur, Capacity: min(cur+int32(len(launch)), v.f.Max),
		Reason: "replace " + strings.Join(ids, ", ") + ": " + why, Source: fsm.SourceSpot, Actor: s.cfg.NodeID,
	}))
	if err != nil {
		s.cfg.Logger.Warn("scaler: commit replacement", "fleet", v.f.Name, "instances", ids, "err", err)
		return
	}
	s.spot.replacing.WithLabelValues("launched").Add(float64(len(launch)))
	s.met.decisions.WithLabelValues("out").Inc()
	s.cfg.Logger.Info("scaler: replacement decided", "fleet", v.f.Name, "decision", r.Decision.GetId(), "instances", ids)
	inject("scaler.after-spot-decision")
}

func deadlineNote(in *shoalv1.Instance) string {
	if dl := in.GetDrainDeadline(); dl != nil {
		return "; drain deadline " + dl.AsTime().UTC().Format(time.RFC3339)
	}
	return ""
}

// terminateDecrements says whether ending a drained instance should lower
// the group's desired capacity: yes for a scale-in victim and for a
// replaced interruption (desired returns to its value before the notice);
// no when nothing replaced it yet (at max, Capacity Rebalancing, failed
// launches), so the group launches one as soon as it is gone.
//
// Shoal's own replacement is checked first, as spotReplace does: Capacity
// Rebalancing turned on after Shoal launched one must not leave the group a
// permanent instance too many.
func (s *Scaler) terminateDecrements(v *view, in *shoalv1.Instance) bool {
	if !replacing(in) {
		return true
	}
	ds, err := s.deps.Store.Decisions(v.f.Name, 0)
	if err != nil {
		return !v.g.CapacityRebalance
	}
	replaced, _ := spotHistory(ds)
	return replaced[in.Id]
}

// drainDeadlinePassed reports whether in has a drain deadline of its own
// (an interruption's notice time less the margin) that has come.
func drainDeadlinePassed(in *shoalv1.Instance, now time.Time) bool {
	dl := in.GetDrainDeadline()
	return dl != nil && !now.Before(dl.AsTime())
}

func tsMS(ms int64) *timestamppb.Timestamp { return timestamppb.New(time.UnixMilli(ms)) }

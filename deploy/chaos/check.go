package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud"
)

// Invariant is one checked property: report.json's invariants[].
type Invariant struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Counterexamples say what broke it, at most maxCounterexamples of
	// them, the last one saying how many more there were.
	Counterexamples []string `json:"counterexamples"`
}

const maxCounterexamples = 20

// Invariant names, in issue 15's order.
const (
	InvExactlyOnce   = "at_most_one_effect_per_decision"
	InvBounds        = "desired_within_min_max"
	InvDrain         = "no_terminated_instance_skipped_drain"
	InvLinearizable  = "control_api_linearizable"
	InvNoFailed      = "no_failed_request"
	InvFSMEqual      = "fsm_hashes_equal"
	InvPeriodsOnce   = "cloudwatch_periods_once"
	porcupineTimeout = 60 * time.Second
)

type collector struct {
	inv  Invariant
	more int
}

func newCollector(name string) *collector {
	return &collector{inv: Invariant{Name: name, OK: true, Counterexamples: []string{}}}
}

func (c *collector) fail(format string, args ...any) {
	c.inv.OK = false
	if len(c.inv.Counterexamples) < maxCounterexamples {
		c.inv.Counterexamples = append(c.inv.Counterexamples, fmt.Sprintf(format, args...))
		return
	}
	c.more++
}

func (c *collector) done() Invariant {
	if c.more > 0 {
		c.inv.Counterexamples = append(c.inv.Counterexamples, fmt.Sprintf("... and %d more", c.more))
	}
	return c.inv
}

// Check evaluates invariants 1–7 on a run's records.
func Check(r *Records) []Invariant {
	return []Invariant{
		checkExactlyOnce(r),
		checkBounds(r),
		checkDrain(r),
		checkLinearizable(r),
		checkNoFailed(r),
		checkFSM(r),
		checkPeriods(r),
	}
}

// scalingCalls are the run's Auto Scaling calls that act on the fleet's
// group, in arrival order.
func scalingCalls(r *Records) []localcloud.AuditRecord {
	var out []localcloud.AuditRecord
	for _, a := range r.Audit {
		if a.Service != "autoscaling" || a.AtMS < r.T0MS {
			continue
		}
		switch a.Op {
		case "SetDesiredCapacity", "TerminateInstanceInAutoScalingGroup", "CompleteLifecycleAction", "UpdateAutoScalingGroup":
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// applied reports whether the call took effect: answered 200 (a dropped
// response is applied too; its status is the one it would have had).
func applied(a localcloud.AuditRecord) bool { return a.Status == 200 }

// checkExactlyOnce is invariant 1:
//   - every applied SetDesiredCapacity asks for a capacity some committed
//     decision chose (no effect without a decision);
//   - no instance is terminated twice;
//   - after a newer term's first call, at most one call of an older term
//     arrives (a frozen leader that passed VerifyLeader and then acted);
//   - the group's capacity changes no more often than decisions changed it,
//     plus the older-term calls allowed;
//   - once the faults are over, the group returns to the fleet's newest
//     committed capacity within two evaluation intervals.
func checkExactlyOnce(r *Records) Invariant {
	c := newCollector(InvExactlyOnce)
	chosen := map[int]bool{}
	changes, last := 0, -1
	for _, d := range r.Decisions {
		chosen[d.To] = true
		if d.AtMS >= r.T0MS && d.From != d.To {
			changes++
		}
		if d.AtMS < r.T0MS {
			last = d.To // the group's capacity when the run began
		}
	}
	terminated := map[string]int64{}
	var maxTerm uint64
	staleAfter := map[uint64]int{} // newer term -> older-term calls after it
	stale := 0
	effects := 0
	// Terms over every mutating Auto Scaling call (lifecycle heartbeats
	// and instance protection included): a zombie's call of any kind
	// counts.
	bySeq := append([]localcloud.AuditRecord(nil), r.Audit...)
	sort.Slice(bySeq, func(i, j int) bool { return bySeq[i].Seq < bySeq[j].Seq })
	for _, a := range bySeq {
		if a.Service != "autoscaling" || a.AtMS < r.T0MS {
			continue
		}
		// Only coordinators act on the group during the run, each call
		// under its leadership's term: a call without one means the term
		// never reached the cloud, and the older-term count below would
		// pass blind.
		if a.Term == 0 {
			c.fail("seq %d: %s by %s carries no %s term", a.Seq, a.Op, a.Caller, localcloud.TermHeader)
			continue
		}
		if a.Term < maxTerm {
			staleAfter[maxTerm]++
			stale++
			if staleAfter[maxTerm] == 2 {
				c.fail("seq %d: a second call of an older term (%d) after term %d's first call (%s %s)", a.Seq, a.Term, maxTerm, a.Op, a.Instance)
			}
		}
		maxTerm = max(maxTerm, a.Term)
	}
	for _, a := range scalingCalls(r) {
		if !applied(a) {
			continue
		}
		switch a.Op {
		case "SetDesiredCapacity":
			if a.Desired == nil {
				continue
			}
			if !chosen[*a.Desired] {
				c.fail("seq %d: SetDesiredCapacity %d (term %d, %s) matches no committed decision", a.Seq, *a.Desired, a.Term, a.Caller)
			}
			if last >= 0 && *a.Desired != last {
				effects++
			}
			last = *a.Desired
		case "TerminateInstanceInAutoScalingGroup":
			if prev, ok := terminated[a.Instance]; ok {
				c.fail("seq %d: %s terminated again (first at seq %d)", a.Seq, a.Instance, prev)
			}
			terminated[a.Instance] = a.Seq
		}
	}
	checkRestored(r, c)
	// Each older-term call may cost two changes: its own, and the newer
	// term's undoing it.
	if effects > changes+2*stale {
		c.fail("the group's capacity changed %d times; %d committed decisions changed it and %d older-term calls (two changes each) were allowed", effects, changes, stale)
	}
	// At the end the faults are over, but a scale-in may still be
	// draining (the group's desired drops as its victims terminate): two
	// evaluation intervals plus the drain deadline.
	conv := r.Convergence
	if bound := 2*r.EvalIntervalMS + r.DrainTimeoutMS; conv.AfterMS < 0 || conv.AfterMS > bound {
		c.fail("the group's desired %d did not reach the fleet's committed %d within two evaluation intervals and the drain timeout (%d ms) of t=%.1fs (took %d ms)",
			conv.GroupDesired, conv.FleetDesired, bound, float64(conv.CheckedFromMS)/1000, conv.AfterMS)
	}
	return c.done()
}

// checkRestored: an older-term SetDesiredCapacity that took effect and
// moved the group off the newest committed capacity (a zombie leader's
// late call) must be undone by a newer term within two evaluation
// intervals: a newer term's applied call sets the newest committed
// capacity (or a later decision's) by then.
func checkRestored(r *Records, c *collector) {
	calls := scalingCalls(r)
	var maxTerm uint64
	for i, a := range calls {
		stale := a.Term > 0 && a.Term < maxTerm
		maxTerm = max(maxTerm, a.Term)
		if !stale || !applied(a) || a.Op != "SetDesiredCapacity" || a.Desired == nil {
			continue
		}
		want, found := -1, false
		for _, d := range r.Decisions {
			if d.AtMS <= a.AtMS {
				want = d.To
			}
		}
		if want < 0 || *a.Desired == want {
			continue
		}
		deadline := a.AtMS + 2*r.EvalIntervalMS
		for _, b := range calls[i+1:] {
			if b.AtMS > deadline {
				continue
			}
			if b.Term > a.Term && applied(b) && b.Op == "SetDesiredCapacity" && b.Desired != nil {
				found = found || *b.Desired == want || decidedAfter(r, *b.Desired, a.AtMS)
			}
		}
		if !found {
			c.fail("seq %d: term %d's late SetDesiredCapacity %d at t=%.1fs left the group off the committed %d for more than two evaluation intervals",
				a.Seq, a.Term, *a.Desired, float64(a.AtMS-r.T0MS)/1000, want)
		}
	}
}

// decidedAfter reports whether a decision after at chose capacity v.
func decidedAfter(r *Records, v int, at int64) bool {
	for _, d := range r.Decisions {
		if d.AtMS > at && d.To == v {
			return true
		}
	}
	return false
}

// checkBounds is invariant 2: desired capacity stays within [min, max] in
// every applied call, every decision and every accepted scale.
func checkBounds(r *Records) Invariant {
	c := newCollector(InvBounds)
	in := func(v int) bool { return v >= r.Min && v <= r.Max }
	if len(r.Decisions) == 0 {
		c.fail("no committed decision was read: nothing to check")
	}
	// A call outside the bounds is Shoal's fault even when the cloud
	// refuses it (the group's MaxSize saved it): the decision it served
	// then fails.
	for _, a := range scalingCalls(r) {
		if a.Op == "SetDesiredCapacity" && a.Desired != nil && !in(*a.Desired) {
			c.fail("seq %d: SetDesiredCapacity %d sent by %s (term %d) outside [%d, %d]; answered %d", a.Seq, *a.Desired, a.Caller, a.Term, r.Min, r.Max, a.Status)
		}
	}
	for _, d := range r.Decisions {
		if !in(d.To) {
			c.fail("decision %d: %d → %d outside [%d, %d]", d.ID, d.From, d.To, r.Min, r.Max)
		}
	}
	for _, o := range r.Ops {
		if o.Kind == "scale" && o.OK && (!in(o.Capacity) || !in(int(o.Arg))) {
			c.fail("operator scale to %.0f at %.1fs was accepted (capacity %d), outside [%d, %d]", o.Arg, float64(o.CallNS)/1e9, o.Capacity, r.Min, r.Max)
		}
	}
	return c.done()
}

// checkDrain is invariant 3: an instance Shoal let go (completed its
// terminating hook, or terminated it) had no request of the load still in
// flight on it, unless the drain deadline had passed since the decision
// that scaled in.
func checkDrain(r *Records) Invariant {
	c := newCollector(InvDrain)
	// Without the answering instance on its requests the check is blind.
	named := false
	for _, q := range r.Requests {
		named = named || q.Instance != ""
	}
	if !named {
		c.fail("no request names the instance that answered it: nothing to check")
	}
	released := map[string]int64{} // instance -> first release (Unix ms)
	for _, a := range scalingCalls(r) {
		if !applied(a) || a.Instance == "" {
			continue
		}
		if a.Op == "CompleteLifecycleAction" || a.Op == "TerminateInstanceInAutoScalingGroup" {
			if _, ok := released[a.Instance]; !ok {
				released[a.Instance] = a.AtMS
			}
		}
	}
	for _, q := range r.Requests {
		at, ok := released[q.Instance]
		if !ok || q.Instance == "" || r.T0MS+q.EndMS <= at {
			continue
		}
		startMS := r.T0MS + q.StartMS
		if startMS >= at {
			c.fail("%s answered a request started at %.1fs, after it was released at %.1fs", q.Instance, float64(q.StartMS)/1000, float64(at-r.T0MS)/1000)
			continue
		}
		// In flight at release: allowed only past the drain deadline.
		var scaleIn int64
		for _, d := range r.Decisions {
			if d.To < d.From && d.AtMS <= at {
				scaleIn = d.AtMS
			}
		}
		if scaleIn == 0 || at-scaleIn < r.DrainTimeoutMS {
			c.fail("%s released at %.1fs with a request in flight (%.1fs–%.1fs), %d ms after the scale-in (drain timeout %d ms)",
				q.Instance, float64(at-r.T0MS)/1000, float64(q.StartMS)/1000, float64(q.EndMS)/1000, at-scaleIn, r.DrainTimeoutMS)
		}
	}
	return c.done()
}

// checkNoFailed is invariant 5: no request through the LB failed, except
// one in flight when a backend was killed abruptly.
func checkNoFailed(r *Records) Invariant {
	c := newCollector(InvNoFailed)
	if len(r.Requests) == 0 {
		c.fail("the load generator recorded no request: nothing to check")
	}
	for _, q := range r.Requests {
		if !q.Failed() {
			continue
		}
		excused := false
		for _, k := range r.BackendKills {
			excused = excused || (q.StartMS <= k.AtMS && k.AtMS <= q.EndMS)
		}
		if !excused {
			what := q.Err
			if q.Status != 0 {
				what = strings.TrimSpace(fmt.Sprintf("HTTP %d %s", q.Status, q.Err))
			}
			c.fail("request at %.3fs–%.3fs failed: %s", float64(q.StartMS)/1000, float64(q.EndMS)/1000, what)
		}
	}
	return c.done()
}

// checkFSM is invariant 6: every node answered with the same applied
// index and the same FSM hash.
func checkFSM(r *Records) Invariant {
	c := newCollector(InvFSMEqual)
	if len(r.FSM) == 0 {
		c.fail("no node's FSM was read")
	}
	for _, n := range r.FSM {
		if n.Err != "" {
			c.fail("%s: %s", n.Node, n.Err)
			continue
		}
		if ref := r.FSM[0]; n.Hash != ref.Hash || n.Applied != ref.Applied {
			c.fail("%s: hash %.12s at applied %d; %s: %.12s at %d", n.Node, n.Hash, n.Applied, ref.Node, ref.Hash, ref.Applied)
		}
	}
	return c.done()
}

// checkPeriods is invariant 7. Periods hold each heartbeat timestamp (one
// per published period, read at 1 s resolution): a timestamp holding two
// samples was published twice; a gap of more than one period between
// consecutive ones lost periods, which a fault window (widened by two
// periods, the time a batch may wait and be retried) must explain.
func checkPeriods(r *Records) Invariant {
	c := newCollector(InvPeriodsOnce)
	if len(r.Periods) == 0 {
		c.fail("CloudWatch holds no heartbeat period")
		return c.done()
	}
	p := r.PublishIntervalMS
	ps := append([]Period(nil), r.Periods...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].StartMS < ps[j].StartMS })
	for i, per := range ps {
		if per.SampleCount > 1 {
			c.fail("period %s published %v times", time.UnixMilli(per.StartMS).UTC().Format(time.TimeOnly), per.SampleCount)
		}
		if i == 0 || per.StartMS-ps[i-1].StartMS <= p+p/2 {
			continue
		}
		from, to := ps[i-1].StartMS+p, per.StartMS // the missing periods' span
		explained := false
		for _, f := range r.Faults {
			fs := r.T0MS + int64(f.StartS*1000) - 2*p
			fe := r.T0MS + int64(f.EndS*1000) + 2*p
			explained = explained || (from < fe && to > fs)
		}
		if !explained {
			c.fail("periods from %s to %s are missing and no fault window explains them",
				time.UnixMilli(from).UTC().Format(time.TimeOnly), time.UnixMilli(to).UTC().Format(time.TimeOnly))
		}
	}
	return c.done()
}

// Failed lists the invariants that do not hold.
func Failed(invs []Invariant) []string {
	var out []string
	for _, i := range invs {
		if !i.OK {
			out = append(out, i.Name+": "+strings.Join(i.Counterexamples, "; "))
		}
	}
	return out
}

// registerInput and registerOutput are the control API's model: the
// fleet's paused flag and its policy target are two registers only the
// operator writes.
type registerInput struct {
	key   string // "paused" or "target"
	write bool
	value float64
}

type registerOutput struct {
	value   float64
	unknown bool // a write that failed in a way that may have committed
}

func registerModel(initial map[string]float64) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			for _, op := range history {
				k := op.Input.(registerInput).key
				by[k] = append(by[k], op)
			}
			var keys []string
			for k := range by {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var out [][]porcupine.Operation
			for _, k := range keys {
				out = append(out, by[k])
			}
			return out
		},
		// Partitioned by key; each partition's state starts at its key's
		// value, which Init cannot see, so the state carries the key.
		Init: func() any { return map[string]float64(nil) },
		Step: func(state, input, output any) (bool, any) {
			in, out := input.(registerInput), output.(registerOutput)
			cur, ok := state.(map[string]float64)[in.key]
			if !ok {
				cur = initial[in.key]
			}
			if in.write {
				return true, map[string]float64{in.key: in.value}
			}
			return out.value == cur, state
		},
		Equal: func(a, b any) bool {
			ma, mb := a.(map[string]float64), b.(map[string]float64)
			if len(ma) != len(mb) {
				return false
			}
			for k, v := range ma {
				if w, ok := mb[k]; !ok || w != v {
					return false
				}
			}
			return true
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(registerInput), output.(registerOutput)
			if in.write {
				return fmt.Sprintf("set %s=%v unknown=%v", in.key, in.value, out.unknown)
			}
			return fmt.Sprintf("get %s -> %v", in.key, out.value)
		},
	}
}

// operations turns the operator's history into porcupine's: definite
// failures are left out (nothing happened), a write that may have been
// committed stays pending until the end of the history, and failed reads
// are left out.
func operations(ops []Op) []porcupine.Operation {
	var end int64
	for _, o := range ops {
		end = max(end, o.ReturnNS)
	}
	var out []porcupine.Operation
	for _, o := range ops {
		var in registerInput
		switch o.Kind {
		case "pause":
			in = registerInput{key: "paused", write: true, value: 1}
		case "resume":
			in = registerInput{key: "paused", write: true}
		case "policy_set":
			in = registerInput{key: "target", write: true, value: o.Arg}
		case "get_fleet":
			in = registerInput{key: "paused"}
		case "get_policy":
			in = registerInput{key: "target"}
		default:
			continue
		}
		op := porcupine.Operation{ClientId: o.Client, Input: in, Call: o.CallNS, Return: o.ReturnNS}
		switch {
		case o.OK && in.write:
			op.Output = registerOutput{}
		case o.OK:
			v := o.Target
			if in.key == "paused" {
				v = 0
				if o.Paused {
					v = 1
				}
			}
			op.Output = registerOutput{value: v}
		case in.write && !o.Definite():
			op.Output, op.Return = registerOutput{unknown: true}, end+1
		default:
			continue
		}
		out = append(out, op)
	}
	return out
}

// checkLinearizable is invariant 4.
func checkLinearizable(r *Records) Invariant {
	c := newCollector(InvLinearizable)
	hist := operations(r.Ops)
	if len(hist) == 0 {
		c.fail("no operator command completed: nothing to check")
		return c.done()
	}
	res := porcupine.CheckOperationsTimeout(registerModel(map[string]float64{"paused": 0, "target": r.InitialTarget}), hist, porcupineTimeout)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		c.fail("the history of %d operator commands is not linearizable (ops are in records.json)", len(hist))
	default:
		c.fail("porcupine gave up after %s on %d operations", porcupineTimeout, len(hist))
	}
	return c.done()
}

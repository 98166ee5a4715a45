package chaos

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud"
)

const t0 = 1_700_000_000_000

func ptr[T any](v T) *T { return &v }

func call(seq int64, at int64, term uint64, op string, desired int, instance string) localcloud.AuditRecord {
	a := localcloud.AuditRecord{Seq: seq, AtMS: t0 + at, DoneMS: t0 + at, Service: "autoscaling", Op: op, Caller: "n1", Term: term, Group: "web-asg", Status: 200, Instance: instance}
	if op == "SetDesiredCapacity" {
		a.Desired = ptr(desired)
	}
	return a
}

// goodRecords is a run where everything held: a scale-out 2→4 and a
// scale-in 4→3 with its drain, a failover with one late older-term call,
// a linearizable operator history, equal FSMs and every period once.
func goodRecords() *Records {
	return &Records{
		T0MS: t0, Fleet: "web", Group: "web-asg", Min: 2, Max: 6,
		EvalIntervalMS: 1000, PublishIntervalMS: 10000, DrainTimeoutMS: 10000,
		Decisions: []Decision{
			{ID: 1, AtMS: t0 - 5000, From: 0, To: 2},
			{ID: 2, AtMS: t0 + 1000, From: 2, To: 4},
			{ID: 3, AtMS: t0 + 30000, From: 4, To: 3},
		},
		Audit: []localcloud.AuditRecord{
			call(1, 1100, 2, "SetDesiredCapacity", 4, ""),
			call(2, 1200, 3, "SetDesiredCapacity", 4, ""),
			call(3, 1300, 2, "SetDesiredCapacity", 4, ""), // the frozen leader's one late call
			call(4, 30100, 3, "SetDesiredCapacity", 3, ""),
			call(5, 35000, 3, "CompleteLifecycleAction", 0, "i-3"),
		},
		Ops: []Op{
			{Client: 0, Kind: "pause", CallNS: 0, ReturnNS: 10, OK: true, Paused: true},
			{Client: 1, Kind: "get_fleet", CallNS: 20, ReturnNS: 30, OK: true, Paused: true},
			{Client: 0, Kind: "resume", CallNS: 40, ReturnNS: 50, OK: false, Code: "Unavailable"},
			{Client: 1, Kind: "get_fleet", CallNS: 60, ReturnNS: 70, OK: true, Paused: false},
			{Client: 0, Kind: "policy_set", Arg: 55, CallNS: 80, ReturnNS: 90, OK: true},
			{Client: 1, Kind: "get_policy", CallNS: 100, ReturnNS: 110, OK: true, Target: 55},
			{Client: 1, Kind: "scale", Arg: 9, CallNS: 120, ReturnNS: 130, OK: false, Code: "InvalidArgument"},
		},
		InitialTarget: 50,
		Requests: []Request{
			{StartMS: 100, EndMS: 120, Status: 200, Instance: "i-3"},
			{StartMS: 34000, EndMS: 34100, Status: 200, Instance: "i-1"},
			{StartMS: 50000, EndMS: 50500, Err: "connection reset"}, // i-9 killed at 50200
		},
		BackendKills: []BackendKill{{Instance: "i-9", AtMS: 50200}},
		FSM:          []NodeFSM{{Node: "n1", Applied: 90, Hash: "ab"}, {Node: "n2", Applied: 90, Hash: "ab"}, {Node: "n3", Applied: 90, Hash: "ab"}},
		Periods: []Period{
			{StartMS: t0, SampleCount: 1}, {StartMS: t0 + 10000, SampleCount: 1},
			// t0+20000 missing: the kill below explains it.
			{StartMS: t0 + 30000, SampleCount: 1},
		},
		Faults:      []Fault{{Kind: KindKill, Target: "n1", StartS: 21, EndS: 25, Variant: "leader"}},
		Convergence: Convergence{CheckedFromMS: 60000, AfterMS: 0, GroupDesired: 3, FleetDesired: 3},
	}
}

func TestCheckPassesAGoodRun(t *testing.T) {
	for _, inv := range Check(goodRecords()) {
		if !inv.OK {
			t.Errorf("%s failed on a good run: %v", inv.Name, inv.Counterexamples)
		}
	}
}

// TestEachInvariantFailsOnABadHistory: every invariant breaks on a history
// crafted to break it, and only that one does.
func TestEachInvariantFailsOnABadHistory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inv    string
		spoil  func(r *Records)
		reason string // a word the counterexample must contain
	}{
		{"effect without a decision", InvExactlyOnce, func(r *Records) {
			r.Audit = append(r.Audit, call(6, 40000, 3, "SetDesiredCapacity", 5, ""))
		}, "matches no committed decision"},
		{"two older-term calls after a failover", InvExactlyOnce, func(r *Records) {
			r.Audit = append(r.Audit, call(6, 1400, 2, "SetDesiredCapacity", 2, ""))
		}, "second call of an older term"},
		{"two older-term calls of any mutating kind", InvExactlyOnce, func(r *Records) {
			hb := call(6, 1400, 2, "RecordLifecycleActionHeartbeat", 0, "i-3")
			r.Audit = append(r.Audit, hb)
		}, "second call of an older term (2) after term 3"},
		{"a zombie's late call never undone", InvExactlyOnce, func(r *Records) {
			// Term 2's late call set 2 while 4 was committed; term 3 only
			// acts again at 30 s.
			*r.Audit[2].Desired = 2
		}, "left the group off the committed 4"},
		{"instance terminated twice", InvExactlyOnce, func(r *Records) {
			r.Audit = append(r.Audit, call(6, 40000, 3, "TerminateInstanceInAutoScalingGroup", 0, "i-5"), call(7, 41000, 3, "TerminateInstanceInAutoScalingGroup", 0, "i-5"))
		}, "terminated again"},
		{"a decision applied twice", InvExactlyOnce, func(r *Records) {
			// 4→3 committed once, applied as 3, back to 4, and 3 again,
			// twice: 6 changes for 2 decisions and one older-term call.
			r.Audit = append(r.Audit, call(6, 31000, 3, "SetDesiredCapacity", 4, ""), call(7, 32000, 3, "SetDesiredCapacity", 3, ""),
				call(8, 33000, 3, "SetDesiredCapacity", 4, ""), call(9, 34000, 3, "SetDesiredCapacity", 3, ""))
		}, "changed 6 times"},
		{"a call without its term", InvExactlyOnce, func(r *Records) {
			r.Audit = append(r.Audit, call(6, 40000, 0, "SetDesiredCapacity", 3, ""))
		}, "carries no X-Shoal-Term term"},
		{"no decision read", InvBounds, func(r *Records) {
			// Nothing committed and nothing applied: the group never moved.
			r.Decisions, r.Audit = nil, nil
			r.Convergence = Convergence{CheckedFromMS: 60000, AfterMS: 0, GroupDesired: 2, FleetDesired: 2}
		}, "no committed decision"},
		{"no request names its instance", InvDrain, func(r *Records) {
			for i := range r.Requests {
				r.Requests[i].Instance = ""
			}
		}, "nothing to check"},
		{"no convergence", InvExactlyOnce, func(r *Records) {
			r.Convergence = Convergence{CheckedFromMS: 60000, AfterMS: -1, GroupDesired: 4, FleetDesired: 3}
		}, "did not reach"},
		{"convergence slower than two intervals and the drain", InvExactlyOnce, func(r *Records) {
			r.Convergence.AfterMS = 12001
		}, "took 12001 ms"},
		{"desired above max", InvBounds, func(r *Records) {
			r.Decisions = append(r.Decisions, Decision{ID: 4, AtMS: t0 + 39000, From: 3, To: 7})
			r.Audit = append(r.Audit, call(6, 40000, 3, "SetDesiredCapacity", 7, ""))
		}, "outside [2, 6]"},
		{"desired above max sent, refused by the cloud", InvBounds, func(r *Records) {
			// The scale-out 3→6 asked for 6 plus the 2 instances draining.
			r.Decisions = append(r.Decisions, Decision{ID: 4, AtMS: t0 + 39000, From: 3, To: 6, Status: "DECISION_STATUS_FAILED"})
			a := call(6, 40000, 3, "SetDesiredCapacity", 8, "")
			a.Status = 400
			r.Audit = append(r.Audit, a)
		}, "SetDesiredCapacity 8 sent by n1 (term 3) outside [2, 6]; answered 400"},
		{"decision below min", InvBounds, func(r *Records) {
			r.Decisions = append(r.Decisions, Decision{ID: 4, AtMS: t0 + 40000, From: 3, To: 1})
		}, "outside [2, 6]"},
		{"out-of-bounds scale accepted", InvBounds, func(r *Records) {
			r.Ops[6].OK, r.Ops[6].Code, r.Ops[6].Capacity = true, "", 9
		}, "was accepted"},
		{"released with a request in flight", InvDrain, func(r *Records) {
			// The scale-in was at 30 s, the release at 35 s: 5 s < the 10 s
			// drain timeout, and i-3 was still answering at 35.2 s.
			r.Requests = append(r.Requests, Request{StartMS: 34900, EndMS: 35200, Status: 200, Instance: "i-3"})
		}, "in flight"},
		{"request routed after release", InvDrain, func(r *Records) {
			r.Requests = append(r.Requests, Request{StartMS: 36000, EndMS: 36100, Status: 200, Instance: "i-3"})
		}, "after it was released"},
		{"not linearizable: stale read", InvLinearizable, func(r *Records) {
			// After policy_set 55 returned, a read began and saw 50.
			r.Ops = append(r.Ops, Op{Client: 2, Kind: "get_policy", CallNS: 200, ReturnNS: 210, OK: true, Target: 50})
		}, "not linearizable"},
		{"not linearizable: pause lost", InvLinearizable, func(r *Records) {
			r.Ops[1].Paused = false
		}, "not linearizable"},
		{"a request failed", InvNoFailed, func(r *Records) {
			r.Requests = append(r.Requests, Request{StartMS: 40000, EndMS: 40100, Status: 502})
		}, "HTTP 502"},
		{"FSMs differ", InvFSMEqual, func(r *Records) {
			r.FSM[2].Hash = "cd"
		}, "n3"},
		{"a node's FSM unread", InvFSMEqual, func(r *Records) {
			r.FSM[1] = NodeFSM{Node: "n2", Err: "unavailable"}
		}, "unavailable"},
		{"period published twice", InvPeriodsOnce, func(r *Records) {
			r.Periods[1].SampleCount = 2
		}, "published 2 times"},
		{"period missing without a fault", InvPeriodsOnce, func(r *Records) {
			r.Faults = nil
		}, "are missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := goodRecords()
			tc.spoil(r)
			for _, inv := range Check(r) {
				if inv.Name != tc.inv {
					if !inv.OK {
						t.Errorf("%s also failed: %v", inv.Name, inv.Counterexamples)
					}
					continue
				}
				if inv.OK {
					t.Fatalf("%s held on a history crafted to break it", inv.Name)
				}
				if !strings.Contains(strings.Join(inv.Counterexamples, "\n"), tc.reason) {
					t.Fatalf("%s counterexamples %q do not say %q", inv.Name, inv.Counterexamples, tc.reason)
				}
			}
		})
	}
}

// TestNoRequestsCannotPass: a run whose load generator recorded nothing
// breaks both request invariants instead of passing them blind.
func TestNoRequestsCannotPass(t *testing.T) {
	r := goodRecords()
	r.Requests = nil
	broke := map[string]string{}
	for _, inv := range Check(r) {
		if !inv.OK {
			broke[inv.Name] = strings.Join(inv.Counterexamples, "; ")
		}
	}
	if len(broke) != 2 || !strings.Contains(broke[InvNoFailed], "no request") || !strings.Contains(broke[InvDrain], "nothing to check") {
		t.Fatalf("broke %v, want %s and %s, each saying there was nothing to check", broke, InvNoFailed, InvDrain)
	}
}

// TestAZombieCallUndoneInTimeIsAllowed: the late call of term 2 moved the
// group to 2, and term 3 set the committed 4 again within two evaluation
// intervals.
func TestAZombieCallUndoneInTimeIsAllowed(t *testing.T) {
	r := goodRecords()
	*r.Audit[2].Desired = 2
	r.Audit = append(r.Audit, call(6, 2500, 3, "SetDesiredCapacity", 4, ""))
	for _, inv := range Check(r) {
		if !inv.OK {
			t.Errorf("%s: %v", inv.Name, inv.Counterexamples)
		}
	}
}

func TestCounterexamplesAreCapped(t *testing.T) {
	r := goodRecords()
	for i := range 50 {
		r.Requests = append(r.Requests, Request{StartMS: int64(60000 + i), EndMS: int64(60001 + i), Status: 503})
	}
	for _, inv := range Check(r) {
		if inv.Name != InvNoFailed {
			continue
		}
		if n := len(inv.Counterexamples); n != maxCounterexamples+1 || !strings.Contains(inv.Counterexamples[n-1], "30 more") {
			t.Fatalf("%d counterexamples, last %q", n, inv.Counterexamples[n-1])
		}
	}
}

// TestRecordedRuns re-checks records of real runs that found bugs (their
// requests thinned to keep the files small): each breaks exactly the
// invariants it broke when it ran.
func TestRecordedRuns(t *testing.T) {
	for _, tc := range []struct {
		file  string
		broke []string
	}{
		// SEED=11 CHAOS_DURATION=4m: a leader that led again in a newer term
		// published a period another leader had published.
		{"seed11-period-published-twice.json", []string{InvPeriodsOnce}},
		// The fixed script before the scaler fix: a scale-out asked for
		// 6 + 2 draining = 8 > max, and the agent disconnect took every
		// instance out of the LB for 0.7 s.
		{"fixed-agent-disconnect-503-and-scale-past-max.json", []string{InvBounds, InvNoFailed}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			invs, err := Recheck(filepath.Join("testdata", "runs", tc.file), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			var broke []string
			for _, inv := range invs {
				if !inv.OK {
					broke = append(broke, inv.Name)
				}
			}
			if !slices.Equal(broke, tc.broke) {
				t.Fatalf("broke %v, want %v: %v", broke, tc.broke, Failed(invs))
			}
		})
	}
}

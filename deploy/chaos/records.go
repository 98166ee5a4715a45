package chaos

import (
	"fmt"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud"
)

// Records are the independent records a run leaves, everything the checker
// reads. They are written to chaos-report/records.json, so a check can be
// rerun (and a unit test can craft a bad one). Times named *MS are Unix
// milliseconds unless they say otherwise: Request times are milliseconds
// since T0MS, Op times nanoseconds since T0MS, Fault times seconds.
type Records struct {
	Seed uint64 `json:"seed"`
	// T0MS is when the load started (Unix ms).
	T0MS  int64  `json:"t0_ms"`
	Fleet string `json:"fleet"`
	Group string `json:"group"`
	Min   int    `json:"min"`
	Max   int    `json:"max"`
	// EvalIntervalMS, PublishIntervalMS and DrainTimeoutMS are the
	// coordinators' settings.
	EvalIntervalMS    int64 `json:"eval_interval_ms"`
	PublishIntervalMS int64 `json:"publish_interval_ms"`
	DrainTimeoutMS    int64 `json:"drain_timeout_ms"`

	// Audit is the local cloud's log of every mutating call.
	Audit []localcloud.AuditRecord `json:"audit"`
	// Decisions are the fleet's committed decisions, oldest first.
	Decisions []Decision `json:"decisions"`
	// Ops is the operator's history; InitialTarget the policy's target
	// before the first op (the paused flag starts false).
	Ops           []Op    `json:"ops"`
	InitialTarget float64 `json:"initial_target"`
	// Requests are the load generator's, one per request.
	Requests []Request `json:"requests"`
	// BackendKills are instances killed abruptly (not through a drain), whose
	// in-flight requests may fail.
	BackendKills []BackendKill `json:"backend_kills"`
	// FSM is each node's state hash at the end.
	FSM []NodeFSM `json:"fsm"`
	// Periods are the CloudWatch heartbeat's sample counts per publish
	// period, as CloudWatch returns them.
	Periods []Period `json:"periods"`
	// Faults are the faults as they happened (seconds since T0MS).
	Faults []Fault `json:"faults"`
	// Convergence is the final comparison of the group with the fleet.
	Convergence Convergence `json:"convergence"`
}

// Decision is one committed decision.
type Decision struct {
	ID     uint64 `json:"id"`
	AtMS   int64  `json:"at_ms"`
	From   int    `json:"from"`
	To     int    `json:"to"`
	Status string `json:"status"`
	Source string `json:"source"`
}

// BackendKill is an instance killed without a drain.
type BackendKill struct {
	Instance string `json:"instance"`
	// AtMS is since T0MS.
	AtMS int64 `json:"at_ms"`
}

// NodeFSM is one node's FSM at the end of a run.
type NodeFSM struct {
	Node    string `json:"node"`
	Applied uint64 `json:"applied"`
	// Hash is the SHA-256 of the node's FSM snapshot, hex.
	Hash string `json:"hash"`
	Err  string `json:"err,omitempty"`
}

// Period is one CloudWatch publish period.
type Period struct {
	StartMS     int64   `json:"start_ms"`
	SampleCount float64 `json:"sample_count"`
}

// Convergence compares the group's desired capacity with the fleet's
// newest committed one once the faults are over.
type Convergence struct {
	// CheckedFromMS is when the comparison started (since T0MS), after the
	// last fault healed.
	CheckedFromMS int64 `json:"checked_from_ms"`
	// AfterMS is how long until they agreed; -1 if they never did within
	// the bound.
	AfterMS      int64 `json:"after_ms"`
	GroupDesired int   `json:"group_desired"`
	FleetDesired int   `json:"fleet_desired"`
}

// Coverage counts what the records hold, so a run whose checks had
// nothing to look at shows it.
type Coverage struct {
	ScalingCalls, AppliedSetDesired, Decisions, OpsOK, OpsFailed, Periods, Nodes, Requests int
}

// Coverage counts the run's records.
func (r *Records) Coverage() Coverage {
	var c Coverage
	for _, a := range scalingCalls(r) {
		c.ScalingCalls++
		if applied(a) && a.Op == "SetDesiredCapacity" {
			c.AppliedSetDesired++
		}
	}
	for _, d := range r.Decisions {
		if d.AtMS >= r.T0MS {
			c.Decisions++
		}
	}
	for _, o := range r.Ops {
		if o.OK {
			c.OpsOK++
		} else {
			c.OpsFailed++
		}
	}
	c.Periods, c.Nodes, c.Requests = len(r.Periods), len(r.FSM), len(r.Requests)
	return c
}

func (c Coverage) String() string {
	return fmt.Sprintf("%d scaling calls (%d SetDesiredCapacity applied), %d decisions, %d operator commands ok and %d failed, %d CloudWatch periods, %d FSMs, %d requests",
		c.ScalingCalls, c.AppliedSetDesired, c.Decisions, c.OpsOK, c.OpsFailed, c.Periods, c.Nodes, c.Requests)
}

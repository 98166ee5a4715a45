package fsm

import (
	"strings"

	"google.golang.org/protobuf/proto"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// DefaultDecisionsPerFleet bounds the decision history of each fleet. It is a
// constant rather than an option because every node must trim the same way.
const DefaultDecisionsPerFleet = 200

// Decision sources.
const (
	SourceAuto      = shoalv1.DecisionSource_DECISION_SOURCE_AUTO
	SourceManual    = shoalv1.DecisionSource_DECISION_SOURCE_MANUAL
	SourceReconcile = shoalv1.DecisionSource_DECISION_SOURCE_RECONCILE
	SourceSpot      = shoalv1.DecisionSource_DECISION_SOURCE_SPOT
)

// validSource reports whether s is a source a decision may carry.
func validSource(s shoalv1.DecisionSource) bool {
	switch s {
	case SourceAuto, SourceManual, SourceReconcile, SourceSpot:
		return true
	}
	return false
}

func (f *FSM) createDecision(c Command) (*Result, *Error) {
	d := &shoalv1.Decision{}
	if err := c.decodeProto(d); err != nil {
		return nil, err
	}
	fl, err := f.fleet(d.Fleet)
	if err != nil {
		return nil, err
	}
	switch {
	case d.PreviousCapacity < 0:
		return nil, invalidf("previous_capacity (%d) must be >= 0", d.PreviousCapacity)
	case d.Capacity < fl.Min || d.Capacity > fl.Max:
		return nil, invalidf("desired (%d) must be between min (%d) and max (%d) of fleet %q", d.Capacity, fl.Min, fl.Max, fl.Name)
	case !validSource(d.Source):
		return nil, invalidf("source (%v): must be auto, manual, reconcile or spot", d.Source)
	}
	if err := validateDecisionText(d); err != nil {
		return nil, err
	}
	f.s.nextDecisionID++
	d.Id = f.s.nextDecisionID
	d.Status = shoalv1.DecisionStatus_DECISION_STATUS_PENDING
	d.Error, d.ErrorClass = "", shoalv1.ErrorClass_ERROR_CLASS_UNSPECIFIED
	d.CreateTime, d.UpdateTime = c.at(), c.at()
	list := append(f.s.decisions[d.Fleet], d)
	if over := len(list) - DefaultDecisionsPerFleet; over > 0 {
		list = append([]*shoalv1.Decision(nil), list[over:]...)
	}
	f.s.decisions[d.Fleet] = list
	return &Result{Decision: proto.CloneOf(d)}, nil
}

func (f *FSM) findDecision(id uint64) *shoalv1.Decision {
	for _, ds := range f.s.decisions {
		for _, d := range ds {
			if d.Id == id {
				return d
			}
		}
	}
	return nil
}

func (f *FSM) updateDecision(c Command) (*Result, *Error) {
	var b updateDecisionBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	d := f.findDecision(b.ID)
	if d == nil {
		return nil, notFoundf("decision %d: unknown decision", b.ID)
	}
	switch b.Status {
	case shoalv1.DecisionStatus_DECISION_STATUS_APPLIED, shoalv1.DecisionStatus_DECISION_STATUS_SUPERSEDED:
		if b.ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_UNSPECIFIED {
			return nil, invalidf("error_class: only a failed decision has one")
		}
	case shoalv1.DecisionStatus_DECISION_STATUS_FAILED:
		if b.ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_RETRYABLE && b.ErrorClass != shoalv1.ErrorClass_ERROR_CLASS_FATAL {
			return nil, invalidf("error_class: a failed decision needs retryable or fatal")
		}
	default:
		return nil, invalidf("status (%s): must be applied, failed or superseded", b.Status)
	}
	if len(b.Error) > MaxTextLen {
		return nil, invalidf("error: longer than %d characters", MaxTextLen)
	}
	if d.Status != shoalv1.DecisionStatus_DECISION_STATUS_PENDING {
		return nil, conflictf("decision %d: already %s", d.Id, strings.ToLower(strings.TrimPrefix(d.Status.String(), "DECISION_STATUS_")))
	}
	d.Status, d.Error, d.ErrorClass = b.Status, b.Error, b.ErrorClass
	d.UpdateTime = c.at()
	if b.Status == shoalv1.DecisionStatus_DECISION_STATUS_APPLIED {
		if fl, ok := f.s.fleets[d.Fleet]; ok {
			// The bounds may have moved since the decision was made; desired
			// stays inside them (found by FuzzApply), and the scaler's next
			// round brings the group to it.
			fl.Desired = min(max(d.Capacity, fl.Min), fl.Max)
			fl.UpdateTime = c.at()
		}
	}
	return &Result{Decision: proto.CloneOf(d)}, nil
}

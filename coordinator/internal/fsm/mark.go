package fsm

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// OpInstanceMark records what the leader learned about an instance from
// outside the registry's own states: a Spot interruption notice (which
// starts its drain with a deadline), a rebalance recommendation (the
// at_risk flag) and warm-pool membership (the warm flag). It is written at
// command version 2: a release that reads only version 1 refuses it whole
// rather than apply half of it.
const OpInstanceMark Op = "instance_mark"

// markVersion is the command version that introduced OpInstanceMark.
const markVersion = 2

// Interruption actions, as EC2 spells them in spot/instance-action.
var interruptionActions = map[string]bool{"terminate": true, "stop": true, "hibernate": true}

// Mark is the body of OpInstanceMark. Nil and zero fields leave the
// instance as it is.
type Mark struct {
	ID string `json:"id"`
	// InterruptionAction and InterruptionMS record a Spot interruption
	// notice; they go together.
	InterruptionAction string `json:"interruption_action,omitempty"`
	InterruptionMS     int64  `json:"interruption_ms,omitempty"`
	// Drain moves the instance to draining with Reason and, when set,
	// DrainDeadlineMS. A terminated instance cannot drain.
	Drain           bool   `json:"drain,omitempty"`
	Reason          string `json:"reason,omitempty"`
	DrainDeadlineMS int64  `json:"drain_deadline_ms,omitempty"`
	AtRisk          *bool  `json:"at_risk,omitempty"`
	Warm            *bool  `json:"warm,omitempty"`
}

// MarkInstance records m.
func MarkInstance(m Mark) Command {
	c := newCommand(OpInstanceMark, m)
	c.Version = markVersion
	return c
}

func (f *FSM) markInstance(c Command) (*Result, *Error) {
	var m Mark
	if err := c.decodeJSON(&m); err != nil {
		return nil, err
	}
	if err := ValidInstanceID(m.ID); err != nil {
		return nil, err
	}
	in, ok := f.s.instances[m.ID]
	if !ok {
		return nil, notFoundf("instance %q: unknown instance", m.ID)
	}
	switch {
	case (m.InterruptionAction == "") != (m.InterruptionMS == 0):
		return nil, invalidf("interruption_action and interruption_ms: set both or neither")
	case m.InterruptionAction != "" && !interruptionActions[m.InterruptionAction]:
		return nil, invalidf("interruption_action (%q): must be terminate, stop or hibernate", m.InterruptionAction)
	case m.InterruptionMS < 0 || m.DrainDeadlineMS < 0:
		return nil, invalidf("interruption_ms and drain_deadline_ms: must be >= 0")
	case len(m.Reason) > MaxTextLen:
		return nil, invalidf("reason: longer than %d characters", MaxTextLen)
	case !m.Drain && (m.Reason != "" || m.DrainDeadlineMS != 0):
		return nil, invalidf("reason and drain_deadline_ms: only with drain")
	case m.Drain && in.State == shoalv1.InstanceState_INSTANCE_STATE_TERMINATED:
		return nil, conflictf("instance %q: terminated instances cannot drain", m.ID)
	}
	if m.InterruptionAction != "" {
		in.InterruptionAction = m.InterruptionAction
		in.InterruptionTime = timestamppb.New(time.UnixMilli(m.InterruptionMS))
	}
	if m.Drain {
		if in.State != shoalv1.InstanceState_INSTANCE_STATE_DRAINING {
			in.State = shoalv1.InstanceState_INSTANCE_STATE_DRAINING
			in.StateChangeTime = c.at()
		}
		in.StateReason = m.Reason
		in.DrainDeadline = nil
		if m.DrainDeadlineMS != 0 {
			in.DrainDeadline = timestamppb.New(time.UnixMilli(m.DrainDeadlineMS))
		}
	}
	if m.AtRisk != nil {
		in.AtRisk = *m.AtRisk
	}
	if m.Warm != nil {
		in.Warm = *m.Warm
	}
	return &Result{}, nil
}

// keepMarks carries what OpInstanceMark recorded over a re-registration,
// which rewrites the instance from what its agent or group says.
func keepMarks(dst, old *shoalv1.Instance) {
	dst.StateReason, dst.DrainDeadline = old.StateReason, old.DrainDeadline
	dst.AtRisk, dst.Warm = old.AtRisk, old.Warm
	dst.InterruptionAction, dst.InterruptionTime = old.InterruptionAction, old.InterruptionTime
	if old.State == shoalv1.InstanceState_INSTANCE_STATE_DRAINING || old.State == shoalv1.InstanceState_INSTANCE_STATE_TERMINATED {
		// Draining is sticky and terminated final, whatever a late
		// registration says.
		dst.State = old.State
	}
}

package fsm

import (
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func (f *FSM) registerInstance(c Command) (*Result, *Error) {
	in := &shoalv1.Instance{}
	if err := c.decodeProto(in); err != nil {
		return nil, err
	}
	if err := ValidInstanceID(in.Id); err != nil {
		return nil, err
	}
	if _, err := f.fleet(in.Fleet); err != nil {
		return nil, err
	}
	if in.State == shoalv1.InstanceState_INSTANCE_STATE_UNSPECIFIED {
		in.State = shoalv1.InstanceState_INSTANCE_STATE_PENDING
	}
	if err := validateInstance(in); err != nil {
		return nil, err
	}
	// Live fields belong to the serving node, never to the log, and marks
	// only to OpInstanceMark.
	in.Metrics, in.LastReportAge, in.Ready, in.Flag = nil, nil, false, ""
	keepMarks(in, &shoalv1.Instance{})
	if old, ok := f.s.instances[in.Id]; ok {
		if old.Fleet != in.Fleet {
			return nil, conflictf("instance %q already registered in fleet %q", in.Id, old.Fleet)
		}
		keepMarks(in, old)
		in.RegisterTime = old.RegisterTime
		in.StateChangeTime = old.StateChangeTime
		if in.State != old.State {
			in.StateChangeTime = c.at()
		}
	} else {
		in.RegisterTime, in.StateChangeTime = c.at(), c.at()
	}
	f.s.instances[in.Id] = in
	return &Result{}, nil
}

func (f *FSM) instanceState(c Command) (*Result, *Error) {
	var b instanceStateBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	in, ok := f.s.instances[b.ID]
	if !ok {
		return nil, notFoundf("instance %q: unknown instance", b.ID)
	}
	if _, ok := shoalv1.InstanceState_name[int32(b.State)]; !ok || b.State == shoalv1.InstanceState_INSTANCE_STATE_UNSPECIFIED {
		return nil, invalidf("state (%d): unknown instance state", b.State)
	}
	if in.State == shoalv1.InstanceState_INSTANCE_STATE_TERMINATED && b.State != in.State {
		return nil, conflictf("instance %q: terminated instances cannot change state", b.ID)
	}
	if in.State != b.State {
		in.State = b.State
		in.StateChangeTime = c.at()
	}
	return &Result{}, nil
}

func (f *FSM) instanceLeave(c Command) (*Result, *Error) {
	var b nameBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	if _, ok := f.s.instances[b.Name]; !ok {
		return nil, notFoundf("instance %q: unknown instance", b.Name)
	}
	delete(f.s.instances, b.Name)
	return &Result{}, nil
}

package demo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// fleetState is what the coordinators say about the fleet at one moment.
type fleetState struct {
	desired, inService, draining, pending int
	metricAvg                             float64 // mean of the policy metric over in-service instances
	metricOK                              bool
}

// observer reads the fleet through the coordinators' control API.
type observer struct {
	cc     *grpc.ClientConn
	c      shoalv1.ControlServiceClient
	fleet  string
	metric string
	lastID uint64
	alarms map[string]string
}

// newObserver connects to addr with dial (the sandbox's, which carries the
// operator's credentials when the sandbox is secure).
func newObserver(dial func(addr string) (*grpc.ClientConn, error), addr, fleet, metric string) (*observer, error) {
	cc, err := dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial coordinator %s: %w", addr, err)
	}
	return &observer{cc: cc, c: shoalv1.NewControlServiceClient(cc), fleet: fleet, metric: metric, alarms: map[string]string{}}, nil
}

func (o *observer) close() { o.cc.Close() }

func (o *observer) state(ctx context.Context) (fleetState, error) {
	ctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	var st fleetState
	f, err := o.c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: o.fleet})
	if err != nil {
		return st, fmt.Errorf("get fleet: %w", err)
	}
	st.desired = int(f.GetFleet().GetDesired())
	li, err := o.c.ListInstances(ctx, &shoalv1.ListInstancesRequest{Fleet: o.fleet})
	if err != nil {
		return st, fmt.Errorf("list instances: %w", err)
	}
	var sum float64
	var n int
	for _, in := range li.GetInstances() {
		switch in.GetState() {
		case shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE:
			st.inService++
			if v, ok := in.GetMetrics()[o.metric]; ok {
				sum += v
				n++
			}
		case shoalv1.InstanceState_INSTANCE_STATE_DRAINING:
			st.draining++
		case shoalv1.InstanceState_INSTANCE_STATE_PENDING:
			st.pending++
		}
	}
	if n > 0 {
		st.metricAvg, st.metricOK = sum/float64(n), true
	}
	return st, nil
}

// newDecisions returns the fleet's decisions not returned before, oldest first.
func (o *observer) newDecisions(ctx context.Context) ([]*shoalv1.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	resp, err := o.c.ListDecisions(ctx, &shoalv1.ListDecisionsRequest{Fleet: o.fleet, Limit: 20})
	if err != nil {
		return nil, fmt.Errorf("list decisions: %w", err)
	}
	var out []*shoalv1.Decision
	for _, d := range resp.GetDecisions() {
		if d.GetId() > o.lastID {
			out = append(out, d)
			o.lastID = d.GetId()
		}
	}
	return out, nil
}

// skipDecisions marks every decision so far as seen (the bootstrap's own).
func (o *observer) skipDecisions(ctx context.Context) error {
	_, err := o.newDecisions(ctx)
	return err
}

// alarmChange is one alarm state transition the demo saw.
type alarmChange struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
	T    int    `json:"t"`
}

// alarmChanges returns the fleet's alarms whose state differs from the last call.
func (o *observer) alarmChanges(ctx context.Context, t int) ([]alarmChange, []*shoalv1.Alarm, error) {
	ctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	resp, err := o.c.ListAlarms(ctx, &shoalv1.ListAlarmsRequest{Fleet: o.fleet})
	if err != nil {
		return nil, nil, fmt.Errorf("list alarms: %w", err)
	}
	var out []alarmChange
	for _, a := range resp.GetAlarms() {
		st := alarmStateWord(a.GetState())
		if prev, ok := o.alarms[a.GetName()]; !ok || prev != st {
			out = append(out, alarmChange{Name: a.GetName(), From: prev, To: st, T: t})
			o.alarms[a.GetName()] = st
		}
	}
	return out, resp.GetAlarms(), nil
}

// firing reports whether the policy metric's high alarm was in ALARM when
// last listed. (The low alarm fires whenever the fleet sits at min below the
// target, which is the normal state after a spike.)
func (o *observer) firing() bool {
	for name, st := range o.alarms {
		if strings.HasSuffix(name, "-"+o.metric+"-high") && st == "ALARM" {
			return true
		}
	}
	return false
}

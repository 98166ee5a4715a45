package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/ingest"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
	"github.com/shoal-dev/shoal/coordinator/internal/scaler"
	"github.com/shoal-dev/shoal/coordinator/internal/server"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// ErrNoCloud is returned by cloud-backed views on a node run with --cloud none.
var ErrNoCloud = errors.New("this cluster runs with --cloud none: no scaling engine or CloudWatch")

// live is the leader's view of what is not in the FSM, for the API: agents'
// latest metrics, the scaler's reasoning, CloudWatch's alarms. scaler and
// rec are nil with --cloud none.
type live struct {
	node         *cluster.Node
	ingest       *ingest.Service
	scaler       *scaler.Scaler
	rec          *publish.Reconciler
	evalInterval time.Duration
}

var _ server.Live = (*live)(nil)

// Instances is the leader's live view of fleet's instances, with flags.
func (l *live) Instances(fleet string) ([]*shoalv1.Instance, error) {
	ins, err := l.ingest.Instances(fleet)
	if err != nil {
		return nil, err
	}
	if l.scaler != nil {
		flags := map[string]map[string]string{}
		for _, in := range ins {
			if _, ok := flags[in.Fleet]; !ok {
				flags[in.Fleet] = l.scaler.Flags(in.Fleet)
			}
			if f := flags[in.Fleet][in.Id]; f != "" {
				in.Flag = f
			}
		}
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].Id < ins[j].Id })
	return ins, nil
}

// Explain is the scaler's last evaluation of fleet.
func (l *live) Explain(fleet string) (*shoalv1.ExplainFleetResponse, error) {
	if l.scaler == nil {
		return nil, ErrNoCloud
	}
	x, ok := l.scaler.Explain(fleet)
	if !ok {
		return nil, fmt.Errorf("fleet %q: not evaluated yet on this leader; try again in %v", fleet, l.evalInterval)
	}
	if gs := l.scaler.GroupStatus(fleet); gs != "" && x.Blocked == "" {
		x.Blocked = gs
	}
	return &shoalv1.ExplainFleetResponse{Fleet: fleet, Current: x.Current, Recommended: x.Recommended, Reason: x.Reason,
		Details: x.Details, Inputs: x.Inputs, Blocked: x.Blocked, LaunchDelays: l.scaler.LaunchDelays(fleet)}, nil
}

// LaunchDelays are the launch delays the scaler learned for fleet.
func (l *live) LaunchDelays(fleet string) []*shoalv1.LaunchDelay {
	if l.scaler == nil {
		return nil
	}
	return l.scaler.LaunchDelays(fleet)
}

// GroupStatus is "group not found" while a fleet's group is missing.
func (l *live) GroupStatus(fleet string) string {
	if l.scaler == nil {
		return ""
	}
	return l.scaler.GroupStatus(fleet)
}

// Alarms lists this cluster's alarms, for one fleet or all.
func (l *live) Alarms(ctx context.Context, fleet string) ([]*shoalv1.Alarm, error) {
	if l.rec == nil {
		return nil, ErrNoCloud
	}
	var names []string
	for _, f := range l.node.FSM().Fleets() {
		names = append(names, f.Name)
	}
	sts, err := l.rec.List(ctx, names, fleet)
	if err != nil {
		return nil, err
	}
	out := make([]*shoalv1.Alarm, 0, len(sts))
	for _, s := range sts {
		out = append(out, s.Proto())
	}
	return out, nil
}

package ingest

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Agg is one metric's aggregate over a fleet's instances in a window. Each
// instance first contributes its own mean over the window, so an instance
// reporting twice as often does not weigh twice as much; Avg, P50, P90 and
// Max are then taken over those per-instance means.
type Agg struct {
	Avg, P50, P90, Max float64
	// Count is the instances that reported the metric in the window.
	Count int
	// Samples is the samples those means were taken from.
	Samples int
}

// live is the leader's view of one instance, rebuilt from reports after a
// leader change; it is never committed.
type live struct {
	id, fleet  string
	hello      *shoalv1.AgentHello
	owner      string // node holding the agent's stream
	connected  bool
	left       bool
	ready      bool
	reason     string
	dropped    uint64
	lastReport time.Time
	ring       *ring
}

// store is the leader's per-instance state. Service.mu guards it.
type store struct {
	ringSize   int
	staleAfter time.Duration
	byID       map[string]*live
	byFleet    map[string]map[string]*live
}

func newStore(ringSize int, staleAfter time.Duration) *store {
	return &store{ringSize: ringSize, staleAfter: staleAfter, byID: map[string]*live{}, byFleet: map[string]map[string]*live{}}
}

// apply takes one report from the node owner. It refuses a report for an id
// that another agent process (another start time or address) streams live
// to a different node; the same agent moving nodes takes over at once.
func (s *store) apply(rep *clusterv1.InstanceReport, owner string, now time.Time) error {
	h := rep.GetHello()
	id := h.GetInstanceId()
	in := s.byID[id]
	if in != nil && in.owner != owner {
		if rep.GetDisconnected() || rep.GetLeft() {
			return nil // the old node's news about a stream that moved
		}
		if in.connected && now.Sub(in.lastReport) < s.staleAfter && !sameAgent(in.hello, h) {
			return fmt.Errorf("%w: %s streams to node %s", ErrDuplicate, id, in.owner)
		}
	}
	if in == nil {
		in = &live{id: id, ring: newRing(s.ringSize)}
		s.byID[id] = in
	}
	if in.fleet != h.GetFleet() {
		if m := s.byFleet[in.fleet]; m != nil {
			delete(m, id)
		}
		in.fleet = h.GetFleet()
		if s.byFleet[in.fleet] == nil {
			s.byFleet[in.fleet] = map[string]*live{}
		}
		s.byFleet[in.fleet][id] = in
	}
	in.hello = h
	in.owner = owner
	in.connected = !rep.GetDisconnected() && !rep.GetLeft()
	// A goodbye sticks through the stream's end, until an agent streams
	// for the id again (a restarted agent, a reused id).
	switch {
	case rep.GetLeft():
		in.left = true
	case in.connected:
		in.left = false
	}
	if !rep.GetDisconnected() {
		// A stream's end says nothing of readiness: the last report's
		// stands for the agent grace (reconcile.go).
		in.ready, in.reason = rep.GetReady(), rep.GetReadyReason()
	}
	in.dropped = max(in.dropped, rep.GetDroppedSamplesTotal())
	if in.connected {
		in.lastReport = now
	}
	for _, smp := range rep.GetSamples() {
		in.ring.add(smp.GetUnixMs(), smp.GetValues())
	}
	return nil
}

func sameAgent(a, b *shoalv1.AgentHello) bool {
	return proto.Equal(a.GetStartTime(), b.GetStartTime()) && a.GetPrivateIp() == b.GetPrivateIp()
}

// disconnectOwner marks every instance streamed through node as disconnected
// (its Forward stream ended).
func (s *store) disconnectOwner(node string) {
	for _, in := range s.byID {
		if in.owner == node {
			in.connected = false
		}
	}
}

func (s *store) remove(id string) {
	if in, ok := s.byID[id]; ok {
		delete(s.byFleet[in.fleet], id)
		delete(s.byID, id)
	}
}

func (s *store) aggregates(fleet string, since int64) map[string]Agg {
	per := map[string][]float64{}
	samples := map[string]int{}
	for _, in := range s.byFleet[fleet] {
		means, n := in.ring.means(since)
		for m, v := range means {
			per[m] = append(per[m], v)
			samples[m] += n
		}
	}
	out := make(map[string]Agg, len(per))
	for m, vs := range per {
		sort.Float64s(vs)
		var sum float64
		for _, v := range vs {
			sum += v
		}
		out[m] = Agg{Avg: sum / float64(len(vs)), P50: rank(vs, 0.5), P90: rank(vs, 0.9), Max: vs[len(vs)-1], Count: len(vs), Samples: samples[m]}
	}
	return out
}

// rank is the nearest-rank percentile of sorted values.
func rank(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// instance renders in for Instances, on top of the registry's record.
func (s *store) instance(reg *shoalv1.Instance, in *live, now time.Time) *shoalv1.Instance {
	var out *shoalv1.Instance
	if reg != nil {
		out = proto.Clone(reg).(*shoalv1.Instance)
	} else {
		h := in.hello
		out = &shoalv1.Instance{Id: in.id, Fleet: in.fleet, State: shoalv1.InstanceState_INSTANCE_STATE_PENDING,
			PrivateIp: h.GetPrivateIp(), AvailabilityZone: h.GetAvailabilityZone(), ImageId: h.GetImageId(), Flag: "registration not yet committed"}
	}
	if in == nil {
		if out.GetState() != shoalv1.InstanceState_INSTANCE_STATE_TERMINATED {
			out.Flag = "agent never reported to this leader"
		}
		out.LastReportAge = nil
		return out
	}
	out.Metrics = maps.Clone(in.ring.last)
	out.Ready = in.ready
	if in.lastReport.IsZero() {
		out.LastReportAge = nil
	} else {
		out.LastReportAge = durationpb.New(now.Sub(in.lastReport))
	}
	switch {
	case !in.connected:
		out.Flag = "agent stream disconnected"
	case now.Sub(in.lastReport) >= s.staleAfter:
		out.Flag = "agent stopped reporting"
	case !in.ready && in.reason != "":
		out.Flag = "not ready: " + in.reason
	}
	return out
}

func (s *store) ids() []string { return slices.Sorted(maps.Keys(s.byID)) }

package ingest

import (
	"fmt"
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// EventFunc receives, on the leader, each instance event an agent sent
// (directly or through a follower). It is called with the service's lock
// held, so it must not block or call back into ingest: the scaler only
// queues the event and wakes its loop.
type EventFunc func(fleet, instanceID string, ev *shoalv1.InstanceEvent)

// maxEventsPerReport bounds the events a follower queues for one instance
// between flushes, and a forwarded report may carry. Notices are a handful
// per instance life; more means a broken or hostile agent.
const maxEventsPerReport = 8

// maxEventStateLen bounds a target lifecycle state; Auto Scaling's longest
// is under 30 characters.
const maxEventStateLen = 64

var eventActions = map[string]bool{"terminate": true, "stop": true, "hibernate": true}

// eventMetrics count what agents said, by kind, and what was refused.
type eventMetrics struct {
	accepted *prometheus.CounterVec
	rejected prometheus.Counter
}

func newEventMetrics(reg prometheus.Registerer) *eventMetrics {
	m := &eventMetrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_ingest_instance_events_total", Help: "Instance events (IMDS notices) accepted from agents by this node, by kind."}, []string{"kind"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_ingest_instance_events_rejected_total", Help: "Instance events refused as malformed or beyond the per-report bound."}),
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.rejected)
	}
	return m
}

// checkEvent says why ev is not a notice the leader may act on, or nil.
func checkEvent(ev *shoalv1.InstanceEvent) error {
	switch ev.GetKind() {
	case shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION:
		if !eventActions[ev.GetAction()] {
			return fmt.Errorf("event: action %q: want terminate, stop or hibernate", ev.GetAction())
		}
		if ev.GetTime() == nil || ev.GetTime().CheckValid() != nil {
			return fmt.Errorf("event: spot interruption without a valid time")
		}
	case shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_REBALANCE_RECOMMENDATION:
		if ev.GetTime() == nil || ev.GetTime().CheckValid() != nil {
			return fmt.Errorf("event: rebalance recommendation without a valid notice time")
		}
	case shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_TARGET_LIFECYCLE_STATE:
		if s := ev.GetState(); s == "" || len(s) > maxEventStateLen {
			return fmt.Errorf("event: target lifecycle state %q: want 1..%d characters", s, maxEventStateLen)
		}
	default:
		return fmt.Errorf("event: unknown kind %d", ev.GetKind())
	}
	return nil
}

// acceptEvents keeps the valid events, at most maxEventsPerReport (the
// newest), counting the rest.
func (s *Service) acceptEvents(evs []*shoalv1.InstanceEvent) []*shoalv1.InstanceEvent {
	var ok []*shoalv1.InstanceEvent
	for _, ev := range evs {
		if checkEvent(ev) != nil {
			s.em.rejected.Inc()
			continue
		}
		ok = append(ok, ev)
	}
	if over := len(ok) - maxEventsPerReport; over > 0 {
		s.em.rejected.Add(float64(over))
		ok = ok[over:]
	}
	return ok
}

// deliverEvents hands a report's events to the leader's sink. Service.mu is
// held.
func (s *Service) deliverEvents(rep *clusterv1.InstanceReport) {
	if s.cfg.OnEvent == nil {
		return
	}
	for _, ev := range rep.GetEvents() {
		s.em.accepted.WithLabelValues(eventKindLabel(ev.GetKind())).Inc()
		s.cfg.OnEvent(rep.GetHello().GetFleet(), rep.GetHello().GetInstanceId(), ev)
	}
}

// latestEvents are the newest event of each kind an agent sent on this
// stream, for a new leader that has not heard them.
func (c *agentConn) latestEvents() []*shoalv1.InstanceEvent {
	out := make([]*shoalv1.InstanceEvent, 0, len(c.events))
	for _, ev := range c.events {
		out = append(out, ev)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetKind() < out[j].GetKind() })
	return out
}

func eventKindLabel(k shoalv1.InstanceEventKind) string {
	switch k {
	case shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_SPOT_INTERRUPTION:
		return "spot_interruption"
	case shoalv1.InstanceEventKind_INSTANCE_EVENT_KIND_REBALANCE_RECOMMENDATION:
		return "rebalance_recommendation"
	default:
		return "target_lifecycle_state"
	}
}

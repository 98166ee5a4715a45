package view

import (
	"fmt"
	"strings"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// The operator console's server-sent events carry these shapes (one JSON
// object per `data:` line); ARCHITECTURE.md documents them. Every field
// that holds outside text (ids, reasons, tags) is escaped by the page,
// never inserted as markup.

// ConsoleHeader is in every console event: who answered and how fresh it
// is.
type ConsoleHeader struct {
	// At is when the serving node built the event (RFC 3339, ms).
	At string `json:"at"`
	// Node is the node serving the console.
	Node string `json:"node"`
	// Stale is true when the leader could not be read and the event shows
	// this node's own copy of the state; StaleReason says why.
	Stale       bool   `json:"stale"`
	StaleReason string `json:"stale_reason,omitempty"`
	// Insecure is true when the serving node runs with --insecure.
	Insecure bool `json:"insecure"`
}

// ConsoleCluster is the cluster page's event.
type ConsoleCluster struct {
	ConsoleHeader
	Status Status `json:"status"`
}

// FleetCard is one fleet on the fleets page.
type FleetCard struct {
	Fleet Fleet `json:"fleet"`
	// Counts of instances by state: in_service, pending, draining,
	// unhealthy.
	Counts map[string]int `json:"counts"`
	// PolicyWords is the policy in words.
	PolicyWords string `json:"policy_words"`
	// LastDecision is the newest decision, if any.
	LastDecision *Decision `json:"last_decision,omitempty"`
	// Alarms are the fleet's CloudWatch alarms (empty without a cloud).
	Alarms []Alarm `json:"alarms"`
	// Error says what could not be read for this fleet.
	Error string `json:"error,omitempty"`
}

// ConsoleFleets is the fleets page's event.
type ConsoleFleets struct {
	ConsoleHeader
	Fleets []FleetCard `json:"fleets"`
}

// ChartPoint is one second of a fleet's chart.
type ChartPoint struct {
	// T is unix milliseconds.
	T int64 `json:"t"`
	// Metrics are the policy metrics' current values, by name (missing
	// when not known at that second).
	Metrics   map[string]float64 `json:"metrics"`
	Desired   int32              `json:"desired"`
	InService int                `json:"in_service"`
	Draining  int                `json:"draining"`
	// Alarm is true while any of the fleet's alarms is in ALARM.
	Alarm bool `json:"alarm"`
}

// Target is a policy metric's target line.
type Target struct {
	Metric string  `json:"metric"`
	Target float64 `json:"target"`
}

// ConsoleInstance is an instance row: the instance and its drain progress.
type ConsoleInstance struct {
	Instance
	// InFlight is the requests in flight to it per LB id, as the LBs last
	// reported (set for draining instances while the serving node leads).
	InFlight map[string]uint32 `json:"in_flight,omitempty"`
}

// ConsoleFleet is the fleet detail page's event. The first event of a
// stream is "snapshot" with the whole History; later ones are "update"
// with only the newest point in History.
type ConsoleFleet struct {
	ConsoleHeader
	Fleet       Fleet             `json:"fleet"`
	PolicyWords string            `json:"policy_words"`
	Targets     []Target          `json:"targets"`
	History     []ChartPoint      `json:"history"`
	Instances   []ConsoleInstance `json:"instances"`
	Decisions   []Decision        `json:"decisions"`
	Alarms      []Alarm           `json:"alarms"`
	// Explain is the `explain` text; ExplainError says why there is none.
	Explain      string `json:"explain"`
	ExplainError string `json:"explain_error,omitempty"`
	// Errors lists what could not be read this second.
	Errors []string `json:"errors,omitempty"`
}

// LBBackend is one backend as an LB last reported it.
type LBBackend struct {
	InstanceID string  `json:"instance_id"`
	Address    string  `json:"address"`
	State      string  `json:"state"`
	Healthy    bool    `json:"healthy"`
	InFlight   uint32  `json:"in_flight"`
	RatePerSec float64 `json:"rate_per_sec"`
}

// LoadBalancer is one connected shoal-lb's view of one fleet.
type LoadBalancer struct {
	ID    string `json:"id"`
	Fleet string `json:"fleet"`
	// LastReport is when its last report arrived.
	LastReport string      `json:"last_report"`
	RatePerSec float64     `json:"rate_per_sec"`
	Backends   []LBBackend `json:"backends"`
}

// ConsoleLBs is the load balancers page's event.
type ConsoleLBs struct {
	ConsoleHeader
	LBs []LoadBalancer `json:"lbs"`
	// Note says why the list may be incomplete (a stale read).
	Note string `json:"note,omitempty"`
}

// LoadBalancersOf converts the leader's LB list; never nil.
func LoadBalancersOf(lbs []*shoalv1.LoadBalancer) []LoadBalancer {
	out := make([]LoadBalancer, 0, len(lbs))
	for _, l := range lbs {
		v := LoadBalancer{ID: l.Id, Fleet: l.Fleet, LastReport: Time(l.LastReportTime), RatePerSec: l.RequestRate, Backends: []LBBackend{}}
		for _, b := range l.Backends {
			v.Backends = append(v.Backends, LBBackend{InstanceID: b.InstanceId, Address: b.Address, State: BackendStateWord(b.State),
				Healthy: b.Healthy, InFlight: b.InFlight, RatePerSec: b.RequestRate})
		}
		out = append(out, v)
	}
	return out
}

// PolicyWords says a policy in words, for people.
func PolicyWords(p *shoalv1.ScalingPolicy) string {
	if p == nil {
		return "no policy: manual scaling only"
	}
	var parts []string
	for _, t := range p.TargetTracking {
		parts = append(parts, fmt.Sprintf("keep %s near %g", t.Metric, t.Target))
	}
	for _, s := range p.StepScaling {
		parts = append(parts, fmt.Sprintf("step on %s (%d steps)", s.Metric, len(s.Steps)))
	}
	if len(parts) == 0 {
		return "empty policy"
	}
	w := strings.Join(parts, "; ")
	if d := dur(p.Warmup); d > 0 {
		w += fmt.Sprintf("; warm-up %s", d.String())
	}
	if p.Sustain != 0 {
		w += fmt.Sprintf("; buy a rise once it has lasted %g × the launch delay", p.Sustain)
	}
	return w
}

// String is the duration as Go writes it ("30s").
func (d Duration) String() string { return fmt.Sprint(durationOf(d)) }

func durationOf(d Duration) time.Duration { return time.Duration(d) }

// ConsoleWho is /ui/api/v1/whoami: what the token may do on the console.
type ConsoleWho struct {
	Node       string `json:"node"`
	Insecure   bool   `json:"insecure"`
	CanOperate bool   `json:"can_operate"`
}

package view

import (
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Alarm is one element of `alarms -o json`.
type Alarm struct {
	Name       string  `json:"name"`
	Fleet      string  `json:"fleet,omitempty"`
	Metric     string  `json:"metric"`
	State      string  `json:"state"`
	Reason     string  `json:"reason"`
	LastChange string  `json:"last_change"`
	Threshold  float64 `json:"threshold"`
	Comparison string  `json:"comparison"`
}

// AlarmsOf converts the leader's alarm list; never nil, so JSON shows [].
func AlarmsOf(as []*shoalv1.Alarm) []Alarm {
	out := make([]Alarm, 0, len(as))
	for _, a := range as {
		out = append(out, Alarm{Name: a.Name, Fleet: a.Fleet, Metric: a.Metric, State: AlarmStateWord(a.State), Reason: a.Reason,
			LastChange: Time(a.StateUpdateTime), Threshold: a.Threshold, Comparison: ComparisonWord(a.Comparison)})
	}
	return out
}

// Explain is `explain -o json`.
type Explain struct {
	Fleet       string             `json:"fleet"`
	Current     int32              `json:"current"`
	Recommended int32              `json:"recommended"`
	Reason      string             `json:"reason"`
	Blocked     string             `json:"blocked,omitempty"`
	Details     []string           `json:"details"`
	Inputs      map[string]float64 `json:"inputs"`
	// LaunchDelays are the learned launch delays, warm-pool and cold.
	LaunchDelays []LaunchDelay `json:"launch_delays,omitempty"`
}

// ExplainOf converts an explanation; details and inputs are never null.
func ExplainOf(r *shoalv1.ExplainFleetResponse) Explain {
	v := Explain{Fleet: r.Fleet, Current: r.Current, Recommended: r.Recommended, Reason: r.Reason, Blocked: r.Blocked, Details: r.Details, Inputs: r.Inputs,
		LaunchDelays: LaunchDelaysOf(r.LaunchDelays)}
	if v.Details == nil {
		v.Details = []string{}
	}
	if v.Inputs == nil {
		v.Inputs = map[string]float64{}
	}
	return v
}

// Point is one element of `metrics -o json`: a CloudWatch value at a time.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

package view

import (
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Duration is a time.Duration that reads and writes as a Go duration string
// ("30s", "1m0s") so policies stay readable in JSON.
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string, or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("want a duration such as \"30s\", got %s", b)
		}
		// Converting an out-of-range float to an integer gives an arbitrary
		// (on amd64, negative) duration instead of an error.
		if ns := secs * float64(time.Second); ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return fmt.Errorf("want a duration such as \"30s\", got %s seconds: out of range", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"30s\": %w", err)
	}
	*d = Duration(v)
	return nil
}

// pbDuration is d as a proto Duration; zero stays unset.
func pbDuration(d Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(time.Duration(d))
}

func dur(d *durationpb.Duration) Duration { return Duration(d.AsDuration()) }

// TargetTracking is the JSON form of shoalv1.TargetTracking.
type TargetTracking struct {
	Metric    string  `json:"metric"`
	Target    float64 `json:"target"`
	Tolerance float64 `json:"tolerance,omitempty"`
}

// Step is the JSON form of shoalv1.Step.
type Step struct {
	Lower          *float64 `json:"lower,omitempty"`
	Upper          *float64 `json:"upper,omitempty"`
	AdjustmentType string   `json:"adjustment_type"`
	Adjustment     float64  `json:"adjustment"`
}

// StepScaling is the JSON form of shoalv1.StepScaling.
type StepScaling struct {
	Metric string `json:"metric"`
	Steps  []Step `json:"steps"`
}

// RateLimit is the JSON form of shoalv1.RateLimit.
type RateLimit struct {
	MaxInstances int32    `json:"max_instances,omitempty"`
	MaxPercent   float64  `json:"max_percent,omitempty"`
	Period       Duration `json:"period,omitempty"`
}

// Policy is the JSON form of shoalv1.ScalingPolicy.
type Policy struct {
	TargetTracking []TargetTracking `json:"target_tracking,omitempty"`
	StepScaling    []StepScaling    `json:"step_scaling,omitempty"`
	Warmup         Duration         `json:"warmup"`
	ScaleOutWindow Duration         `json:"scale_out_window"`
	ScaleInWindow  Duration         `json:"scale_in_window"`
	ScaleOutLimit  *RateLimit       `json:"scale_out_limit,omitempty"`
	ScaleInLimit   *RateLimit       `json:"scale_in_limit,omitempty"`
	// Sustain is printed even at 0, as the windows are, so an operator
	// sees the knob exists; a file without it reads as 0.
	Sustain float64 `json:"sustain"`
}

// Fleet is the JSON form of shoalv1.Fleet, as `fleet get -o json` prints it.
type Fleet struct {
	Name               string   `json:"name"`
	ASG                string   `json:"asg"`
	Min                int32    `json:"min"`
	Max                int32    `json:"max"`
	Desired            int32    `json:"desired"`
	Paused             bool     `json:"paused"`
	AppPort            int32    `json:"app_port,omitempty"`
	AlarmActions       []string `json:"alarm_actions,omitempty"`
	PublishPerInstance bool     `json:"publish_per_instance,omitempty"`
	GroupStatus        string   `json:"group_status,omitempty"`
	CreatedAt          string   `json:"created_at,omitempty"`
	UpdatedAt          string   `json:"updated_at,omitempty"`
	Policy             *Policy  `json:"policy,omitempty"`
	// LaunchDelays are what the leaders learned, replicated (fleet get;
	// with --stale, as of the answering node's log).
	LaunchDelays []LaunchDelay `json:"launch_delays,omitempty"`
}

// LaunchDelay is the JSON form of shoalv1.LaunchDelay.
type LaunchDelay struct {
	Kind    string `json:"kind"`
	Samples uint32 `json:"samples"`
	P50MS   int64  `json:"p50_ms"`
	P90MS   int64  `json:"p90_ms"`
}

// LaunchDelaysOf converts learned launch delays; nil stays nil.
func LaunchDelaysOf(ls []*shoalv1.LaunchDelay) []LaunchDelay {
	var out []LaunchDelay
	for _, l := range ls {
		out = append(out, LaunchDelay{Kind: l.Kind, Samples: l.Samples, P50MS: l.P50.AsDuration().Milliseconds(), P90MS: l.P90.AsDuration().Milliseconds()})
	}
	return out
}

// Instance is the JSON form of shoalv1.Instance.
type Instance struct {
	ID               string             `json:"id"`
	Fleet            string             `json:"fleet"`
	State            string             `json:"state"`
	PrivateIP        string             `json:"private_ip"`
	AvailabilityZone string             `json:"availability_zone,omitempty"`
	ImageID          string             `json:"image_id,omitempty"`
	Ready            bool               `json:"ready"`
	LastReportAgeMS  int64              `json:"last_report_age_ms"`
	Metrics          map[string]float64 `json:"metrics"`
	Flag             string             `json:"flag,omitempty"`
	// StateReason says why the leader put the instance in its state
	// ("spot interruption at ..."); DrainDeadline is its drain's end.
	StateReason   string `json:"state_reason,omitempty"`
	DrainDeadline string `json:"drain_deadline,omitempty"`
	// AtRisk and Warm are flags, not states: a rebalance recommendation,
	// and membership of the group's warm pool.
	AtRisk bool `json:"at_risk,omitempty"`
	Warm   bool `json:"warm,omitempty"`
}

// Decision is the JSON form of shoalv1.Decision.
type Decision struct {
	ID         uint64             `json:"id"`
	Fleet      string             `json:"fleet"`
	At         string             `json:"at"`
	From       int32              `json:"from"`
	To         int32              `json:"to"`
	Reason     string             `json:"reason"`
	Status     string             `json:"status"`
	Error      string             `json:"error,omitempty"`
	ErrorClass string             `json:"error_class,omitempty"`
	Source     string             `json:"source,omitempty"`
	Actor      string             `json:"actor,omitempty"`
	Inputs     map[string]float64 `json:"inputs,omitempty"`
}

// Time formats a proto Timestamp as Timestamp does; unset stays empty.
func Time(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return Timestamp(t.AsTime().UnixMilli())
}

// Timestamp formats unix milliseconds as RFC 3339 with milliseconds, UTC;
// zero stays empty.
func Timestamp(unixMS int64) string {
	if unixMS == 0 {
		return ""
	}
	return time.UnixMilli(unixMS).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// PolicyOf converts a proto policy to its JSON form (nil for nil).
func PolicyOf(p *shoalv1.ScalingPolicy) *Policy {
	if p == nil {
		return nil
	}
	out := &Policy{
		Warmup:         dur(p.Warmup),
		ScaleOutWindow: dur(p.ScaleOutWindow),
		ScaleInWindow:  dur(p.ScaleInWindow),
		ScaleOutLimit:  rateOf(p.ScaleOutLimit),
		ScaleInLimit:   rateOf(p.ScaleInLimit),
		Sustain:        p.Sustain,
	}
	for _, t := range p.TargetTracking {
		out.TargetTracking = append(out.TargetTracking, TargetTracking{Metric: t.Metric, Target: t.Target, Tolerance: t.Tolerance})
	}
	for _, s := range p.StepScaling {
		ss := StepScaling{Metric: s.Metric, Steps: []Step{}}
		for _, st := range s.Steps {
			ss.Steps = append(ss.Steps, Step{Lower: st.Lower, Upper: st.Upper, AdjustmentType: AdjustmentTypeWord(st.AdjustmentType), Adjustment: st.Adjustment})
		}
		out.StepScaling = append(out.StepScaling, ss)
	}
	return out
}

func rateOf(r *shoalv1.RateLimit) *RateLimit {
	if r == nil {
		return nil
	}
	return &RateLimit{MaxInstances: r.MaxInstances, MaxPercent: r.MaxPercent, Period: dur(r.Period)}
}

// Proto converts the JSON form back to a proto policy. It checks only what
// JSON can get wrong (unknown words); the policy's meaning is validated by the
// decide package.
func (p *Policy) Proto() (*shoalv1.ScalingPolicy, error) {
	if p == nil {
		return nil, nil
	}
	out := &shoalv1.ScalingPolicy{
		Warmup:         pbDuration(p.Warmup),
		ScaleOutWindow: pbDuration(p.ScaleOutWindow),
		ScaleInWindow:  pbDuration(p.ScaleInWindow),
		Sustain:        p.Sustain,
	}
	if p.ScaleOutLimit != nil {
		out.ScaleOutLimit = &shoalv1.RateLimit{MaxInstances: p.ScaleOutLimit.MaxInstances, MaxPercent: p.ScaleOutLimit.MaxPercent, Period: pbDuration(p.ScaleOutLimit.Period)}
	}
	if p.ScaleInLimit != nil {
		out.ScaleInLimit = &shoalv1.RateLimit{MaxInstances: p.ScaleInLimit.MaxInstances, MaxPercent: p.ScaleInLimit.MaxPercent, Period: pbDuration(p.ScaleInLimit.Period)}
	}
	for _, t := range p.TargetTracking {
		out.TargetTracking = append(out.TargetTracking, &shoalv1.TargetTracking{Metric: t.Metric, Target: t.Target, Tolerance: t.Tolerance})
	}
	for i, s := range p.StepScaling {
		ss := &shoalv1.StepScaling{Metric: s.Metric}
		for j, st := range s.Steps {
			at, err := ParseAdjustmentType(st.AdjustmentType)
			if err != nil {
				return nil, fmt.Errorf("policy.step_scaling[%d].steps[%d].%w", i, j, err)
			}
			ss.Steps = append(ss.Steps, &shoalv1.Step{Lower: st.Lower, Upper: st.Upper, AdjustmentType: at, Adjustment: st.Adjustment})
		}
		out.StepScaling = append(out.StepScaling, ss)
	}
	return out, nil
}

// FleetOf converts a proto fleet to its JSON form.
func FleetOf(f *shoalv1.Fleet) Fleet {
	return Fleet{
		Name:               f.Name,
		ASG:                f.Asg,
		Min:                f.Min,
		Max:                f.Max,
		Desired:            f.Desired,
		Paused:             f.Paused,
		AppPort:            f.AppPort,
		AlarmActions:       f.AlarmActions,
		PublishPerInstance: f.PublishPerInstance,
		GroupStatus:        f.GroupStatus,
		CreatedAt:          Time(f.CreateTime),
		UpdatedAt:          Time(f.UpdateTime),
		Policy:             PolicyOf(f.Policy),
	}
}

// Proto converts the JSON form back to a proto fleet. Timestamps and
// group_status are outputs and are not read back.
func (f Fleet) Proto() (*shoalv1.Fleet, error) {
	p, err := f.Policy.Proto()
	if err != nil {
		return nil, err
	}
	return &shoalv1.Fleet{
		Name:               f.Name,
		Asg:                f.ASG,
		Min:                f.Min,
		Max:                f.Max,
		Desired:            f.Desired,
		Paused:             f.Paused,
		AppPort:            f.AppPort,
		AlarmActions:       f.AlarmActions,
		PublishPerInstance: f.PublishPerInstance,
		Policy:             p,
	}, nil
}

// ParseFleet reads a fleet as `fleet get -o json` prints it. Unknown keys are
// an error, so a typo in a hand-written file is not silently ignored.
func ParseFleet(b []byte) (*shoalv1.Fleet, error) {
	var f Fleet
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("fleet JSON: %w", err)
	}
	return f.Proto()
}

// InstanceOf converts a proto instance to its JSON form. Metrics is never
// null, so scripts can index it.
func InstanceOf(in *shoalv1.Instance) Instance {
	m := in.Metrics
	if m == nil {
		m = map[string]float64{}
	}
	return Instance{
		ID:               in.Id,
		Fleet:            in.Fleet,
		State:            InstanceStateWord(in.State),
		PrivateIP:        in.PrivateIp,
		AvailabilityZone: in.AvailabilityZone,
		ImageID:          in.ImageId,
		Ready:            in.Ready,
		LastReportAgeMS:  reportAgeMS(in.LastReportAge),
		Metrics:          m,
		Flag:             in.Flag,
		StateReason:      in.StateReason,
		DrainDeadline:    Time(in.DrainDeadline),
		AtRisk:           in.AtRisk,
		Warm:             in.Warm,
	}
}

// reportAgeMS is the age in milliseconds, or -1 when the agent never
// reported (unset).
func reportAgeMS(d *durationpb.Duration) int64 {
	if d == nil {
		return -1
	}
	return d.AsDuration().Milliseconds()
}

// DecisionOf converts a proto decision to its JSON form.
func DecisionOf(d *shoalv1.Decision) Decision {
	return Decision{
		ID:         d.Id,
		Fleet:      d.Fleet,
		At:         Time(d.CreateTime),
		From:       d.PreviousCapacity,
		To:         d.Capacity,
		Reason:     d.Reason,
		Status:     DecisionStatusWord(d.Status),
		Error:      d.Error,
		ErrorClass: ErrorClassWord(d.ErrorClass),
		Source:     DecisionSourceWord(d.Source),
		Actor:      d.Actor,
		Inputs:     d.Inputs,
	}
}

func sortStrings(s []string) []string { sort.Strings(s); return s }

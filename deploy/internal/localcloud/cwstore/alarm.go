package cwstore

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Alarm states, as CloudWatch spells them.
const (
	StateOK               = "OK"
	StateAlarm            = "ALARM"
	StateInsufficientData = "INSUFFICIENT_DATA"
)

// Alarm is a metric alarm and its evaluation state.
type Alarm struct {
	Name               string        `json:"name"`
	Description        string        `json:"description,omitempty"`
	ActionsEnabled     bool          `json:"actionsEnabled"`
	OKActions          []string      `json:"okActions,omitempty"`
	AlarmActions       []string      `json:"alarmActions,omitempty"`
	InsufficientActs   []string      `json:"insufficientDataActions,omitempty"`
	Metric             MetricID      `json:"metric"`
	Statistic          string        `json:"statistic,omitempty"`
	ExtendedStatistic  string        `json:"extendedStatistic,omitempty"`
	Period             int           `json:"period"`
	Unit               string        `json:"unit,omitempty"`
	EvaluationPeriods  int           `json:"evaluationPeriods"`
	DatapointsToAlarm  int           `json:"datapointsToAlarm,omitempty"`
	Threshold          float64       `json:"threshold"`
	ComparisonOperator string        `json:"comparisonOperator"`
	TreatMissingData   string        `json:"treatMissingData,omitempty"`
	ConfigUpdated      time.Time     `json:"configUpdated"`
	State              string        `json:"state"`
	StateReason        string        `json:"stateReason"`
	StateReasonData    string        `json:"stateReasonData,omitempty"`
	StateUpdated       time.Time     `json:"stateUpdated"`
	StateTransitioned  time.Time     `json:"stateTransitioned"`
	History            []HistoryItem `json:"history,omitempty"`
}

// HistoryItem is one DescribeAlarmHistory entry.
type HistoryItem struct {
	Timestamp time.Time `json:"timestamp"`
	Type      string    `json:"type"` // ConfigurationUpdate | StateUpdate | Action
	Summary   string    `json:"summary"`
	Data      string    `json:"data"`
}

const maxHistory = 100

var comparisonSymbols = map[string]string{
	"GreaterThanOrEqualToThreshold": "greater than or equal to",
	"GreaterThanThreshold":          "greater than",
	"LessThanThreshold":             "less than",
	"LessThanOrEqualToThreshold":    "less than or equal to",
}

// Validate checks an alarm definition as PutMetricAlarm does.
func (a *Alarm) Validate() error {
	switch {
	case a.Name == "":
		return fmt.Errorf("%w: AlarmName is required", ErrMissingParameter)
	case len(a.Name) > 255:
		return fmt.Errorf("%w: AlarmName must be at most 255 characters", ErrInvalidParameter)
	case a.Metric.MetricName == "" || a.Metric.Namespace == "":
		return fmt.Errorf("%w: MetricName and Namespace are required (metric math alarms are not supported by the local cloud)", ErrMissingParameter)
	case a.Statistic == "" && a.ExtendedStatistic == "":
		return fmt.Errorf("%w: one of Statistic or ExtendedStatistic is required", ErrMissingParameter)
	case a.Statistic != "" && a.ExtendedStatistic != "":
		return fmt.Errorf("%w: Statistic and ExtendedStatistic are mutually exclusive", ErrInvalidCombination)
	case a.EvaluationPeriods < 1:
		return fmt.Errorf("%w: EvaluationPeriods (%d) must be >= 1", ErrInvalidParameter, a.EvaluationPeriods)
	case a.DatapointsToAlarm < 0 || a.DatapointsToAlarm > a.EvaluationPeriods:
		return fmt.Errorf("%w: DatapointsToAlarm (%d) must be between 1 and EvaluationPeriods (%d)", ErrInvalidParameter, a.DatapointsToAlarm, a.EvaluationPeriods)
	}
	if a.Statistic != "" {
		switch a.Statistic {
		case "SampleCount", "Average", "Sum", "Minimum", "Maximum":
		default:
			return fmt.Errorf("%w: Statistic %q must be one of SampleCount, Average, Sum, Minimum, Maximum", ErrInvalidParameter, a.Statistic)
		}
	}
	if a.ExtendedStatistic != "" {
		if _, ok := ParsePercentile(a.ExtendedStatistic); !ok {
			return fmt.Errorf("%w: ExtendedStatistic %q must be a percentile such as p99", ErrInvalidParameter, a.ExtendedStatistic)
		}
	}
	if err := ValidateAlarmPeriod(a.Period); err != nil {
		return err
	}
	if a.Period*a.EvaluationPeriods > 86400 {
		return fmt.Errorf("%w: EvaluationPeriods (%d) * Period (%d) must not exceed 86400 seconds (one day)", ErrInvalidParameter, a.EvaluationPeriods, a.Period)
	}
	if _, ok := comparisonSymbols[a.ComparisonOperator]; !ok {
		return fmt.Errorf("%w: ComparisonOperator %q must be one of GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold (anomaly detection is not supported by the local cloud)", ErrInvalidParameter, a.ComparisonOperator)
	}
	switch a.TreatMissingData {
	case "", "missing", "ignore", "breaching", "notBreaching":
	default:
		return fmt.Errorf("%w: TreatMissingData %q must be one of breaching, notBreaching, ignore, missing", ErrInvalidParameter, a.TreatMissingData)
	}
	return nil
}

// ValidateAlarmPeriod checks Period as PutMetricAlarm does: 10, 20, 30 (high
// resolution) or a multiple of 60.
func ValidateAlarmPeriod(p int) error {
	if p == 10 || p == 20 || p == 30 || (p >= 60 && p%60 == 0) {
		return nil
	}
	return fmt.Errorf("%w: Period (%d) must be 10, 20, 30 or a multiple of 60", ErrInvalidParameter, p)
}

func (a *Alarm) statName() string {
	if a.ExtendedStatistic != "" {
		return a.ExtendedStatistic
	}
	return a.Statistic
}

func (a *Alarm) m() int {
	if a.DatapointsToAlarm > 0 {
		return a.DatapointsToAlarm
	}
	return a.EvaluationPeriods
}

func (a *Alarm) breaches(v float64) bool {
	switch a.ComparisonOperator {
	case "GreaterThanOrEqualToThreshold":
		return v >= a.Threshold
	case "GreaterThanThreshold":
		return v > a.Threshold
	case "LessThanThreshold":
		return v < a.Threshold
	case "LessThanOrEqualToThreshold":
		return v <= a.Threshold
	}
	return false
}

// NewAlarm prepares a validated alarm for storage: a new alarm starts in
// INSUFFICIENT_DATA; an updated one keeps its state, as on AWS.
func NewAlarm(a Alarm, prev *Alarm, now time.Time) Alarm {
	a.ConfigUpdated = now
	if prev == nil {
		a.State = StateInsufficientData
		a.StateReason = "Unchecked: Initial alarm creation"
		a.StateUpdated = now
		a.StateTransitioned = now
		a.History = []HistoryItem{{Timestamp: now, Type: "ConfigurationUpdate", Summary: fmt.Sprintf("Alarm %q created", a.Name)}}
		return a
	}
	a.State, a.StateReason, a.StateReasonData = prev.State, prev.StateReason, prev.StateReasonData
	a.StateUpdated, a.StateTransitioned = prev.StateUpdated, prev.StateTransitioned
	a.History = append(prev.History, HistoryItem{Timestamp: now, Type: "ConfigurationUpdate", Summary: fmt.Sprintf("Alarm %q updated", a.Name)})
	a.trimHistory()
	return a
}

func (a *Alarm) trimHistory() {
	if len(a.History) > maxHistory {
		a.History = a.History[len(a.History)-maxHistory:]
	}
}

// SetState forces a state (SetAlarmState). The next evaluation may move it.
func (a *Alarm) SetState(now time.Time, state, reason, reasonData string) error {
	switch state {
	case StateOK, StateAlarm, StateInsufficientData:
	default:
		return fmt.Errorf("%w: StateValue %q must be one of OK, ALARM, INSUFFICIENT_DATA", ErrInvalidParameter, state)
	}
	if reason == "" {
		return fmt.Errorf("%w: StateReason is required", ErrMissingParameter)
	}
	if reasonData != "" && !json.Valid([]byte(reasonData)) {
		return fmt.Errorf("%w: StateReasonData must be valid JSON", ErrInvalidParameter)
	}
	a.transition(now, state, reason, reasonData)
	return nil
}

func (a *Alarm) transition(now time.Time, state, reason, data string) {
	old := a.State
	a.StateReason, a.StateReasonData, a.StateUpdated = reason, data, now
	if old == state {
		return
	}
	a.State = state
	a.StateTransitioned = now
	hd, _ := json.Marshal(map[string]any{
		"version":   "1.0",
		"oldState":  map[string]string{"stateValue": old},
		"newState":  map[string]any{"stateValue": state, "stateReason": reason},
		"timestamp": now.UTC().Format(time.RFC3339Nano),
	})
	a.History = append(a.History, HistoryItem{
		Timestamp: now, Type: "StateUpdate",
		Summary: fmt.Sprintf("Alarm updated from %s to %s", old, state),
		Data:    string(hd),
	})
	a.trimHistory()
}

type evalPoint struct {
	start   time.Time
	value   float64
	present bool
}

// Evaluate runs one evaluation at now and returns whether the state changed.
//
// The evaluation range is the last EvaluationPeriods complete periods,
// aligned to the period as CloudWatch aligns them. Missing periods are
// treated per TreatMissingData: "missing" ignores them (and the alarm goes
// to INSUFFICIENT_DATA when every period is missing), "ignore" keeps the
// current state when every period is missing, "breaching"/"notBreaching"
// count them as bad/good.
func (a *Alarm) Evaluate(s *Store, now time.Time) bool {
	period := time.Duration(a.Period) * time.Second
	end := now.Truncate(period)
	start := end.Add(-time.Duration(a.EvaluationPeriods) * period)
	aggs, err := s.Query(a.Metric, start, end, period, a.Unit, a.EvaluationPeriods)
	if err != nil {
		return false
	}
	pts := make([]evalPoint, a.EvaluationPeriods)
	for i := range pts {
		pts[i].start = start.Add(time.Duration(i) * period)
	}
	for _, ag := range aggs {
		i := int(ag.Start.Sub(start) / period)
		if i < 0 || i >= len(pts) {
			continue
		}
		if v, ok := ag.Statistic(a.statName()); ok {
			pts[i].value, pts[i].present = v, true
		}
	}
	present, breaching, missing := 0, 0, 0
	for _, p := range pts {
		switch {
		case p.present:
			present++
			if a.breaches(p.value) {
				breaching++
			}
		default:
			missing++
		}
	}
	treat := a.TreatMissingData
	if treat == "" {
		treat = "missing"
	}
	switch treat {
	case "breaching":
		breaching += missing
	case "notBreaching":
	case "ignore", "missing":
		if present == 0 {
			if treat == "ignore" {
				return false
			}
			reason := fmt.Sprintf("Insufficient Data: %d datapoint%s %s unknown.", missing, plural(missing), wasWere(missing))
			return a.apply(now, StateInsufficientData, reason, a.reasonData(now, start, pts))
		}
	}
	old := a.State
	var state, verb string
	if breaching >= a.m() {
		state, verb = StateAlarm, "were"
	} else {
		state, verb = StateOK, "were not"
	}
	var recent []string
	for i := len(pts) - 1; i >= 0; i-- {
		if pts[i].present {
			recent = append(recent, fmt.Sprintf("%s (%s)", fmtFloat(pts[i].value), pts[i].start.UTC().Format("02/01/06 15:04:05")))
		}
	}
	n := present
	if treat == "breaching" || treat == "notBreaching" {
		n = len(pts)
	}
	count := breaching
	if state == StateOK {
		count = n - breaching
	}
	reason := fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] %s %s the threshold (%s) (minimum %d datapoint%s for %s -> %s transition).",
		count, n, strings.Join(recent, ", "), verb, comparisonSymbols[a.ComparisonOperator], fmtFloat(a.Threshold),
		minimumFor(state, a), plural(minimumFor(state, a)), old, state)
	if old == state {
		// Unchanged state keeps the reason of the transition, as AWS does.
		a.StateUpdated = now
		return false
	}
	return a.apply(now, state, reason, a.reasonData(now, start, pts))
}

func minimumFor(state string, a *Alarm) int {
	if state == StateAlarm {
		return a.m()
	}
	return 1
}

func (a *Alarm) apply(now time.Time, state, reason, data string) bool {
	if a.State == state {
		a.StateUpdated = now
		return false
	}
	a.transition(now, state, reason, data)
	return true
}

func (a *Alarm) reasonData(now, start time.Time, pts []evalPoint) string {
	type dp struct {
		Timestamp string  `json:"timestamp"`
		Value     float64 `json:"value"`
	}
	var recent []dp
	for i := len(pts) - 1; i >= 0; i-- {
		if pts[i].present {
			recent = append(recent, dp{pts[i].start.UTC().Format("2006-01-02T15:04:05.000+0000"), pts[i].value})
		}
	}
	b, _ := json.Marshal(map[string]any{
		"version":             "1.0",
		"queryDate":           now.UTC().Format("2006-01-02T15:04:05.000+0000"),
		"startDate":           start.UTC().Format("2006-01-02T15:04:05.000+0000"),
		"statistic":           a.statName(),
		"period":              a.Period,
		"recentDatapoints":    recent,
		"threshold":           a.Threshold,
		"evaluatedDatapoints": recent,
	})
	return string(b)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func wasWere(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

func fmtFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%g", v)
}

// Alarms is the alarm table.
type Alarms map[string]*Alarm

// Sorted returns the alarms ordered by name, as DescribeAlarms lists them.
func (as Alarms) Sorted() []*Alarm {
	out := make([]*Alarm, 0, len(as))
	for _, a := range as {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

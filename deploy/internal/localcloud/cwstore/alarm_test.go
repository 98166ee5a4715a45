package cwstore

import (
	"strings"
	"testing"
	"time"
)

func newTestAlarm(treat string, n, m int) *Alarm {
	a := NewAlarm(Alarm{Name: "a", Metric: MetricID{Namespace: "Shoal", MetricName: "CPU"}, Statistic: "Maximum", Period: 60,
		EvaluationPeriods: n, DatapointsToAlarm: m, Threshold: 80, ComparisonOperator: "GreaterThanOrEqualToThreshold", TreatMissingData: treat}, nil, t0)
	return &a
}

// putMinutes puts one value per minute ending at the minute before now; NaN-like
// sentinel -1 means "missing".
func putMinutes(s *Store, now time.Time, vals ...float64) {
	end := now.Truncate(time.Minute)
	for i, v := range vals {
		if v < 0 {
			continue
		}
		at := end.Add(-time.Duration(len(vals)-i) * time.Minute).Add(10 * time.Second)
		_ = s.Put(now, []Datum{{Metric: MetricID{Namespace: "Shoal", MetricName: "CPU"}, Timestamp: at, Values: []float64{v}}})
	}
}

func TestAlarmEvaluation(t *testing.T) {
	now := t0.Add(30 * time.Second)
	cases := []struct {
		name  string
		treat string
		n, m  int
		vals  []float64
		start string
		want  string
	}{
		{"all breaching", "", 3, 3, []float64{90, 95, 99}, StateInsufficientData, StateAlarm},
		{"2 of 3 enough with M=2", "", 3, 2, []float64{90, 10, 99}, StateInsufficientData, StateAlarm},
		{"2 of 3 not enough with M=3", "", 3, 3, []float64{90, 10, 99}, StateInsufficientData, StateOK},
		{"threshold itself breaches GreaterThanOrEqual", "", 1, 1, []float64{80}, StateInsufficientData, StateAlarm},
		{"all missing, missing", "missing", 3, 2, []float64{-1, -1, -1}, StateAlarm, StateInsufficientData},
		{"all missing, ignore keeps state", "ignore", 3, 2, []float64{-1, -1, -1}, StateAlarm, StateAlarm},
		{"all missing, breaching", "breaching", 3, 2, []float64{-1, -1, -1}, StateOK, StateAlarm},
		{"all missing, notBreaching", "notBreaching", 3, 2, []float64{-1, -1, -1}, StateAlarm, StateOK},
		{"missing ignored: one breach of one present", "missing", 3, 1, []float64{-1, 99, -1}, StateOK, StateAlarm},
		{"missing counted as breaching completes M", "breaching", 3, 3, []float64{99, -1, 99}, StateOK, StateAlarm},
		{"data in the current partial minute is not evaluated", "", 1, 1, nil, StateOK, StateInsufficientData},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewStore()
			putMinutes(s, now, c.vals...)
			if c.vals == nil {
				_ = s.Put(now, []Datum{{Metric: MetricID{Namespace: "Shoal", MetricName: "CPU"}, Timestamp: now, Values: []float64{99}}})
			}
			a := newTestAlarm(c.treat, c.n, c.m)
			a.State = c.start
			a.Evaluate(s, now)
			if a.State != c.want {
				t.Fatalf("state %s (%s), want %s", a.State, a.StateReason, c.want)
			}
		})
	}
}

func TestAlarmReasonAndHistory(t *testing.T) {
	now := t0.Add(30 * time.Second)
	s := NewStore()
	putMinutes(s, now, 90, 10, 99)
	a := newTestAlarm("", 3, 2)
	if !a.Evaluate(s, now) {
		t.Fatal("first evaluation must change the state")
	}
	want := "Threshold Crossed: 2 out of the last 3 datapoints [99.0 (30/11/26 11:59:00), 10.0 (30/11/26 11:58:00), 90.0 (30/11/26 11:57:00)] were greater than or equal to the threshold (80.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> ALARM transition)."
	if a.StateReason != want {
		t.Fatalf("reason\n got %s\nwant %s", a.StateReason, want)
	}
	if a.Evaluate(s, now.Add(time.Second)) {
		t.Fatal("same data must not change the state again")
	}
	if len(a.History) != 2 || a.History[1].Type != "StateUpdate" || !strings.Contains(a.History[1].Summary, "INSUFFICIENT_DATA to ALARM") {
		t.Fatalf("history %+v", a.History)
	}
	if err := a.SetState(now, "MAYBE", "x", ""); err == nil {
		t.Fatal("SetState accepted an unknown state")
	}
	if err := a.SetState(now, StateOK, "manual", "{not json"); err == nil {
		t.Fatal("SetState accepted invalid StateReasonData")
	}
	if err := a.SetState(now, StateOK, "manual", `{"by":"test"}`); err != nil || a.State != StateOK {
		t.Fatalf("SetState: %v %s", err, a.State)
	}
}

func TestAlarmValidate(t *testing.T) {
	base := func() Alarm {
		return Alarm{Name: "a", Metric: MetricID{Namespace: "S", MetricName: "m"}, Statistic: "Average", Period: 60, EvaluationPeriods: 2, ComparisonOperator: "LessThanThreshold"}
	}
	cases := []struct {
		name string
		mut  func(*Alarm)
		ok   bool
	}{
		{"valid", func(*Alarm) {}, true},
		{"percentile", func(a *Alarm) { a.Statistic, a.ExtendedStatistic = "", "p99" }, true},
		{"period 10", func(a *Alarm) { a.Period = 10 }, true},
		{"period 15", func(a *Alarm) { a.Period = 15 }, false},
		{"period 61", func(a *Alarm) { a.Period = 61 }, false},
		{"both statistics", func(a *Alarm) { a.ExtendedStatistic = "p99" }, false},
		{"unknown statistic", func(a *Alarm) { a.Statistic = "Median" }, false},
		{"anomaly operator", func(a *Alarm) { a.ComparisonOperator = "LessThanLowerOrGreaterThanUpperThreshold" }, false},
		{"zero evaluation periods", func(a *Alarm) { a.EvaluationPeriods = 0 }, false},
		{"more than a day", func(a *Alarm) { a.Period, a.EvaluationPeriods = 3600, 25 }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := base()
			c.mut(&a)
			if err := a.Validate(); (err == nil) != c.ok {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
}

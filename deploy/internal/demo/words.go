package demo

import (
	"strings"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// The demo's JSON (summary.json, the timeline and the alarm events) keeps
// the spellings it had before the control API's enums: decision sources as
// auto, manual, reconcile and spot; alarm states and comparisons as
// CloudWatch writes them. The coordinator's view package has its own
// helpers, but it is internal to coordinator/, so the demo keeps a copy.
// A value this demo does not know (a newer coordinator's) is written as
// its number, never guessed.

// sourceWord is "auto", "manual", "reconcile" or "spot"; "" when unset.
func sourceWord(s shoalv1.DecisionSource) string {
	if s == shoalv1.DecisionSource_DECISION_SOURCE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "DECISION_SOURCE_"))
}

// alarmStateWord is "OK", "ALARM" or "INSUFFICIENT_DATA"; "" when unset.
func alarmStateWord(s shoalv1.AlarmState) string {
	if s == shoalv1.AlarmState_ALARM_STATE_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(s.String(), "ALARM_STATE_")
}

// comparisonWord is CloudWatch's ComparisonOperator, e.g.
// "GreaterThanOrEqualToThreshold"; "" when unset.
func comparisonWord(c shoalv1.Comparison) string {
	switch c {
	case shoalv1.Comparison_COMPARISON_UNSPECIFIED:
		return ""
	case shoalv1.Comparison_COMPARISON_GREATER_THAN_OR_EQUAL_TO_THRESHOLD:
		return "GreaterThanOrEqualToThreshold"
	case shoalv1.Comparison_COMPARISON_GREATER_THAN_THRESHOLD:
		return "GreaterThanThreshold"
	case shoalv1.Comparison_COMPARISON_LESS_THAN_THRESHOLD:
		return "LessThanThreshold"
	case shoalv1.Comparison_COMPARISON_LESS_THAN_OR_EQUAL_TO_THRESHOLD:
		return "LessThanOrEqualToThreshold"
	}
	return c.String()
}

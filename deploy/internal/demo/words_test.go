package demo

import (
	"testing"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// The words are what summary.json and the event lines carried before the
// control API had enums; scripts read them.
func TestWordsKeepTheJSONSpellings(t *testing.T) {
	cases := []struct {
		name, got, want string
	}{
		{"source auto", sourceWord(shoalv1.DecisionSource_DECISION_SOURCE_AUTO), "auto"},
		{"source manual", sourceWord(shoalv1.DecisionSource_DECISION_SOURCE_MANUAL), "manual"},
		{"source reconcile", sourceWord(shoalv1.DecisionSource_DECISION_SOURCE_RECONCILE), "reconcile"},
		{"source spot", sourceWord(shoalv1.DecisionSource_DECISION_SOURCE_SPOT), "spot"},
		{"source unset", sourceWord(shoalv1.DecisionSource_DECISION_SOURCE_UNSPECIFIED), ""},
		{"source unknown", sourceWord(shoalv1.DecisionSource(42)), "42"},
		{"alarm OK", alarmStateWord(shoalv1.AlarmState_ALARM_STATE_OK), "OK"},
		{"alarm ALARM", alarmStateWord(shoalv1.AlarmState_ALARM_STATE_ALARM), "ALARM"},
		{"alarm insufficient", alarmStateWord(shoalv1.AlarmState_ALARM_STATE_INSUFFICIENT_DATA), "INSUFFICIENT_DATA"},
		{"alarm unset", alarmStateWord(shoalv1.AlarmState_ALARM_STATE_UNSPECIFIED), ""},
		{"ge", comparisonWord(shoalv1.Comparison_COMPARISON_GREATER_THAN_OR_EQUAL_TO_THRESHOLD), "GreaterThanOrEqualToThreshold"},
		{"gt", comparisonWord(shoalv1.Comparison_COMPARISON_GREATER_THAN_THRESHOLD), "GreaterThanThreshold"},
		{"lt", comparisonWord(shoalv1.Comparison_COMPARISON_LESS_THAN_THRESHOLD), "LessThanThreshold"},
		{"le", comparisonWord(shoalv1.Comparison_COMPARISON_LESS_THAN_OR_EQUAL_TO_THRESHOLD), "LessThanOrEqualToThreshold"},
		{"comparison unset", comparisonWord(shoalv1.Comparison_COMPARISON_UNSPECIFIED), ""},
		{"comparison unknown", comparisonWord(shoalv1.Comparison(42)), "42"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// A value added to the proto later must get a word of its own here, not
// fall through to its number.
func TestEveryComparisonHasAWord(t *testing.T) {
	for v, name := range shoalv1.Comparison_name {
		c := shoalv1.Comparison(v)
		if c == shoalv1.Comparison_COMPARISON_UNSPECIFIED {
			continue
		}
		if w := comparisonWord(c); w == "" || w == name || w == c.String() {
			t.Errorf("%s has no CloudWatch spelling (got %q)", name, w)
		}
	}
}

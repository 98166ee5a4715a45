package view

import (
	"fmt"
	"strings"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// word turns a proto enum name such as INSTANCE_STATE_IN_SERVICE into its
// vocabulary word (in_service) by dropping the prefix and lower-casing.
func word(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

// parseWord is the inverse of word over the enum's value map.
func parseWord(field, w, prefix string, values map[string]int32) (int32, error) {
	v, ok := values[prefix+strings.ToUpper(w)]
	if !ok || v == 0 {
		var names []string
		for n, v := range values {
			if v != 0 {
				names = append(names, word(n, prefix))
			}
		}
		return 0, fmt.Errorf("%s: unknown value %q (want one of %s)", field, w, strings.Join(sortStrings(names), ", "))
	}
	return v, nil
}

// InstanceStateWord is the vocabulary word for s ("" when unspecified).
func InstanceStateWord(s shoalv1.InstanceState) string {
	if s == shoalv1.InstanceState_INSTANCE_STATE_UNSPECIFIED {
		return ""
	}
	return word(s.String(), "INSTANCE_STATE_")
}

// ParseInstanceState reads a vocabulary word such as "in_service".
func ParseInstanceState(w string) (shoalv1.InstanceState, error) {
	v, err := parseWord("state", w, "INSTANCE_STATE_", shoalv1.InstanceState_value)
	return shoalv1.InstanceState(v), err
}

// DecisionStatusWord is the vocabulary word for s ("" when unspecified).
func DecisionStatusWord(s shoalv1.DecisionStatus) string {
	if s == shoalv1.DecisionStatus_DECISION_STATUS_UNSPECIFIED {
		return ""
	}
	return word(s.String(), "DECISION_STATUS_")
}

// ParseDecisionStatus reads a vocabulary word such as "applied".
func ParseDecisionStatus(w string) (shoalv1.DecisionStatus, error) {
	v, err := parseWord("status", w, "DECISION_STATUS_", shoalv1.DecisionStatus_value)
	return shoalv1.DecisionStatus(v), err
}

// ErrorClassWord is the vocabulary word for c ("" when unspecified).
func ErrorClassWord(c shoalv1.ErrorClass) string {
	if c == shoalv1.ErrorClass_ERROR_CLASS_UNSPECIFIED {
		return ""
	}
	return word(c.String(), "ERROR_CLASS_")
}

// BackendStateWord is the vocabulary word for s ("" when unspecified).
func BackendStateWord(s shoalv1.BackendState) string {
	if s == shoalv1.BackendState_BACKEND_STATE_UNSPECIFIED {
		return ""
	}
	return word(s.String(), "BACKEND_STATE_")
}

// AdjustmentTypeWord is the word for t: change_in_capacity, percent_change
// or exact_capacity.
func AdjustmentTypeWord(t shoalv1.AdjustmentType) string {
	if t == shoalv1.AdjustmentType_ADJUSTMENT_TYPE_UNSPECIFIED {
		return ""
	}
	return word(t.String(), "ADJUSTMENT_TYPE_")
}

// ParseAdjustmentType reads change_in_capacity, percent_change or exact_capacity.
func ParseAdjustmentType(w string) (shoalv1.AdjustmentType, error) {
	v, err := parseWord("adjustment_type", w, "ADJUSTMENT_TYPE_", shoalv1.AdjustmentType_value)
	return shoalv1.AdjustmentType(v), err
}

// DecisionSourceWord is the vocabulary word for s: auto, manual, reconcile
// or spot ("" when unspecified).
func DecisionSourceWord(s shoalv1.DecisionSource) string {
	if s == shoalv1.DecisionSource_DECISION_SOURCE_UNSPECIFIED {
		return ""
	}
	return word(s.String(), "DECISION_SOURCE_")
}

// NodeRoleWord is the vocabulary word for r: leader, follower, candidate
// or unknown ("" when unspecified).
func NodeRoleWord(r shoalv1.NodeRole) string {
	if r == shoalv1.NodeRole_NODE_ROLE_UNSPECIFIED {
		return ""
	}
	return word(r.String(), "NODE_ROLE_")
}

// TokenPolicyWord is the vocabulary word for p: read, operate or admin.
func TokenPolicyWord(p shoalv1.TokenPolicy) string {
	if p == shoalv1.TokenPolicy_TOKEN_POLICY_UNSPECIFIED {
		return ""
	}
	return word(p.String(), "TOKEN_POLICY_")
}

// ParseTokenPolicy reads read, operate or admin.
func ParseTokenPolicy(w string) (shoalv1.TokenPolicy, error) {
	v, err := parseWord("policy", w, "TOKEN_POLICY_", shoalv1.TokenPolicy_value)
	return shoalv1.TokenPolicy(v), err
}

// AlarmStateWord spells s as CloudWatch does: OK, ALARM or
// INSUFFICIENT_DATA ("" when unspecified).
func AlarmStateWord(s shoalv1.AlarmState) string {
	if s == shoalv1.AlarmState_ALARM_STATE_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(s.String(), "ALARM_STATE_")
}

// ComparisonWord spells c as CloudWatch does, e.g.
// GreaterThanOrEqualToThreshold ("" when unspecified).
func ComparisonWord(c shoalv1.Comparison) string {
	if c == shoalv1.Comparison_COMPARISON_UNSPECIFIED {
		return ""
	}
	var b strings.Builder
	for _, part := range strings.Split(strings.TrimPrefix(c.String(), "COMPARISON_"), "_") {
		b.WriteString(part[:1] + strings.ToLower(part[1:]))
	}
	return b.String()
}

package enroll

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reason is why a caller was refused; it is the reason label of
// shoal_auth_denied_total.
type Reason string

// The refusals of enrollment and renewal.
const (
	ReasonBadSignature    Reason = "bad_signature"
	ReasonUnknownAccount  Reason = "unknown_account"
	ReasonWrongRegion     Reason = "wrong_region"
	ReasonNotInFleet      Reason = "not_in_fleet"
	ReasonIPMismatch      Reason = "ip_mismatch"
	ReasonAlreadyEnrolled Reason = "already_enrolled"
	ReasonExpired         Reason = "expired"
	ReasonWrongRole       Reason = "wrong_role"
)

// Reasons lists the reasons this package gives, in a fixed order.
var Reasons = []Reason{
	ReasonBadSignature, ReasonUnknownAccount, ReasonWrongRegion, ReasonNotInFleet,
	ReasonIPMismatch, ReasonAlreadyEnrolled, ReasonExpired, ReasonWrongRole,
}

// ErrDenied is wrapped by every *DeniedError.
var ErrDenied = errors.New("enrollment denied")

// ErrInvalid is wrapped by errors about malformed input (sizes, encodings,
// a CSR that does not verify): the caller sent something no agent would.
var ErrInvalid = errors.New("invalid enrollment request")

// DeniedError is a refusal: the reason and one line for the agent.
type DeniedError struct {
	Reason Reason
	Msg    string
}

func (e *DeniedError) Error() string { return string(e.Reason) + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrDenied) hold.
func (e *DeniedError) Unwrap() error { return ErrDenied }

func deny(r Reason, format string, a ...any) *DeniedError {
	return &DeniedError{Reason: r, Msg: fmt.Sprintf(format, a...)}
}

// ReasonOf returns the reason of a refusal anywhere in err's chain.
func ReasonOf(err error) (Reason, bool) {
	var d *DeniedError
	if errors.As(err, &d) {
		return d.Reason, true
	}
	return "", false
}

// DeniedMetricName is the name of the refusal counter.
const DeniedMetricName = "shoal_auth_denied_total"

// NewDeniedCounter returns the unregistered shoal_auth_denied_total{reason}
// counter vector, with this package's reasons present at zero. One vector
// is shared by enrollment and the RPC authorizer, which adds its own
// reasons; register it once.
func NewDeniedCounter() *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: DeniedMetricName,
		Help: "Callers refused by authentication, authorization or agent enrollment, by reason.",
	}, []string{"reason"})
	for _, r := range Reasons {
		v.WithLabelValues(string(r))
	}
	return v
}

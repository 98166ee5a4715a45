package apierr

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain names the coordinator as the source of a reason, as ErrorInfo asks.
const Domain = "coordinator.shoal.dev"

// Reasons. Each says whether the request reached the raft log, because that
// is what a client needs to know before it sends the request again.
const (
	// NotLeader: the node that got the request does not lead; the request
	// never entered the raft log and may be sent to the leader.
	NotLeader = "NOT_LEADER"
	// NoLeader: no leader was known, or none accepted the write, within the
	// node's wait; the request never entered the raft log.
	NoLeader = "NO_LEADER"
	// Conflict: the state forbids the change (a terminated instance, a
	// decision already finished). Sending it again fails the same way.
	Conflict = "CONFLICT"
	// UnknownOutcome: leadership was lost after the write was handed to
	// raft; it may or may not be committed. Sending it again may apply it
	// twice.
	UnknownOutcome = "UNKNOWN_OUTCOME"
)

// Error returns a status error with code and msg that carries reason.
func Error(code codes.Code, reason, msg string) error {
	st, err := status.New(code, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: Domain})
	if err != nil {
		// Only a detail that cannot be marshalled fails, and ErrorInfo can.
		panic(err)
	}
	return st.Err()
}

// Reason is the reason err carries in Domain, or "" when it carries none
// (not a status error, or one from a peer that predates reasons).
func Reason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetDomain() == Domain {
			return ei.GetReason()
		}
	}
	return ""
}

// NotApplied reports whether err proves that the write it answers never
// entered the raft log, so sending the same write again cannot apply it
// twice. Everything else, including a status without a reason, may have been
// applied.
func NotApplied(err error) bool {
	switch Reason(err) {
	case NotLeader, NoLeader:
		return true
	}
	return false
}

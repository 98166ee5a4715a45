package apierr

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestReasonTravelsWithTheStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		reason     string
		notApplied bool
	}{
		{"not leader", Error(codes.FailedPrecondition, NotLeader, "not leader"), NotLeader, true},
		{"no leader", Error(codes.Unavailable, NoLeader, "no leader"), NoLeader, true},
		{"conflict shares the code of not leader", Error(codes.FailedPrecondition, Conflict, "terminated"), Conflict, false},
		{"unknown outcome", Error(codes.Aborted, UnknownOutcome, "lost"), UnknownOutcome, false},
		{"a code without a reason", status.Error(codes.FailedPrecondition, "not leader"), "", false},
		{"a reason from another domain", otherDomain(t), "", false},
		{"not a status", errors.New("NOT_LEADER"), "", false},
		{"nil", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reason(tc.err); got != tc.reason {
				t.Fatalf("Reason = %q, want %q", got, tc.reason)
			}
			if got := NotApplied(tc.err); got != tc.notApplied {
				t.Fatalf("NotApplied = %v, want %v", got, tc.notApplied)
			}
		})
	}
}

func TestErrorKeepsTheMessage(t *testing.T) {
	err := Error(codes.Unavailable, NoLeader, "no leader: none elected within 5s")
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "no leader: none elected within 5s" {
		t.Fatalf("status = %v", st)
	}
	// A status wrapped by a caller keeps its reason.
	if got := Reason(fmt.Errorf("fleet create: %w", err)); got != NoLeader {
		t.Fatalf("wrapped reason = %q", got)
	}
}

func otherDomain(t *testing.T) error {
	t.Helper()
	st, err := status.New(codes.FailedPrecondition, "x").WithDetails(&errdetails.ErrorInfo{Reason: NotLeader, Domain: "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

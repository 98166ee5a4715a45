package server

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/apierr"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
)

// TestToStatusContract pins what each internal error becomes on the wire,
// and whether a forwarding node may send the write again on that answer
// (apierr.NotApplied is the cluster's retry rule). A conflict and a node
// that does not lead share FAILED_PRECONDITION; only the second is retried.
func TestToStatusContract(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		code       codes.Code
		reason     string
		msg        string
		notApplied bool
	}{
		{"not leader", cluster.ErrNotLeader, codes.FailedPrecondition, apierr.NotLeader, "not leader", true},
		{"no leader", fmt.Errorf("%w: none elected within 5s", cluster.ErrNoLeader), codes.Unavailable, apierr.NoLeader, "no leader: none elected within 5s", true},
		{"conflict", &fsm.Error{Kind: fsm.KindConflict, Msg: `instance "i-1": terminated instances cannot change state`}, codes.FailedPrecondition, apierr.Conflict, "terminated instances cannot change state", false},
		{"unknown outcome", cluster.ErrUnknownOutcome, codes.Aborted, apierr.UnknownOutcome, "may or may not have been applied", false},
		{"exists", &fsm.Error{Kind: fsm.KindExists, Msg: `fleet "web" already exists`}, codes.AlreadyExists, "", `fleet "web" already exists`, false},
		{"not found", &fsm.Error{Kind: fsm.KindNotFound, Msg: `fleet "web": unknown fleet`}, codes.NotFound, "", "unknown fleet", false},
		{"invalid", &fsm.Error{Kind: fsm.KindInvalid, Msg: "min (5) must be <= max (3)"}, codes.InvalidArgument, "", "min (5) must be <= max (3)", false},
		{"invalid request", fmt.Errorf("%w: raft_addr: required", cluster.ErrInvalidRequest), codes.InvalidArgument, "", "raft_addr: required", false},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "", "deadline exceeded", false},
		{"anything else", fmt.Errorf("raft apply: boom"), codes.Internal, "", "boom", false},
		{"a status passes through", status.Error(codes.Unavailable, "dial leader"), codes.Unavailable, "", "dial leader", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := toStatus(tc.err)
			wantCode(t, err, tc.code, tc.msg)
			if got := apierr.Reason(err); got != tc.reason {
				t.Fatalf("reason = %q, want %q", got, tc.reason)
			}
			if got := apierr.NotApplied(err); got != tc.notApplied {
				t.Fatalf("NotApplied = %v, want %v", got, tc.notApplied)
			}
		})
	}
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/apierr"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// noLeaderNode answers GetStatus as a node without a leader.
type noLeaderNode struct {
	shoalv1.ControlServiceClient
}

func (noLeaderNode) GetStatus(context.Context, *shoalv1.GetStatusRequest, ...grpc.CallOption) (*shoalv1.GetStatusResponse, error) {
	return &shoalv1.GetStatusResponse{NodeId: "n2", LastLeaderId: "n1", NoLeader: "election in progress; last leader n1, unreachable"}, nil
}

// TestRetryReadWaitsForALeader: a read refused for want of a leader is
// retried until one answers; after --timeout it exits 2 naming the lost
// leader; any other failure is final at once.
func TestRetryReadWaitsForALeader(t *testing.T) {
	noLeader := apierr.Error(codes.Unavailable, apierr.NoLeader, "no leader")
	t.Run("a leader comes back", func(t *testing.T) {
		calls := 0
		err := retryRead(context.Background(), noLeaderNode{}, time.Second, func(context.Context) error {
			calls++
			if calls < 3 {
				return noLeader
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Errorf("err %v after %d calls; want success on the 3rd", err, calls)
		}
	})
	t.Run("none within the timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
		defer cancel()
		err := retryRead(ctx, noLeaderNode{}, 600*time.Millisecond, func(context.Context) error { return noLeader })
		if exitCode(err) != ExitNoLeader || !containsAll(err.Error(), "replace n1", "waited") {
			t.Errorf("err %v (exit %d); want exit 2 naming n1", err, exitCode(err))
		}
	})
	t.Run("the node's deadline arrives first", func(t *testing.T) {
		// The node ends a held read at the deadline it was sent, so its
		// DEADLINE_EXCEEDED can arrive while this side's context is live.
		err := retryRead(context.Background(), noLeaderNode{}, time.Second, func(context.Context) error {
			return status.Error(codes.DeadlineExceeded, "context deadline exceeded")
		})
		if exitCode(err) != ExitNoLeader || !containsAll(err.Error(), "replace n1") {
			t.Errorf("err %v (exit %d); want exit 2 naming n1", err, exitCode(err))
		}
	})
	t.Run("a refusal is final", func(t *testing.T) {
		calls := 0
		err := retryRead(context.Background(), noLeaderNode{}, time.Second, func(context.Context) error {
			calls++
			return status.Error(codes.PermissionDenied, "no")
		})
		if calls != 1 || exitCode(err) != 1 {
			t.Errorf("%d calls, exit %d; want 1 call, exit 1", calls, exitCode(err))
		}
	})
	if exitCode(fmt.Errorf("wrapped: %w", &noLeaderError{msg: "x"})) != ExitNoLeader || exitCode(errors.New("x")) != 1 {
		t.Error("exitCode: a wrapped noLeaderError is 2, anything else 1")
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/apierr"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// ExitNoLeader is the exit status of a command that found no leader within
// --timeout: the node asked answered, but the cluster cannot serve it now.
const ExitNoLeader = 2

// noLeaderError is a read that waited --timeout for a leader in vain.
type noLeaderError struct{ msg string }

func (e *noLeaderError) Error() string { return e.msg }

// exitCode is Main's exit status for err.
func exitCode(err error) int {
	var nl *noLeaderError
	if errors.As(err, &nl) {
		return ExitNoLeader
	}
	return 1
}

// readRetryEvery spaces the attempts of a read that waits for a leader.
const readRetryEvery = 250 * time.Millisecond

// waitsForLeader reports whether err is the answer of a node that has no
// leader to ask (or could not reach it), so the same read may succeed once
// an election ends. The node says so with a reason; a refusal, a bad
// request or an unreachable --address is final.
func waitsForLeader(err error) bool {
	switch apierr.Reason(err) {
	case apierr.NoLeader, apierr.NotLeader:
		return true
	}
	return false
}

// retryRead runs read until it succeeds, fails for another reason than a
// missing leader, or ctx ends. A read that never found a leader fails
// with noLeaderError naming the leader it waited to replace, which it asks
// the node for (c may be nil when there is no node to ask).
func retryRead(ctx context.Context, c shoalv1.ControlServiceClient, timeout time.Duration, read func(context.Context) error) error {
	start := time.Now()
	for {
		err := read(ctx)
		if err == nil || !waitsForLeader(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return noLeader(c, timeout, start, err)
		case <-time.After(readRetryEvery):
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < readRetryEvery {
			return noLeader(c, timeout, start, err)
		}
	}
}

// noLeader words a read's failure after waiting: which leader it waited
// for, and what the node last said.
func noLeader(c shoalv1.ControlServiceClient, timeout time.Duration, start time.Time, last error) error {
	waited := time.Since(start).Round(100 * time.Millisecond)
	if waited > timeout {
		waited = timeout
	}
	last2 := status.Convert(last).Message()
	if c != nil {
		// The read's context has run out; the node answers its status from
		// its own view at once when it has no leader.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if st, err := c.GetStatus(ctx, &shoalv1.GetStatusRequest{}); err == nil && st.LastLeaderId != "" && st.LeaderId == "" {
			return &noLeaderError{msg: fmt.Sprintf("no leader: waited %s for a leader to replace %s (%s); last answer: %s", waited, st.LastLeaderId, st.NoLeader, last2)}
		}
	}
	return &noLeaderError{msg: fmt.Sprintf("no leader: waited %s for a new leader; last answer: %s", waited, last2)}
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
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
		if err != nil && (ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded) {
			// The node held the read, waiting for a leader, past --timeout:
			// it says whether that is what happened. The node's own
			// DEADLINE_EXCEEDED (it ends the call at the deadline it was
			// sent) can arrive a moment before this side's context ends.
			if nl := noLeader(c, timeout, start, err); nl != nil {
				return nl
			}
			return err
		}
		if err == nil || !waitsForLeader(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return orNoLeader(noLeader(c, timeout, start, err), err)
		case <-time.After(readRetryEvery):
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < readRetryEvery {
			return orNoLeader(noLeader(c, timeout, start, err), err)
		}
	}
}

// orNoLeader is nl, or a noLeaderError of err when the node could not say.
func orNoLeader(nl, err error) error {
	if nl != nil {
		return nl
	}
	return &noLeaderError{msg: "no leader: " + status.Convert(err).Message()}
}

// noLeader asks the node whether it has a leader, once the read's own
// context has run out; when it has none, the read's failure is a
// noLeaderError naming the leader it waited to replace. nil when the node
// has a leader or does not answer.
func noLeader(c shoalv1.ControlServiceClient, timeout time.Duration, start time.Time, last error) error {
	waited := time.Since(start).Round(100 * time.Millisecond)
	if waited > timeout {
		waited = timeout
	}
	if c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.GetStatus(ctx, &shoalv1.GetStatusRequest{})
	if err != nil || st.NoLeader == "" {
		return nil
	}
	lost := st.LastLeaderId
	if lost == "" {
		lost = "none known"
	}
	return &noLeaderError{msg: fmt.Sprintf("no leader: waited %s for a leader to replace %s (%s); last answer: %s", waited, lost, st.NoLeader, status.Convert(last).Message())}
}

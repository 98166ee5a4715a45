package cloud

import (
	"context"
	"errors"
	"fmt"
)

// TermHeader is the HTTP header that carries, on every cloud call a leader
// makes, the raft term of the leadership that made it. AWS ignores it; the
// local cloud's audit log records it, so a checker can tell a deposed
// leader's late call from its successor's.
const TermHeader = "X-Shoal-Term"

// ErrNotLeader means a mutating call was refused before it left the node:
// this node could not confirm that it still leads in the term the call was
// made for.
var ErrNotLeader = errors.New("leadership not verified")

type termKey struct{}

// WithTerm marks ctx as belonging to the leadership of term: calls made with
// it carry the term, and Fenced verifies that leadership before mutating.
func WithTerm(ctx context.Context, term uint64) context.Context {
	return context.WithValue(ctx, termKey{}, term)
}

// TermFrom returns the term WithTerm put in ctx.
func TermFrom(ctx context.Context) (uint64, bool) {
	t, ok := ctx.Value(termKey{}).(uint64)
	return t, ok
}

// Leadership confirms, with a quorum round trip, that this node still leads
// in term.
type Leadership interface {
	VerifyLeader(ctx context.Context, term uint64) error
}

// Fenced returns s with leadership verified immediately before every call
// that changes the group. A call whose context has no term, or whose term's
// leadership is not confirmed, fails with ErrNotLeader and never reaches the
// cloud. The check narrows, but cannot close, the window in which a deposed
// leader acts: AWS has no fencing token, so a leader frozen between the check
// and the call still makes it. Reads pass through unchecked.
func Fenced(s Scaling, l Leadership) Scaling { return fenced{s, l} }

type fenced struct {
	Scaling
	l Leadership
}

func (f fenced) verify(ctx context.Context, op string) error {
	term, ok := TermFrom(ctx)
	if !ok {
		return &Error{Op: op, Kind: ErrNotLeader, Err: errors.New("refused: the call was made outside any leadership term")}
	}
	if err := f.l.VerifyLeader(ctx, term); err != nil {
		return &Error{Op: op, Kind: ErrNotLeader, Err: fmt.Errorf("refused: leadership of term %d not confirmed just before the call: %w", term, err)}
	}
	return nil
}

func (f fenced) SetDesiredCapacity(ctx context.Context, group string, desired int32) error {
	if err := f.verify(ctx, "autoscaling:SetDesiredCapacity"); err != nil {
		return err
	}
	return f.Scaling.SetDesiredCapacity(ctx, group, desired)
}

func (f fenced) TerminateInstance(ctx context.Context, instanceID string, decrement bool) (Activity, error) {
	if err := f.verify(ctx, "autoscaling:TerminateInstanceInAutoScalingGroup"); err != nil {
		return Activity{}, err
	}
	return f.Scaling.TerminateInstance(ctx, instanceID, decrement)
}

func (f fenced) SetInstanceProtection(ctx context.Context, group string, instanceIDs []string, protected bool) error {
	if err := f.verify(ctx, "autoscaling:SetInstanceProtection"); err != nil {
		return err
	}
	return f.Scaling.SetInstanceProtection(ctx, group, instanceIDs, protected)
}

func (f fenced) PutLifecycleHook(ctx context.Context, hook LifecycleHook) error {
	if err := f.verify(ctx, "autoscaling:PutLifecycleHook"); err != nil {
		return err
	}
	return f.Scaling.PutLifecycleHook(ctx, hook)
}

func (f fenced) CompleteLifecycleAction(ctx context.Context, action LifecycleAction, result string) error {
	if err := f.verify(ctx, "autoscaling:CompleteLifecycleAction"); err != nil {
		return err
	}
	return f.Scaling.CompleteLifecycleAction(ctx, action, result)
}

func (f fenced) RecordLifecycleActionHeartbeat(ctx context.Context, action LifecycleAction) error {
	if err := f.verify(ctx, "autoscaling:RecordLifecycleActionHeartbeat"); err != nil {
		return err
	}
	return f.Scaling.RecordLifecycleActionHeartbeat(ctx, action)
}

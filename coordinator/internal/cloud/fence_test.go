package cloud_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud/cloudtest"
)

// leadership is a Leadership that leads in term `leads` only, and records
// what it was asked.
type leadership struct {
	leads uint64
	asked []uint64
}

func (l *leadership) VerifyLeader(_ context.Context, term uint64) error {
	l.asked = append(l.asked, term)
	if term != l.leads {
		return errors.New("not the leader of that term")
	}
	return nil
}

func TestFencedVerifiesBeforeEveryMutatingCall(t *testing.T) {
	ok := func(context.Context, cloud.LifecycleAction) error { return nil }
	var seenTerm uint64
	fake := &cloudtest.Fake{
		SetDesiredCapacityFunc: func(ctx context.Context, _ string, _ int32) error {
			seenTerm, _ = cloud.TermFrom(ctx)
			return nil
		},
		TerminateInstanceFunc:     func(context.Context, string, bool) (cloud.Activity, error) { return cloud.Activity{}, nil },
		SetInstanceProtectionFunc: func(context.Context, string, []string, bool) error { return nil },
		PutLifecycleHookFunc:      func(context.Context, cloud.LifecycleHook) error { return nil },
		CompleteLifecycleActionFunc: func(context.Context, cloud.LifecycleAction, string) error {
			return nil
		},
		RecordLifecycleActionHeartbeatFunc: ok,
		DescribeGroupsFunc:                 func(context.Context, []string) ([]cloud.Group, error) { return nil, nil },
	}
	calls := []struct {
		method string
		call   func(cloud.Scaling, context.Context) error
	}{
		{"SetDesiredCapacity", func(s cloud.Scaling, ctx context.Context) error { return s.SetDesiredCapacity(ctx, "g", 3) }},
		{"TerminateInstance", func(s cloud.Scaling, ctx context.Context) error {
			_, err := s.TerminateInstance(ctx, "i-1", true)
			return err
		}},
		{"SetInstanceProtection", func(s cloud.Scaling, ctx context.Context) error {
			return s.SetInstanceProtection(ctx, "g", []string{"i-1"}, true)
		}},
		{"PutLifecycleHook", func(s cloud.Scaling, ctx context.Context) error {
			return s.PutLifecycleHook(ctx, cloud.LifecycleHook{Name: "h"})
		}},
		{"CompleteLifecycleAction", func(s cloud.Scaling, ctx context.Context) error {
			return s.CompleteLifecycleAction(ctx, cloud.LifecycleAction{InstanceID: "i-1"}, cloud.ResultContinue)
		}},
		{"RecordLifecycleActionHeartbeat", func(s cloud.Scaling, ctx context.Context) error {
			return s.RecordLifecycleActionHeartbeat(ctx, cloud.LifecycleAction{InstanceID: "i-1"})
		}},
	}
	for _, c := range calls {
		t.Run(c.method, func(t *testing.T) {
			l := &leadership{leads: 7}
			s := cloud.Fenced(fake, l)

			fake.Reset()
			if err := c.call(s, cloud.WithTerm(context.Background(), 7)); err != nil {
				t.Fatalf("call in the leading term: %v", err)
			}
			if len(fake.CallsTo(c.method)) != 1 || len(l.asked) != 1 || l.asked[0] != 7 {
				t.Fatalf("want one verified call: cloud saw %d, verify asked %v", len(fake.CallsTo(c.method)), l.asked)
			}

			fake.Reset()
			err := c.call(s, cloud.WithTerm(context.Background(), 6))
			if !errors.Is(err, cloud.ErrNotLeader) || !strings.Contains(err.Error(), "term 6") {
				t.Fatalf("call of a deposed term: %v, want ErrNotLeader naming term 6", err)
			}
			if n := len(fake.Calls()); n != 0 {
				t.Fatalf("a refused call reached the cloud (%d calls)", n)
			}

			err = c.call(s, context.Background())
			if !errors.Is(err, cloud.ErrNotLeader) || !strings.Contains(err.Error(), "outside any leadership term") {
				t.Fatalf("call without a term: %v", err)
			}
			if n := len(fake.Calls()); n != 0 {
				t.Fatalf("a call without a term reached the cloud (%d calls)", n)
			}
		})
	}
	if seenTerm != 7 {
		t.Fatalf("the cloud saw term %d in the call's context, want 7", seenTerm)
	}

	// Reads are not fenced: they change nothing.
	l := &leadership{leads: 7}
	if _, err := cloud.Fenced(fake, l).DescribeGroups(context.Background(), []string{"g"}); err != nil || len(l.asked) != 0 {
		t.Fatalf("read: %v, verify asked %v", err, l.asked)
	}
	if cloud.Classify(&cloud.Error{Op: "x", Kind: cloud.ErrNotLeader, Err: errors.New("y")}) != cloud.ClassFatal {
		t.Fatal("ErrNotLeader should not be retried by a caller that retries retryable errors: the next leader acts")
	}
}

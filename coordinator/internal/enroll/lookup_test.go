package enroll

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// fakeAS answers DescribeAutoScalingInstances from a map and records each
// call's ids and (bubble) time.
type fakeAS struct {
	mu     sync.Mutex
	groups map[string]string // instance id -> group
	err    error
	calls  [][]string
	at     []time.Time
}

func (f *fakeAS) DescribeAutoScalingInstances(_ context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, append([]string(nil), in.InstanceIds...))
	f.at = append(f.at, time.Now())
	if f.err != nil {
		return nil, f.err
	}
	out := &autoscaling.DescribeAutoScalingInstancesOutput{}
	for _, id := range in.InstanceIds {
		if g, ok := f.groups[id]; ok {
			out.AutoScalingInstances = append(out.AutoScalingInstances, astypes.AutoScalingInstanceDetails{
				InstanceId: sdkaws.String(id), AutoScalingGroupName: sdkaws.String(g), LifecycleState: sdkaws.String("InService")})
		}
	}
	return out, nil
}

func (f *fakeAS) numCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func newLookup(t *testing.T, api AutoScalingAPI) *BatchLookup {
	t.Helper()
	b, err := NewBatchLookup(api, DefaultLookupConfig())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBatchLookupThousand: 1,000 agents booting at once cost 20 calls of 50
// ids, and a second wave within the cache lifetime costs none.
func TestBatchLookupThousand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &fakeAS{groups: map[string]string{}}
		for i := range 1000 {
			if i%10 != 0 { // every tenth is in no group
				api.groups[fmt.Sprintf("i-%017x", i)] = "web-asg"
			}
		}
		b := newLookup(t, api)
		wave := func() {
			var wg sync.WaitGroup
			for i := range 1000 {
				wg.Go(func() {
					id := fmt.Sprintf("i-%017x", i)
					info, found, err := b.LookupInstance(context.Background(), id)
					if err != nil || found != (i%10 != 0) || (found && (info.Group != "web-asg" || info.InstanceID != id || info.LifecycleState != "InService")) {
						t.Errorf("%s: %+v %v %v", id, info, found, err)
					}
				})
			}
			wg.Wait()
		}
		wave()
		if n := b.Calls(); n != 20 || api.numCalls() != 20 {
			t.Fatalf("calls = %d (fake saw %d), want 20", n, api.numCalls())
		}
		for i, ids := range api.calls {
			if len(ids) != MaxIDsPerDescribe {
				t.Fatalf("call %d has %d ids, want %d", i, len(ids), MaxIDsPerDescribe)
			}
		}
		time.Sleep(4 * time.Second) // bubble time, within the 5 s cache
		wave()
		if n := b.Calls(); n != 20 {
			t.Fatalf("calls after a cached wave = %d, want 20", n)
		}
		time.Sleep(2 * time.Second) // past the cache lifetime
		wave()
		if n := b.Calls(); n != 40 {
			t.Fatalf("calls after the cache expired = %d, want 40", n)
		}
	})
}

// TestBatchLookupWindow: lookups gather for Window after the first, then go
// in one call; duplicates join the call; an error is not cached.
func TestBatchLookupWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &fakeAS{groups: map[string]string{"i-1": "g", "i-2": "g", "i-3": "g"}}
		b := newLookup(t, api)
		start := time.Now()
		var wg sync.WaitGroup
		look := func(id string, wantFound bool) {
			wg.Go(func() {
				_, found, err := b.LookupInstance(context.Background(), id)
				if err != nil || found != wantFound {
					t.Errorf("%s: found %v, %v", id, found, err)
				}
			})
		}
		look("i-1", true)
		time.Sleep(10 * time.Millisecond)
		look("i-2", true)
		look("i-2", true)
		time.Sleep(30 * time.Millisecond)
		look("i-9", false)
		synctest.Wait()
		if api.numCalls() != 0 {
			t.Fatalf("a call went before the window closed")
		}
		wg.Wait()
		if len(api.calls) != 1 || len(api.calls[0]) != 3 || api.at[0].Sub(start) != 50*time.Millisecond {
			t.Fatalf("calls %v at %v, want one of 3 ids at 50ms", api.calls, api.at)
		}

		// The negative answer is cached as well.
		if _, found, err := b.LookupInstance(context.Background(), "i-9"); found || err != nil || api.numCalls() != 1 {
			t.Fatalf("cached miss: found %v err %v calls %d", found, err, api.numCalls())
		}

		// An error reaches every waiter and is not cached.
		api.mu.Lock()
		api.err = errors.New("Throttling")
		api.mu.Unlock()
		look3 := func() error { _, _, err := b.LookupInstance(context.Background(), "i-3"); return err }
		errs := make(chan error, 2)
		go func() { errs <- look3() }()
		go func() { errs <- look3() }()
		for range 2 {
			if err := <-errs; err == nil {
				t.Fatal("error not passed on")
			}
		}
		api.mu.Lock()
		api.err = nil
		api.mu.Unlock()
		if _, found, err := b.LookupInstance(context.Background(), "i-3"); !found || err != nil {
			t.Fatalf("after the error: %v %v", found, err)
		}
		if api.numCalls() != 3 {
			t.Fatalf("calls = %d, want 3 (the failed one was not cached)", api.numCalls())
		}

		// A caller that gives up returns at once; the call still serves others.
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() { _, _, err := b.LookupInstance(ctx, "i-1x"); got <- err }()
		synctest.Wait()
		cancel()
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled lookup: %v", err)
		}
		time.Sleep(time.Second)
		if api.numCalls() != 4 {
			t.Fatalf("calls = %d, want 4", api.numCalls())
		}
	})
}

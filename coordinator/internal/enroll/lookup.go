package enroll

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
)

// InstanceInfo is what Auto Scaling says about an instance.
type InstanceInfo struct {
	InstanceID string
	Group      string
	// LifecycleState is the Auto Scaling lifecycle state (Pending,
	// InService, Terminating, ...).
	LifecycleState string
}

// InstanceLookup finds the Auto Scaling group and lifecycle state of an
// instance; found is false when no group holds it.
type InstanceLookup interface {
	LookupInstance(ctx context.Context, instanceID string) (info InstanceInfo, found bool, err error)
}

// AutoScalingAPI is the one Auto Scaling call BatchLookup makes;
// *autoscaling.Client implements it.
type AutoScalingAPI interface {
	DescribeAutoScalingInstances(ctx context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error)
}

var (
	_ AutoScalingAPI = (*autoscaling.Client)(nil)
	_ InstanceLookup = (*BatchLookup)(nil)
)

// MaxIDsPerDescribe is DescribeAutoScalingInstances' limit on instance ids.
const MaxIDsPerDescribe = 50

// LookupConfig tunes BatchLookup.
type LookupConfig struct {
	// Window is how long the first lookup of a batch waits for others to
	// join it.
	Window time.Duration
	// MaxBatch is the most ids in one call; a full batch goes at once.
	MaxBatch int
	// CacheTTL is how long an answer, found or not, is reused.
	CacheTTL time.Duration
	// CallTimeout bounds one DescribeAutoScalingInstances call, which
	// serves every lookup of its batch whatever their own contexts.
	CallTimeout time.Duration
}

// DefaultLookupConfig gathers for 50 ms, up to 50 ids, and caches for 5 s.
func DefaultLookupConfig() LookupConfig {
	return LookupConfig{Window: 50 * time.Millisecond, MaxBatch: MaxIDsPerDescribe, CacheTTL: 5 * time.Second, CallTimeout: 10 * time.Second}
}

// Validate checks the fields, naming each.
func (c LookupConfig) Validate() error {
	switch {
	case c.Window < 0 || c.Window > time.Second:
		return fmt.Errorf("lookup window (%s): must be 0 to 1s", c.Window)
	case c.MaxBatch < 1 || c.MaxBatch > MaxIDsPerDescribe:
		return fmt.Errorf("lookup max batch (%d): must be 1 to %d", c.MaxBatch, MaxIDsPerDescribe)
	case c.CacheTTL < 0 || c.CacheTTL > time.Minute:
		return fmt.Errorf("lookup cache ttl (%s): must be 0 to 1m", c.CacheTTL)
	case c.CallTimeout <= 0:
		return fmt.Errorf("lookup call timeout (%s): must be > 0", c.CallTimeout)
	}
	return nil
}

// BatchLookup answers lookups with DescribeAutoScalingInstances, gathering
// the lookups that arrive within Window into one call of up to MaxBatch ids
// and caching each answer for CacheTTL, so a thousand agents enrolling at
// once cost a handful of calls. Lookups of an id already asked for join
// that call.
type BatchLookup struct {
	api   AutoScalingAPI
	cfg   LookupConfig
	calls atomic.Uint64

	mu      sync.Mutex
	cache   map[string]cached
	waiters map[string][]chan answer // ids gathering or in flight
	pending []string                 // ids gathering, not yet sent
	timer   *time.Timer
}

type cached struct {
	info    InstanceInfo
	found   bool
	expires time.Time
}

type answer struct {
	info  InstanceInfo
	found bool
	err   error
}

// NewBatchLookup returns a BatchLookup over api.
func NewBatchLookup(api AutoScalingAPI, cfg LookupConfig) (*BatchLookup, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &BatchLookup{api: api, cfg: cfg, cache: map[string]cached{}, waiters: map[string][]chan answer{}}, nil
}

// Calls is how many DescribeAutoScalingInstances calls were made.
func (b *BatchLookup) Calls() uint64 { return b.calls.Load() }

// LookupInstance implements InstanceLookup.
func (b *BatchLookup) LookupInstance(ctx context.Context, id string) (InstanceInfo, bool, error) {
	ch := make(chan answer, 1)
	b.mu.Lock()
	if c, ok := b.cache[id]; ok {
		if time.Now().Before(c.expires) {
			b.mu.Unlock()
			return c.info, c.found, nil
		}
		delete(b.cache, id)
	}
	_, asked := b.waiters[id]
	b.waiters[id] = append(b.waiters[id], ch)
	if !asked {
		b.pending = append(b.pending, id)
		switch {
		case len(b.pending) >= b.cfg.MaxBatch:
			b.flushLocked()
		case len(b.pending) == 1:
			b.timer = time.AfterFunc(b.cfg.Window, b.flush)
		}
	}
	b.mu.Unlock()
	select {
	case a := <-ch:
		return a.info, a.found, a.err
	case <-ctx.Done():
		// The call goes on for the others; this answer is dropped into
		// the buffered channel.
		return InstanceInfo{}, false, ctx.Err()
	}
}

func (b *BatchLookup) flush() {
	b.mu.Lock()
	b.flushLocked()
	b.mu.Unlock()
}

// flushLocked sends the gathered ids, if any, in one call.
func (b *BatchLookup) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.pending) == 0 {
		return
	}
	ids := b.pending
	b.pending = nil
	b.calls.Add(1)
	go b.describe(ids)
}

func (b *BatchLookup) describe(ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.CallTimeout)
	defer cancel()
	found := map[string]InstanceInfo{}
	in := &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: ids, MaxRecords: sdkaws.Int32(MaxIDsPerDescribe)}
	var err error
	// ids fit in one page; the token is followed in case a service
	// pages anyway, bounded so a looping token cannot spin.
	for page := 0; page < 4; page++ {
		var out *autoscaling.DescribeAutoScalingInstancesOutput
		out, err = b.api.DescribeAutoScalingInstances(ctx, in)
		if err != nil {
			err = fmt.Errorf("DescribeAutoScalingInstances: %w", err)
			break
		}
		for _, i := range out.AutoScalingInstances {
			id := sdkaws.ToString(i.InstanceId)
			found[id] = InstanceInfo{InstanceID: id, Group: sdkaws.ToString(i.AutoScalingGroupName), LifecycleState: sdkaws.ToString(i.LifecycleState)}
		}
		if sdkaws.ToString(out.NextToken) == "" {
			break
		}
		next := *in
		next.NextToken = out.NextToken
		in = &next
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	expires := time.Now().Add(b.cfg.CacheTTL)
	for _, id := range ids {
		info, ok := found[id]
		a := answer{info: info, found: ok, err: err}
		if err == nil && b.cfg.CacheTTL > 0 {
			b.cache[id] = cached{info: info, found: ok, expires: expires}
		}
		for _, ch := range b.waiters[id] {
			ch <- a
		}
		delete(b.waiters, id)
	}
	b.pruneLocked()
}

// pruneLocked drops expired answers so the cache holds only the last
// CacheTTL's worth of ids.
func (b *BatchLookup) pruneLocked() {
	now := time.Now()
	for id, c := range b.cache {
		if !now.Before(c.expires) {
			delete(b.cache, id)
		}
	}
}

//go:build multiprocess

package warmpool

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

type launchDelay struct {
	Kind    string `json:"kind"`
	Samples int    `json:"samples"`
	P50MS   int64  `json:"p50_ms"`
	P90MS   int64  `json:"p90_ms"`
}

type explain struct {
	Details      []string      `json:"details"`
	LaunchDelays []launchDelay `json:"launch_delays"`
}

type notYet string

func (e notYet) Error() string { return string(e) }

// The local cloud's boot delays here: an instance's programs start only
// once its boot is over, so its agent is ready a boot delay after the
// launch, as on EC2. A stopped warm-pool instance resumes faster.
const (
	coldBoot = 3 * time.Second
	warmBoot = 300 * time.Millisecond
)

// TestWarmPoolScaleOutFasterThanCold: a cold scale-out, then a warm pool,
// then a scale-out the pool serves. The warm one reaches service sooner,
// as the CLI sees it and as the leader learns it; explain shows the pool
// and both learned delays, and `fleet get` the same delays.
func TestWarmPoolScaleOutFasterThanCold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	opts := sandbox.DefaultOptions()
	opts.BinDir = testkit.BinDir(t)
	opts.BootDelay, opts.WarmBootDelay, opts.EvalInterval = coldBoot, warmBoot, 500*time.Millisecond
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if _, err := sb.RunGolden(ctx, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Min: 2, Max: 6}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.WaitInService(ctx, "web", 2, 40*time.Second); err != nil {
		t.Fatal(err)
	}
	// Only manual scales here: the idle fleet's policy would undo them.
	if _, err := sb.CLI(ctx, "pause", "web"); err != nil {
		t.Fatal(err)
	}
	scale := func(n int) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := sb.CLI(ctx, "scale", "web", "--desired", fmt.Sprint(n), "--reason", "e2e"); err != nil {
			t.Fatal(err)
		}
		if _, err := sb.WaitInService(ctx, "web", n, 30*time.Second); err != nil {
			ds, _ := sb.CLI(ctx, "decisions", "web")
			ex, _ := sb.CLI(ctx, "explain", "web")
			t.Fatalf("%v\ndecisions:\n%s\nexplain:\n%s", err, ds, ex)
		}
		return time.Since(start)
	}
	cold := scale(3)

	cfg, err := sb.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := autoscaling.NewFromConfig(cfg).PutWarmPool(ctx, &autoscaling.PutWarmPoolInput{
		AutoScalingGroupName: aws.String("shoal-web"), MinSize: aws.Int32(1), MaxGroupPreparedCapacity: aws.Int32(4), PoolState: astypes.WarmPoolStateStopped,
	}); err != nil {
		t.Fatal(err)
	}
	// The leader reads the pool every 10 s: wait until it has seen a ready
	// instance, so the next scale-out is known to come from the pool.
	err = sandbox.Poll(ctx, 30*time.Second, "explain showing a ready warm pool", func(ctx context.Context) error {
		var ex explain
		if err := sb.CLIJSON(ctx, &ex, "explain", "web"); err != nil {
			return err
		}
		for _, d := range ex.Details {
			if strings.HasPrefix(d, "warm pool: ") && !strings.HasPrefix(d, "warm pool: 0 ready") {
				return nil
			}
		}
		return notYet(strings.Join(ex.Details, "; "))
	})
	if err != nil {
		t.Fatal(err)
	}
	warm := scale(4)
	t.Logf("scale-out to in service, seen by the CLI: cold %v, warm %v", cold.Round(100*time.Millisecond), warm.Round(100*time.Millisecond))

	var ex explain
	err = sandbox.Poll(ctx, 10*time.Second, "both learned delays in explain", func(ctx context.Context) error {
		if err := sb.CLIJSON(ctx, &ex, "explain", "web"); err != nil {
			return err
		}
		if len(ex.LaunchDelays) != 2 {
			return notYet(fmt.Sprintf("%+v", ex.LaunchDelays))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]launchDelay{}
	for _, d := range ex.LaunchDelays {
		byKind[d.Kind] = d
	}
	w, c := byKind["warm"], byKind["cold"]
	t.Logf("learned: warm p50 %d ms (%d), cold p50 %d ms (%d)", w.P50MS, w.Samples, c.P50MS, c.Samples)
	if w.Samples != 1 || c.Samples < 1 || w.P50MS <= 0 || c.P50MS <= 0 {
		t.Fatalf("launch delays = %+v, want the pool launch learned as warm and the others as cold", ex.LaunchDelays)
	}
	// Both include the agent's start and the leader's evaluation cadence;
	// the boots differ by 2.7 s, far more than either.
	if c.P50MS < coldBoot.Milliseconds() || w.P50MS >= c.P50MS {
		t.Fatalf("learned p50: warm %d ms, cold %d ms; want cold at least the %v boot and warm faster", w.P50MS, c.P50MS, coldBoot)
	}
	if warm >= cold {
		t.Fatalf("scale-out to in service: warm %v, cold %v; want the warm pool faster", warm, cold)
	}
	if !strings.Contains(strings.Join(ex.Details, "\n"), "launch delay (warm, last 1)") {
		t.Fatalf("explain details lack the warm delay: %v", ex.Details)
	}
	var fl struct {
		LaunchDelays []launchDelay `json:"launch_delays"`
	}
	if err := sb.CLIJSON(ctx, &fl, "fleet", "get", "web"); err != nil {
		t.Fatal(err)
	}
	if len(fl.LaunchDelays) != 2 {
		t.Fatalf("fleet get launch_delays = %+v", fl.LaunchDelays)
	}
	newLeaderKeepsDelays(ctx, t, sb, ex.LaunchDelays)
}

// newLeaderKeepsDelays kills the leader and checks that the next one shows
// the same learned delays in explain and `fleet get` without timing a
// launch itself: the samples are in the replicated state.
func newLeaderKeepsDelays(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, want []launchDelay) {
	t.Helper()
	old, err := sb.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.KillNode(old); err != nil {
		t.Fatal(err)
	}
	same := func(got []launchDelay) error {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return notYet(fmt.Sprintf("launch delays %+v, want %+v", got, want))
		}
		return nil
	}
	var leader *sandbox.Node
	err = sandbox.Poll(ctx, 30*time.Second, "the new leader's explain with the learned delays", func(ctx context.Context) error {
		if leader, err = sb.Leader(ctx); err != nil {
			return err
		}
		if leader.ID == old.ID {
			return notYet("the old leader is still named")
		}
		var ex explain
		if err := sb.CLIJSON(ctx, &ex, "explain", "web"); err != nil {
			return err
		}
		return same(ex.LaunchDelays)
	})
	if err != nil {
		t.Fatal(err)
	}
	var fl struct {
		LaunchDelays []launchDelay `json:"launch_delays"`
	}
	if err := sb.CLIJSON(ctx, &fl, "fleet", "get", "web"); err != nil {
		t.Fatal(err)
	}
	if err := same(fl.LaunchDelays); err != nil {
		t.Fatalf("fleet get from the new leader %s: %v", leader.ID, err)
	}
	t.Logf("after the leader %s died, %s shows the learned delays %+v", old.ID, leader.ID, fl.LaunchDelays)
}

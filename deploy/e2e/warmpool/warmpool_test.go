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

// TestWarmAndColdLaunchesLearnedApart: a cold scale-out, then a warm pool,
// then a scale-out the pool serves. explain shows the pool and both learned
// delays, the pool's launch as warm, and `fleet get` the same delays.
func TestWarmAndColdLaunchesLearnedApart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	opts := sandbox.DefaultOptions()
	opts.BinDir = testkit.BinDir(t)
	opts.BootDelay, opts.EvalInterval = 500*time.Millisecond, 500*time.Millisecond
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
	// The local cloud starts an instance's process at launch and holds
	// only its lifecycle state for --boot-delay, so a cold instance's agent
	// is ready as soon as a warm one's: the two delays are learned apart,
	// but which is faster is not the local cloud's to show.
	if w.Samples != 1 || c.Samples < 1 || w.P50MS <= 0 || c.P50MS <= 0 {
		t.Fatalf("launch delays = %+v, want the pool launch learned as warm and the others as cold", ex.LaunchDelays)
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
}

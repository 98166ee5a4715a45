//go:build multiprocess

package spot

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// TestRebalanceRecommendationMakesTheFirstVictim: a rebalance
// recommendation (no interruption) flags the instance at_risk, it keeps
// serving, and the next scale-in drains it before any other.
func TestRebalanceRecommendationMakesTheFirstVictim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	opts := sandbox.DefaultOptions()
	opts.BinDir = testkit.BinDir(t)
	opts.BootDelay, opts.EvalInterval, opts.TerminateGrace = 500*time.Millisecond, 500*time.Millisecond, time.Second
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
	if _, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Min: 2, Max: 6, Extra: []string{"--desired", "4"}}); err != nil {
		t.Fatal(err)
	}
	in, err := sb.WaitInService(ctx, "web", 4, 40*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Only the manual scale-in below: the idle fleet's policy stays out.
	if _, err := sb.CLI(ctx, "pause", "web"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range in {
		ids = append(ids, i.ID)
	}
	slices.Sort(ids)
	// Without the flag the idle fleet's victim is the newest id of the
	// first AZ (2 instances per AZ): never the oldest id of all.
	risky := ids[0]
	if err := post(ctx, sb, "/_localcloud/interrupt", url.Values{"instance": {risky}, "rebalance-only": {"true"}}); err != nil {
		t.Fatal(err)
	}
	err = sandbox.Poll(ctx, 10*time.Second, "the instance flagged at_risk, still in service", func(ctx context.Context) error {
		var ins []instance
		if err := sb.CLIJSON(ctx, &ins, "instances", "web"); err != nil {
			return err
		}
		for _, i := range ins {
			if i.ID == risky && i.AtRisk && i.State == "in_service" {
				return nil
			}
		}
		return notYet(fmt.Sprintf("%+v", ins))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.CLI(ctx, "scale", "web", "--desired", "3", "--reason", "e2e: scale in one"); err != nil {
		t.Fatal(err)
	}
	err = sandbox.Poll(ctx, 30*time.Second, "the at-risk instance drained first", func(ctx context.Context) error {
		var ins []instance
		if err := sb.CLIJSON(ctx, &ins, "instances", "web"); err != nil {
			return err
		}
		serving := 0
		for _, i := range ins {
			switch {
			case i.ID == risky && i.State == "in_service":
				return notYet("the at-risk instance is still in service")
			case i.ID != risky && i.State != "in_service":
				return fmt.Errorf("%s (not at risk) is %s: the scale-in picked the wrong victim", i.ID, i.State)
			case i.ID != risky:
				serving++
			}
		}
		if serving != 3 {
			return notYet(fmt.Sprintf("%d others in service", serving))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

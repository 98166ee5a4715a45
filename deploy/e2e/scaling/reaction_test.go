//go:build multiprocess

package scaling

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// TestReactionTime measures detection-to-actuation: from the moment the
// fleet's metric, as the leader sees it, crosses the target, to the commit
// of the scale-out decision (the SetDesiredCapacity call follows it within
// milliseconds), over SHOAL_REACTION_SPIKES spikes. It is a measurement, not
// a check: `make bench` runs it through deploy/bench/reaction.sh and it is
// skipped in `make test`.
func TestReactionTime(t *testing.T) {
	spikes, _ := strconv.Atoi(os.Getenv("SHOAL_REACTION_SPIKES"))
	if spikes <= 0 {
		t.Skip("a benchmark: set SHOAL_REACTION_SPIKES (deploy/bench/reaction.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(spikes)*time.Minute+2*time.Minute)
	defer cancel()
	opts := sandbox.DefaultOptions()
	opts.BinDir, opts.BootDelay, opts.DrainTimeout, opts.TerminateGrace = testkit.BinDir(t), 500*time.Millisecond, 3*time.Second, time.Second
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if _, err := sb.RunGolden(ctx, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Min: 2, Max: 6, ScaleInWindow: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.WaitInService(ctx, "web", 2, 45*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := sb.StartLB(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	var fromCross, fromSpike []time.Duration
	for i := 0; i < spikes; i++ {
		var before []decision
		if err := sb.CLIJSON(ctx, &before, "decisions", "web"); err != nil {
			t.Fatal(err)
		}
		load, err := sb.Spawn(fmt.Sprintf("load-%d", i), "shoal-lb", []string{"loadtest", "--target", sb.LBURL + "/", "--rate", "150",
			"--duration", "60s", "--connections", "16", "--streams", "1", "--quiet"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		spikeAt := time.Now()
		var crossed time.Time
		var d decision
		var at time.Time
		err = sandbox.Poll(ctx, 30*time.Second, "scale-out decision", func(ctx context.Context) error {
			if crossed.IsZero() {
				var ins []sandbox.FleetInstance
				if err := sb.CLIJSON(ctx, &ins, "instances", "web"); err == nil {
					sum, n := 0.0, 0
					for _, in := range ins {
						if v, ok := in.Metrics["util"]; ok && in.State == "in_service" {
							sum, n = sum+v, n+1
						}
					}
					if n > 0 && sum/float64(n) > 50 {
						crossed = time.Now()
					}
				}
			}
			var ds []decisionAt
			if err := sb.CLIJSON(ctx, &ds, "decisions", "web"); err != nil {
				return err
			}
			for _, x := range ds[len(before):] {
				if x.To > x.From {
					d, at = x.decision, x.at()
					return nil
				}
			}
			return errNotYet("no scale-out yet")
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = load.Stop(2 * time.Second)
		if !crossed.IsZero() && at.After(crossed) {
			fromCross = append(fromCross, at.Sub(crossed))
		} else {
			// The decision came before the poll saw the average cross.
			fromCross = append(fromCross, 0)
		}
		fromSpike = append(fromSpike, at.Sub(spikeAt))
		t.Logf("spike %d: decision %d %d→%d, %v after the crossing, %v after the load started", i+1, d.ID, d.From, d.To,
			fromCross[len(fromCross)-1].Round(10*time.Millisecond), fromSpike[len(fromSpike)-1].Round(10*time.Millisecond))
		if _, err := sb.WaitFleetDesired(ctx, "web", 60*time.Second, func(n int) bool { return n == 2 }); err != nil {
			t.Fatal(err)
		}
		if _, err := sb.WaitInService(ctx, "web", 2, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	p := func(ds []time.Duration, q float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[int(q*float64(len(s)-1))].Round(10 * time.Millisecond)
	}
	fmt.Printf("\nDetection-to-actuation over %d spikes (agent interval 1s, eval interval 1s)\n", spikes)
	fmt.Printf("%-34s %8s %8s\n", "", "p50", "max")
	fmt.Printf("%-34s %8v %8v\n", "metric crosses target -> decision", p(fromCross, 0.5), p(fromCross, 1))
	fmt.Printf("%-34s %8v %8v\n", "load starts -> decision", p(fromSpike, 0.5), p(fromSpike, 1))
	fmt.Printf("%-34s %8s\n", "AWS target tracking (3 x 1 min)", ">= 180s")
}

// decisionAt is a decision with its commit time.
type decisionAt struct {
	decision
	At string `json:"at"`
}

func (d decisionAt) at() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, d.At)
	return t
}

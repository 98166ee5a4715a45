//go:build multiprocess

package e2e

import (
	"context"
	"sort"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud/cloudtest"
)

const publishEvery = 5 * time.Second

// sampleCounts reads the fleet's CPUUtilization SampleCount per publish
// period from CloudWatch (GetMetricData on the local cloud).
func sampleCounts(t *testing.T, cw *cloudwatch.Client, from, to time.Time) map[time.Time]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: sdkaws.Time(from), EndTime: sdkaws.Time(to),
		MetricDataQueries: []types.MetricDataQuery{{
			Id: sdkaws.String("n"),
			MetricStat: &types.MetricStat{
				Metric: &types.Metric{Namespace: sdkaws.String("Shoal"), MetricName: sdkaws.String("CPUUtilization"), Dimensions: []types.Dimension{
					{Name: sdkaws.String("AutoScalingGroupName"), Value: sdkaws.String("web-asg")},
					{Name: sdkaws.String("ShoalCluster"), Value: sdkaws.String("shoal")},
				}},
				Period: sdkaws.Int32(int32(publishEvery / time.Second)), Stat: sdkaws.String("SampleCount"),
			},
		}},
	})
	if err != nil {
		t.Fatalf("GetMetricData: %v", err)
	}
	got := map[time.Time]float64{}
	for _, r := range out.MetricDataResults {
		for i, ts := range r.Timestamps {
			got[ts.UTC()] = r.Values[i]
		}
	}
	return got
}

// TestPublishingSurvivesLeaderLoss: the leader publishes the fleet's
// aggregates to CloudWatch every period; it is killed with -9 mid-stream.
// Afterwards no period holds a double SampleCount (published twice) and at
// most the one period in flight is missing. Then the whole cluster stops and
// the dead-man's switch on CoordinatorHeartbeat goes to ALARM.
func TestPublishingSurvivesLeaderLoss(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t, "--alarm-interval", "1s")
	lc.Env(t)
	c := newCluster(t, "--cloud", "aws", "--publish-interval", publishEvery.String(), "--alarm-reconcile-interval", "1s")
	for _, n := range c.nodes {
		c.start(n)
	}
	l := c.leader(30 * time.Second)
	if out, err := c.cli(l.rpc, "fleet", "create", "web", "--asg", "web-asg", "--min", "0", "--max", "10"); err != nil {
		t.Fatalf("fleet create: %v\n%s", err, out)
	}
	for _, id := range []string{"i-0000000000000b001", "i-0000000000000b002"} {
		startAgent(t, c, id)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cw := cloudwatch.NewFromConfig(cfg)
	begin := time.Now().Truncate(publishEvery)

	waitFor(t, 30*time.Second, "three published periods", func() bool {
		return len(sampleCounts(t, cw, begin, time.Now())) >= 3
	})
	c.kill9(l)
	killedAt := time.Now()
	nl := c.leader(30 * time.Second)
	waitFor(t, 45*time.Second, "three periods published by the new leader", func() bool {
		n := 0
		for ts := range sampleCounts(t, cw, begin, time.Now()) {
			if ts.After(killedAt.Add(publishEvery)) {
				n++
			}
		}
		return n >= 3
	})

	got := sampleCounts(t, cw, begin, time.Now())
	var starts []time.Time
	var counts []float64
	for ts, v := range got {
		starts = append(starts, ts)
		counts = append(counts, v)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	sort.Float64s(counts)
	median := counts[len(counts)/2]
	missing := 0
	for i := 1; i < len(starts); i++ {
		gap := starts[i].Sub(starts[i-1])
		if gap%publishEvery != 0 {
			t.Fatalf("period %v is not aligned to %v after %v", starts[i], publishEvery, starts[i-1])
		}
		missing += int(gap/publishEvery) - 1
	}
	for _, ts := range starts {
		// Two agents at 4 samples/s give a steady count per period; a
		// period sent by both leaders would hold about twice as many.
		if got[ts] > 1.5*median {
			t.Errorf("period %v has SampleCount %v, median %v: published twice?", ts.Format(time.TimeOnly), got[ts], median)
		}
	}
	if missing > 1 {
		t.Errorf("%d periods missing between %v and %v; at most the one in flight may be", missing, starts[0].Format(time.TimeOnly), starts[len(starts)-1].Format(time.TimeOnly))
	}
	t.Logf("%d periods, median SampleCount %v, %d missing across the failover to %s", len(starts), median, missing, nl.id)

	// The dead-man's switch: OK while the cluster publishes its heartbeat,
	// ALARM once the whole cluster is down.
	waitFor(t, 30*time.Second, "heartbeat alarm OK while the cluster runs", func() bool {
		return alarmState(t, cw, "shoal-coordinator-heartbeat") == "OK"
	})
	for _, n := range c.nodes {
		c.kill9(n)
	}
	lc.Advance(40 * time.Second)
	waitFor(t, 15*time.Second, "heartbeat alarm ALARM after the cluster stopped", func() bool {
		return alarmState(t, cw, "shoal-coordinator-heartbeat") == "ALARM"
	})
}

func alarmState(t *testing.T, cw *cloudwatch.Client, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
	if err != nil {
		t.Fatalf("DescribeAlarms: %v", err)
	}
	if len(out.MetricAlarms) == 0 {
		return ""
	}
	return string(out.MetricAlarms[0].StateValue)
}

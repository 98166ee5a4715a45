package publish

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud/cloudtest"
)

// These tests run the publisher, the reconciler and the reader against the
// real shoal-localcloud binary, over the SDK's default CloudWatch protocol.

func localCloudWatch(t *testing.T, lc *cloudtest.LocalCloud) *cloudwatch.Client {
	t.Helper()
	lc.Env(t)
	c := awscloud.DefaultConfig()
	c.MaxBackoff = 20 * time.Millisecond
	c.BaseDelay = 5 * time.Millisecond
	c.RatePerSecond = 200
	c.Burst = 50
	cfg, err := awscloud.LoadConfig(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return cloudwatch.NewFromConfig(cfg)
}

func runPublisher(t *testing.T, p *Publisher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func alarmStates(t *testing.T, cw *cloudwatch.Client, names ...string) map[string]types.StateValue {
	t.Helper()
	out, err := cw.DescribeAlarms(context.Background(), &cloudwatch.DescribeAlarmsInput{AlarmNames: names})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]types.StateValue{}
	for _, a := range out.MetricAlarms {
		m[sdkaws.ToString(a.AlarmName)] = a.StateValue
	}
	return m
}

func TestLocalCloudPublishReadBackAndAlarms(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	cw := localCloudWatch(t, lc)
	ctx := context.Background()

	r, err := NewReconciler(cw, ReconcilerConfig{Cluster: "shoal", HeartbeatPeriod: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fleets := []FleetAlarms{{Fleet: "web", Group: "web-asg", Policy: cpuPolicy(50), Actions: []string{"arn:aws:sns:us-east-1:000000000000:ops"}}}
	ch, err := r.Reconcile(ctx, fleets)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Created) != 3 {
		t.Fatalf("created %v, want the heartbeat and cpu high/low", ch.Created)
	}
	if ch, err := r.Reconcile(ctx, fleets); err != nil || len(ch.Created)+len(ch.Updated)+len(ch.Deleted) != 0 {
		t.Fatalf("second reconcile changed %+v (%v); the local cloud's alarms should match", ch, err)
	}

	p := newTestPublisher(t, cw, nil)
	runPublisher(t, p)
	// Put the local cloud's clock just past a period boundary, so the
	// evaluation below sees the same three complete periods however long
	// publishing takes (up to 9 s).
	base := lc.Now().Truncate(10 * time.Second).Add(20 * time.Second)
	lc.Set(base.Add(time.Second))
	// Three complete periods of cpu at 85..95 (average 90 > the 55 high
	// threshold), with one per-instance-free custom metric.
	for i := 3; i >= 1; i-- {
		start := base.Add(-time.Duration(i) * 10 * time.Second)
		n := float64(10 + i)
		per := Period{Start: start, Fleets: []FleetStats{{Fleet: "web", Group: "web-asg", Metrics: map[string]Stats{
			"cpu":         {SampleCount: n, Sum: 90 * n, Min: 85, Max: 95},
			"queue_depth": {SampleCount: 2, Sum: 8, Min: 3, Max: 5},
		}}}}
		if err := p.Publish(per); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "three accepted requests", func() bool {
		return testutil.ToFloat64(p.m.requests.WithLabelValues("ok")) == 3 && p.QueueLen() == 0
	})

	reader := NewReader(cw, "shoal")
	stats := map[string][]float64{
		"SampleCount": {13, 12, 11},
		"Sum":         {90 * 13, 90 * 12, 90 * 11},
		"Minimum":     {85, 85, 85},
		"Maximum":     {95, 95, 95},
		"Average":     {90, 90, 90},
	}
	for stat, want := range stats {
		t.Run("GetMetricData "+stat, func(t *testing.T) {
			pts, err := reader.Series(ctx, Query{Group: "web-asg", Metric: "cpu", Stat: stat, Start: base.Add(-40 * time.Second), End: base})
			if err != nil {
				t.Fatal(err)
			}
			if len(pts) != 3 {
				t.Fatalf("%d points, want 3: %+v", len(pts), pts)
			}
			for i, pt := range pts {
				if !pt.T.Equal(base.Add(-time.Duration(3-i)*10*time.Second)) || pt.V != want[i] {
					t.Errorf("point %d = %v @ %v, want %v @ %v", i, pt.V, pt.T, want[i], base.Add(-time.Duration(3-i)*10*time.Second))
				}
			}
		})
	}
	pts, err := reader.Series(ctx, Query{Group: "web-asg", Metric: "queue_depth", Stat: "Sum", Start: base.Add(-40 * time.Second), End: base})
	if err != nil || len(pts) != 3 || pts[0].V != 8 {
		t.Fatalf("custom metric read back %+v, %v", pts, err)
	}

	lc.Hook(http.MethodPost, "alarms/evaluate")
	states := alarmStates(t, cw, "shoal-web-cpu-high", "shoal-web-cpu-low", "shoal-coordinator-heartbeat")
	want := map[string]types.StateValue{"shoal-web-cpu-high": types.StateValueAlarm, "shoal-web-cpu-low": types.StateValueOk, "shoal-coordinator-heartbeat": types.StateValueOk}
	for name, w := range want {
		if states[name] != w {
			t.Errorf("%s is %s, want %s", name, states[name], w)
		}
	}

	list, err := r.List(ctx, []string{"web"}, "web")
	if err != nil || len(list) != 2 || list[0].Name != "shoal-web-cpu-high" || list[0].State != "ALARM" || list[0].Reason == "" || list[0].Updated.IsZero() {
		t.Fatalf("List(web) = %+v, %v", list, err)
	}

	// The coordinator stops publishing; 40 s later on the local cloud's
	// clock the dead-man's switch has seen three missing periods.
	lc.Advance(40 * time.Second)
	if s := alarmStates(t, cw, "shoal-coordinator-heartbeat")["shoal-coordinator-heartbeat"]; s != types.StateValueAlarm {
		t.Errorf("heartbeat alarm is %s after the coordinator went quiet, want ALARM", s)
	}

	// Deleting the fleet deletes its alarms and leaves the heartbeat.
	ch, err = r.Reconcile(ctx, nil)
	if err != nil || len(ch.Deleted) != 2 {
		t.Fatalf("reconcile without fleets: %+v, %v", ch, err)
	}
	if got := alarmStates(t, cw, "shoal-web-cpu-high", "shoal-web-cpu-low", "shoal-coordinator-heartbeat"); len(got) != 1 {
		t.Fatalf("alarms left: %v", got)
	}
}

func TestLocalCloudThrottledPublishIsRetried(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	cw := localCloudWatch(t, lc)
	p := newTestPublisher(t, cw, nil)
	runPublisher(t, p)
	// More throttles than the SDK's attempts: Run itself must come back to
	// the request after the SDK gives up.
	lc.Hook(http.MethodPost, "faults/api?operation=PutMetricData&code=Throttling&count=7")
	start := lc.Now().Truncate(10 * time.Second).Add(-10 * time.Second)
	if err := p.Publish(Period{Start: start, Fleets: []FleetStats{{Fleet: "web", Group: "web-asg", Metrics: map[string]Stats{"mem": {SampleCount: 4, Sum: 100, Min: 20, Max: 30}}}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the request to get through", func() bool {
		return testutil.ToFloat64(p.m.requests.WithLabelValues("ok")) == 1
	})
	if n := testutil.ToFloat64(p.m.requests.WithLabelValues("error")); n < 1 {
		t.Errorf("failed requests = %v, want >= 1 (7 throttles outlast one SDK call's 5 attempts)", n)
	}
	pts, err := NewReader(cw, "shoal").Series(context.Background(), Query{Group: "web-asg", Metric: "mem", Stat: "Average", Start: start, End: start.Add(10 * time.Second)})
	if err != nil || len(pts) != 1 || pts[0].V != 25 {
		t.Fatalf("read back %+v, %v", pts, err)
	}
}

// TestLocalCloudSplitsLargePeriods publishes 2,500 datums through the local
// cloud: three requests, every datum readable afterwards.
func TestLocalCloudSplitsLargePeriods(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	cw := localCloudWatch(t, lc)
	p := newTestPublisher(t, cw, nil)
	per := bigPeriod(2500)
	per.Start = lc.Now().Truncate(10 * time.Second).Add(-10 * time.Second)
	reqs := p.build(per)
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for _, r := range reqs {
		// Each body is over 10 KiB, so the SDK gzips it, as it does
		// against real CloudWatch.
		if err := p.send(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	pts, err := NewReader(cw, "shoal").Series(context.Background(), Query{Group: "web-asg", Metric: "cpu", InstanceID: "i-00832", Stat: "SampleCount", Start: per.Start, End: per.Start.Add(10 * time.Second)})
	if err != nil || len(pts) != 1 || pts[0].V != 10 {
		t.Fatalf("last instance's series read back %+v, %v", pts, err)
	}
}

// TestLocalCloudLostPeriodsReadBack: loss records sent with a period land
// in CloudWatch at the lost periods' own timestamps, and `metrics` prints
// them under the series.
func TestLocalCloudLostPeriodsReadBack(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	cw := localCloudWatch(t, lc)
	p := newTestPublisher(t, cw, nil)
	runPublisher(t, p)
	base := lc.Now().Truncate(10 * time.Second)
	per := Period{Start: base.Add(-10 * time.Second), Lost: []Loss{
		{Start: base.Add(-30 * time.Second), Reason: LostInFlight, Count: 1},
		{Start: base.Add(-20 * time.Second), Reason: LostFailover, Count: 1, Fleets: []string{"web"}},
	}}
	if err := p.Publish(per); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the request accepted", func() bool {
		return testutil.ToFloat64(p.m.requests.WithLabelValues("ok")) == 1
	})
	pts, err := NewReader(cw, "shoal").LostPeriods(context.Background(), base.Add(-40*time.Second), base, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2 || !pts[0].T.Equal(base.Add(-30*time.Second)) || !pts[1].T.Equal(base.Add(-20*time.Second)) || pts[0].V != 1 || pts[1].V != 1 {
		t.Fatalf("lost periods read back %+v", pts)
	}
	var b strings.Builder
	if err := WriteLost(&b, pts); err != nil {
		t.Fatal(err)
	}
	want := "periods recorded lost by the cluster in this window: 2 (at " + base.Add(-30*time.Second).UTC().Format(time.TimeOnly) + ", " + base.Add(-20*time.Second).UTC().Format(time.TimeOnly) + ")"
	if !strings.HasPrefix(b.String(), want) {
		t.Fatalf("WriteLost = %q, want it to start %q", b.String(), want)
	}
	b.Reset()
	if err := WriteLost(&b, []Point{{T: base, V: 0}}); err != nil || b.Len() != 0 {
		t.Fatalf("nothing lost printed %q (%v)", b.String(), err)
	}
}

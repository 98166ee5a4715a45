package publish

import (
	"context"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud/cloudtest"
)

// TestLocalCloudHistory puts a fleet's cpu as statistic sets, 1-minute
// ones 4 h ago and 1-second ones in the last minute, and reads both back
// through History: the average and the sample count per step, at each
// part's resolution.
func TestLocalCloudHistory(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	cw := localCloudWatch(t, lc)
	ctx := context.Background()
	now := lc.Now().Truncate(time.Minute)
	put := func(at time.Time, res int32, count, avg float64) {
		t.Helper()
		_, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: sdkaws.String(Namespace), MetricData: []types.MetricDatum{{
			MetricName: sdkaws.String("CPUUtilization"), Unit: types.StandardUnitPercent, Timestamp: sdkaws.Time(at),
			Dimensions:        dims(DimGroup, "web-asg", DimCluster, "shoal"),
			StatisticValues:   &types.StatisticSet{SampleCount: sdkaws.Float64(count), Sum: sdkaws.Float64(count * avg), Minimum: sdkaws.Float64(avg), Maximum: sdkaws.Float64(avg)},
			StorageResolution: sdkaws.Int32(res),
		}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// 4 instances × 60 samples in each of two old minutes; 6 instances in
	// each of the last 3 seconds.
	old := now.Add(-4 * time.Hour)
	put(old, 60, 240, 50)
	put(old.Add(time.Minute), 60, 240, 70)
	for i := 3; i >= 1; i-- {
		put(now.Add(-time.Duration(i)*time.Second), 1, 6, 80)
	}
	got, err := NewReader(cw, "shoal").History(ctx, "web-asg", "cpu", 5*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []HistorySample{
		{T: old, Step: time.Minute, Avg: 50, Count: 240},
		{T: old.Add(time.Minute), Step: time.Minute, Avg: 70, Count: 240},
		{T: now.Add(-3 * time.Second), Step: time.Second, Avg: 80, Count: 6},
		{T: now.Add(-2 * time.Second), Step: time.Second, Avg: 80, Count: 6},
		{T: now.Add(-time.Second), Step: time.Second, Avg: 80, Count: 6},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d samples %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if !got[i].T.Equal(want[i].T) || got[i].Step != want[i].Step || got[i].Avg != want[i].Avg || got[i].Count != want[i].Count {
			t.Errorf("sample %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := NewReader(cw, "shoal").History(ctx, "web-asg", "cpu", 16*24*time.Hour, now); err == nil {
		t.Error("since 16 days accepted; CloudWatch keeps 1-minute data for 15")
	}
}

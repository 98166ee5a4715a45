package localcloud

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

func (tc *testCloud) now(t *testing.T) time.Time {
	t.Helper()
	var out struct {
		Now time.Time `json:"now"`
	}
	if err := json.Unmarshal(tc.hook(t, http.MethodGet, "/_localcloud/clock"), &out); err != nil {
		t.Fatal(err)
	}
	return out.Now
}

var webDims = []cwtypes.Dimension{{Name: aws.String("AutoScalingGroupName"), Value: aws.String("web")}}

func TestMetricsPutAndRead(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	base := tc.now(t).Truncate(time.Minute).Add(-10 * time.Minute)
	_, err := tc.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Shoal"), MetricData: []cwtypes.MetricDatum{
		{MetricName: aws.String("CPU"), Dimensions: webDims, Timestamp: aws.Time(base.Add(5 * time.Second)), Value: aws.Float64(10), Unit: cwtypes.StandardUnitPercent},
		{MetricName: aws.String("CPU"), Dimensions: webDims, Timestamp: aws.Time(base.Add(20 * time.Second)), Values: []float64{20, 40}, Counts: []float64{1, 3}, Unit: cwtypes.StandardUnitPercent},
		{MetricName: aws.String("CPU"), Dimensions: webDims, Timestamp: aws.Time(base.Add(70 * time.Second)), Unit: cwtypes.StandardUnitPercent,
			StatisticValues: &cwtypes.StatisticSet{SampleCount: aws.Float64(4), Sum: aws.Float64(200), Minimum: aws.Float64(5), Maximum: aws.Float64(90)}},
		{MetricName: aws.String("RPS"), Dimensions: webDims, Timestamp: aws.Time(base.Add(1 * time.Second)), Value: aws.Float64(7), StorageResolution: aws.Int32(1)},
		{MetricName: aws.String("RPS"), Dimensions: webDims, Timestamp: aws.Time(base.Add(2 * time.Second)), Value: aws.Float64(9), StorageResolution: aws.Int32(1)},
		{MetricName: aws.String("CPU"), Dimensions: []cwtypes.Dimension{{Name: aws.String("AutoScalingGroupName"), Value: aws.String("db")}}, Value: aws.Float64(1)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := tc.cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("Shoal"), MetricName: aws.String("CPU"), Dimensions: webDims,
		StartTime: aws.Time(base), EndTime: aws.Time(base.Add(2 * time.Minute)), Period: aws.Int32(60),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticAverage, cwtypes.StatisticSum, cwtypes.StatisticSampleCount, cwtypes.StatisticMaximum, cwtypes.StatisticMinimum}})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Datapoints) != 2 {
		t.Fatalf("want 2 minute datapoints, got %+v", st.Datapoints)
	}
	byMinute := map[time.Time]cwtypes.Datapoint{}
	for _, dp := range st.Datapoints {
		byMinute[aws.ToTime(dp.Timestamp).UTC()] = dp
	}
	first, second := byMinute[base.UTC()], byMinute[base.Add(time.Minute).UTC()]
	// Minute one: 10 once, 20 once, 40 three times.
	if aws.ToFloat64(first.SampleCount) != 5 || aws.ToFloat64(first.Sum) != 150 || aws.ToFloat64(first.Average) != 30 || aws.ToFloat64(first.Maximum) != 40 || aws.ToFloat64(first.Minimum) != 10 {
		t.Errorf("minute one = %+v", first)
	}
	if first.Unit != cwtypes.StandardUnitPercent {
		t.Errorf("unit = %s", first.Unit)
	}
	if aws.ToFloat64(second.SampleCount) != 4 || aws.ToFloat64(second.Sum) != 200 || aws.ToFloat64(second.Maximum) != 90 {
		t.Errorf("minute two (statistic set) = %+v", second)
	}
	hr, err := tc.cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("Shoal"), MetricName: aws.String("RPS"), Dimensions: webDims,
		StartTime: aws.Time(base), EndTime: aws.Time(base.Add(10 * time.Second)), Period: aws.Int32(1), Statistics: []cwtypes.Statistic{cwtypes.StatisticSum}})
	if err != nil {
		t.Fatal(err)
	}
	if len(hr.Datapoints) != 2 {
		t.Fatalf("high-resolution data read at 1 s: want 2 datapoints, got %d", len(hr.Datapoints))
	}
	md, err := tc.cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(base), EndTime: aws.Time(base.Add(2 * time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("cpu"), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(60), Stat: aws.String("Maximum"),
			Metric: &cwtypes.Metric{Namespace: aws.String("Shoal"), MetricName: aws.String("CPU"), Dimensions: webDims}}}}})
	if err != nil {
		t.Fatal(err)
	}
	r := md.MetricDataResults[0]
	if aws.ToString(r.Id) != "cpu" || len(r.Values) != 2 || r.Values[0] != 90 || r.Values[1] != 40 || !r.Timestamps[0].After(r.Timestamps[1]) || r.StatusCode != cwtypes.StatusCodeComplete {
		t.Fatalf("GetMetricData = %+v (want newest first)", r)
	}
	// GetMetricData allows far more datapoints than GetMetricStatistics'
	// 1440: an hour of one-second periods is fine.
	hour, err := tc.cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(base), EndTime: aws.Time(base.Add(time.Hour)), ScanBy: cwtypes.ScanByTimestampAscending,
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("rps"), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(1), Stat: aws.String("Sum"),
			Metric: &cwtypes.Metric{Namespace: aws.String("Shoal"), MetricName: aws.String("RPS"), Dimensions: webDims}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if v := hour.MetricDataResults[0].Values; len(v) != 2 || v[0] != 7 || v[1] != 9 {
		t.Fatalf("one-second GetMetricData ascending = %v", v)
	}
	lm, err := tc.cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("Shoal"), Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("AutoScalingGroupName"), Value: aws.String("web")}}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range lm.Metrics {
		names = append(names, aws.ToString(m.MetricName))
	}
	if strings.Join(names, ",") != "CPU,RPS" {
		t.Fatalf("ListMetrics for web = %v", names)
	}
	lm, err = tc.cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{MetricName: aws.String("CPU")})
	if err != nil || len(lm.Metrics) != 2 {
		t.Fatalf("ListMetrics CPU = %v, %v", lm, err)
	}
}

func TestMetricsValidation(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	now := tc.now(t)
	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"storage resolution 5", func() error {
			_, err := tc.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Shoal"), MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("x"), Value: aws.Float64(1), StorageResolution: aws.Int32(5)}}})
			return err
		}, "InvalidParameterValue"},
		{"reserved namespace", func() error {
			_, err := tc.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/EC2"), MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("x"), Value: aws.Float64(1)}}})
			return err
		}, "InvalidParameterValue"},
		{"value and statistic set", func() error {
			_, err := tc.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Shoal"), MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("x"), Value: aws.Float64(1),
				StatisticValues: &cwtypes.StatisticSet{SampleCount: aws.Float64(1), Sum: aws.Float64(1), Minimum: aws.Float64(1), Maximum: aws.Float64(1)}}}})
			return err
		}, "InvalidParameterCombination"},
		{"statistics period 45", func() error {
			_, err := tc.cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("Shoal"), MetricName: aws.String("x"), StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now), Period: aws.Int32(45), Statistics: []cwtypes.Statistic{cwtypes.StatisticSum}})
			return err
		}, "InvalidParameterValue"},
		{"too many datapoints", func() error {
			_, err := tc.cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("Shoal"), MetricName: aws.String("x"), StartTime: aws.Time(now.Add(-24 * time.Hour)), EndTime: aws.Time(now), Period: aws.Int32(1), Statistics: []cwtypes.Statistic{cwtypes.StatisticSum}})
			return err
		}, "InvalidParameterCombination"},
		{"metric math", func() error {
			_, err := tc.cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now), MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("e"), Expression: aws.String("SUM(METRICS())")}}})
			return err
		}, "InvalidParameterValue"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.call(), c.code) })
	}
}

func (tc *testCloud) alarm(t *testing.T, name string) cwtypes.MetricAlarm {
	t.Helper()
	out, err := tc.cw.DescribeAlarms(ctxT(t), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.MetricAlarms) != 1 {
		t.Fatalf("alarm %s: got %d alarms", name, len(out.MetricAlarms))
	}
	return out.MetricAlarms[0]
}

func (tc *testCloud) putAlarm(t *testing.T, name string, op cwtypes.ComparisonOperator, treat string) {
	t.Helper()
	in := &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(name), Namespace: aws.String("Shoal"), MetricName: aws.String("CPU"), Dimensions: webDims,
		Statistic: cwtypes.StatisticAverage, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(3), DatapointsToAlarm: aws.Int32(2),
		Threshold: aws.Float64(80), ComparisonOperator: op, AlarmActions: []string{"arn:aws:sns:us-east-1:123456789012:ops"}}
	if treat != "" {
		in.TreatMissingData = aws.String(treat)
	}
	if _, err := tc.cw.PutMetricAlarm(ctxT(t), in); err != nil {
		t.Fatal(err)
	}
}

func (tc *testCloud) putCPU(t *testing.T, at time.Time, v float64) {
	t.Helper()
	if _, err := tc.cw.PutMetricData(ctxT(t), &cloudwatch.PutMetricDataInput{Namespace: aws.String("Shoal"), MetricData: []cwtypes.MetricDatum{
		{MetricName: aws.String("CPU"), Dimensions: webDims, Timestamp: aws.Time(at), Value: aws.Float64(v)}}}); err != nil {
		t.Fatal(err)
	}
}

// alignClock moves the cloud's clock to 5 s past the next minute, so the
// evaluation windows a test computes cannot shift under it in real time.
func (tc *testCloud) alignClock(t *testing.T) {
	t.Helper()
	at := tc.now(t).Truncate(time.Minute).Add(time.Minute + 5*time.Second)
	tc.hook(t, http.MethodPost, "/_localcloud/clock?set="+at.UTC().Format(time.RFC3339Nano))
}

func TestAlarmTransitions(t *testing.T) {
	tc := startCloud(t, nil)
	tc.alignClock(t)
	tc.putAlarm(t, "high-cpu", cwtypes.ComparisonOperatorGreaterThanThreshold, "")
	tc.putAlarm(t, "high-cpu-strict", cwtypes.ComparisonOperatorGreaterThanThreshold, "breaching")
	tc.putAlarm(t, "high-cpu-lenient", cwtypes.ComparisonOperatorGreaterThanThreshold, "notBreaching")
	tc.putAlarm(t, "high-cpu-ignore", cwtypes.ComparisonOperatorGreaterThanThreshold, "ignore")

	a := tc.alarm(t, "high-cpu")
	if a.StateValue != cwtypes.StateValueInsufficientData || aws.ToString(a.StateReason) != "Unchecked: Initial alarm creation" {
		t.Fatalf("new alarm: %s %q", a.StateValue, aws.ToString(a.StateReason))
	}
	if aws.ToInt32(a.Period) != 60 || aws.ToInt32(a.DatapointsToAlarm) != 2 || aws.ToFloat64(a.Threshold) != 80 || a.AlarmActions[0] != "arn:aws:sns:us-east-1:123456789012:ops" {
		t.Fatalf("alarm definition not returned as stored: %+v", a)
	}

	// Breaching data: 2 of the last 3 complete minutes above 80.
	end := tc.now(t).Truncate(time.Minute)
	tc.putCPU(t, end.Add(-3*time.Minute+time.Second), 90)
	tc.putCPU(t, end.Add(-2*time.Minute+time.Second), 95)
	tc.putCPU(t, end.Add(-1*time.Minute+time.Second), 50)
	tc.hook(t, http.MethodPost, "/_localcloud/alarms/evaluate")
	a = tc.alarm(t, "high-cpu")
	if a.StateValue != cwtypes.StateValueAlarm {
		t.Fatalf("2 of 3 breaching: state %s (%s)", a.StateValue, aws.ToString(a.StateReason))
	}
	if r := aws.ToString(a.StateReason); !strings.HasPrefix(r, "Threshold Crossed: 2 out of the last 3 datapoints") || !strings.Contains(r, "greater than the threshold (80.0)") {
		t.Fatalf("state reason %q", r)
	}
	var rd map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(a.StateReasonData)), &rd); err != nil || rd["statistic"] != "Average" {
		t.Fatalf("state reason data %q: %v", aws.ToString(a.StateReasonData), err)
	}

	// Three minutes later nothing new arrived: missing data.
	tc.hook(t, http.MethodPost, "/_localcloud/clock?advance=3m")
	want := map[string]cwtypes.StateValue{
		"high-cpu":         cwtypes.StateValueInsufficientData,
		"high-cpu-strict":  cwtypes.StateValueAlarm,
		"high-cpu-lenient": cwtypes.StateValueOk,
		"high-cpu-ignore":  cwtypes.StateValueAlarm, // kept from the breaching evaluation
	}
	for name, st := range want {
		t.Run("missing/"+name, func(t *testing.T) {
			if got := tc.alarm(t, name); got.StateValue != st {
				t.Fatalf("%s = %s (%s), want %s", name, got.StateValue, aws.ToString(got.StateReason), st)
			}
		})
	}
	if r := aws.ToString(tc.alarm(t, "high-cpu").StateReason); r != "Insufficient Data: 3 datapoints were unknown." {
		t.Fatalf("insufficient data reason %q", r)
	}

	// Healthy data brings every alarm to OK.
	end = tc.now(t).Truncate(time.Minute)
	for i := 1; i <= 3; i++ {
		tc.putCPU(t, end.Add(-time.Duration(i)*time.Minute+time.Second), 20)
	}
	tc.hook(t, http.MethodPost, "/_localcloud/alarms/evaluate")
	for name := range want {
		if got := tc.alarm(t, name); got.StateValue != cwtypes.StateValueOk {
			t.Fatalf("%s after healthy data = %s (%s)", name, got.StateValue, aws.ToString(got.StateReason))
		}
	}

	hist, err := tc.cw.DescribeAlarmHistory(ctxT(t), &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String("high-cpu"), HistoryItemType: cwtypes.HistoryItemTypeStateUpdate})
	if err != nil {
		t.Fatal(err)
	}
	var summaries []string
	for _, h := range hist.AlarmHistoryItems {
		summaries = append(summaries, aws.ToString(h.HistorySummary))
	}
	wantHist := "Alarm updated from INSUFFICIENT_DATA to OK,Alarm updated from ALARM to INSUFFICIENT_DATA,Alarm updated from INSUFFICIENT_DATA to ALARM"
	if strings.Join(summaries, ",") != wantHist {
		t.Fatalf("history (newest first) = %v", summaries)
	}
}

func TestAlarmAPI(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	valid := func() *cloudwatch.PutMetricAlarmInput {
		return &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("a"), Namespace: aws.String("Shoal"), MetricName: aws.String("CPU"),
			Statistic: cwtypes.StatisticAverage, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(2), Threshold: aws.Float64(1),
			ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold}
	}
	bad := []struct {
		name string
		mut  func(*cloudwatch.PutMetricAlarmInput)
		code string
	}{
		{"period 45", func(in *cloudwatch.PutMetricAlarmInput) { in.Period = aws.Int32(45) }, "InvalidParameterValue"},
		{"period 90", func(in *cloudwatch.PutMetricAlarmInput) { in.Period = aws.Int32(90) }, "InvalidParameterValue"},
		{"datapoints above evaluation periods", func(in *cloudwatch.PutMetricAlarmInput) { in.DatapointsToAlarm = aws.Int32(3) }, "InvalidParameterValue"},
		{"longer than a day", func(in *cloudwatch.PutMetricAlarmInput) {
			in.Period, in.EvaluationPeriods = aws.Int32(3600), aws.Int32(25)
		}, "InvalidParameterValue"},
		{"unknown treat missing", func(in *cloudwatch.PutMetricAlarmInput) { in.TreatMissingData = aws.String("sometimes") }, "InvalidParameterValue"},
		{"no statistic", func(in *cloudwatch.PutMetricAlarmInput) { in.Statistic = "" }, "MissingParameter"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			in := valid()
			c.mut(in)
			_, err := tc.cw.PutMetricAlarm(ctx, in)
			wantCode(t, err, c.code)
		})
	}
	for _, p := range []int32{10, 20, 30, 60, 300} {
		in := valid()
		in.AlarmName, in.Period = aws.String(fmt.Sprintf("p%d", p)), aws.Int32(p)
		if _, err := tc.cw.PutMetricAlarm(ctx, in); err != nil {
			t.Fatalf("period %d rejected: %v", p, err)
		}
	}
	out, err := tc.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("p")})
	if err != nil || len(out.MetricAlarms) != 5 {
		t.Fatalf("DescribeAlarms prefix p = %d alarms, %v", len(out.MetricAlarms), err)
	}
	if _, err := tc.cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("p60"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("testing")}); err != nil {
		t.Fatal(err)
	}
	if a := tc.alarm(t, "p60"); a.StateValue != cwtypes.StateValueAlarm || aws.ToString(a.StateReason) != "testing" {
		t.Fatalf("after SetAlarmState: %s %q", a.StateValue, aws.ToString(a.StateReason))
	}
	out, err = tc.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{StateValue: cwtypes.StateValueAlarm})
	if err != nil || len(out.MetricAlarms) != 1 {
		t.Fatalf("DescribeAlarms StateValue=ALARM = %d alarms, %v", len(out.MetricAlarms), err)
	}
	_, err = tc.cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("nope"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("x")})
	wantCode(t, err, "ResourceNotFound")
	_, err = tc.cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"p10", "nope"}})
	wantCode(t, err, "ResourceNotFound")
	if _, err := tc.cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"p10", "p20"}}); err != nil {
		t.Fatal(err)
	}
	out, err = tc.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{})
	if err != nil || len(out.MetricAlarms) != 3 {
		t.Fatalf("after delete: %d alarms, %v", len(out.MetricAlarms), err)
	}
	page, err := tc.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{MaxRecords: aws.Int32(2)})
	if err != nil || len(page.MetricAlarms) != 2 || page.NextToken == nil {
		t.Fatalf("page 1: %d alarms, token %v, %v", len(page.MetricAlarms), page.NextToken, err)
	}
	page, err = tc.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{MaxRecords: aws.Int32(2), NextToken: page.NextToken})
	if err != nil || len(page.MetricAlarms) != 1 || page.NextToken != nil {
		t.Fatalf("page 2: %d alarms, %v", len(page.MetricAlarms), err)
	}
}

// TestLargePutMetricDataIsCompressed: the SDK gzips PutMetricData bodies
// of 10 KiB and more; the local cloud must accept them.
func TestLargePutMetricDataIsCompressed(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	at := tc.now(t).Add(-time.Minute)
	var data []cwtypes.MetricDatum
	for i := 0; i < 1000; i++ {
		data = append(data, cwtypes.MetricDatum{MetricName: aws.String("Load"), Timestamp: aws.Time(at), Value: aws.Float64(1), StorageResolution: aws.Int32(1),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("InstanceId"), Value: aws.String(fmt.Sprintf("i-%017d", i))}}})
	}
	if _, err := tc.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Shoal"), MetricData: data}); err != nil {
		t.Fatal(err)
	}
	lm, err := tc.cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("Shoal"), MetricName: aws.String("Load")})
	if err != nil || len(lm.Metrics) != 1000 {
		t.Fatalf("ListMetrics after a compressed put: %d metrics, %v", len(lm.Metrics), err)
	}
}

package publish

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// alarmStore is an in-memory CloudWatch alarm API for the reconciler's
// logic; the same reconciler runs against shoal-localcloud in
// localcloud_test.go.
type alarmStore struct {
	mu     sync.Mutex
	alarms map[string]types.MetricAlarm
	puts   int
}

func newAlarmStore(existing ...types.MetricAlarm) *alarmStore {
	s := &alarmStore{alarms: map[string]types.MetricAlarm{}}
	for _, a := range existing {
		s.alarms[sdkaws.ToString(a.AlarmName)] = a
	}
	return s
}

func (s *alarmStore) PutMetricData(context.Context, *cloudwatch.PutMetricDataInput, ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	return nil, fmt.Errorf("alarmStore: PutMetricData not expected")
}

func (s *alarmStore) GetMetricData(context.Context, *cloudwatch.GetMetricDataInput, ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	return nil, fmt.Errorf("alarmStore: GetMetricData not expected")
}

func (s *alarmStore) PutMetricAlarm(_ context.Context, in *cloudwatch.PutMetricAlarmInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricAlarmOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	s.alarms[sdkaws.ToString(in.AlarmName)] = types.MetricAlarm{
		AlarmName: in.AlarmName, AlarmDescription: in.AlarmDescription, Namespace: in.Namespace, MetricName: in.MetricName,
		Statistic: in.Statistic, Period: in.Period, EvaluationPeriods: in.EvaluationPeriods, DatapointsToAlarm: in.DatapointsToAlarm,
		Threshold: in.Threshold, ComparisonOperator: in.ComparisonOperator, TreatMissingData: in.TreatMissingData,
		AlarmActions: in.AlarmActions, Dimensions: in.Dimensions, StateValue: types.StateValueInsufficientData,
	}
	return &cloudwatch.PutMetricAlarmOutput{}, nil
}

// DescribeAlarms pages two alarms at a time so the reconciler's pagination
// is exercised.
func (s *alarmStore) DescribeAlarms(_ context.Context, in *cloudwatch.DescribeAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.alarms {
		if strings.HasPrefix(n, sdkaws.ToString(in.AlarmNamePrefix)) && n > sdkaws.ToString(in.NextToken) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := &cloudwatch.DescribeAlarmsOutput{}
	for i, n := range names {
		if i == 2 {
			out.NextToken = sdkaws.String(names[1])
			break
		}
		out.MetricAlarms = append(out.MetricAlarms, s.alarms[n])
	}
	return out, nil
}

func (s *alarmStore) DeleteAlarms(_ context.Context, in *cloudwatch.DeleteAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DeleteAlarmsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range in.AlarmNames {
		delete(s.alarms, n)
	}
	return &cloudwatch.DeleteAlarmsOutput{}, nil
}

func (s *alarmStore) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.alarms {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func cpuPolicy(target float64) *shoalv1.ScalingPolicy {
	return &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: target}}}
}

func f64(v float64) *float64 { return &v }

func TestDesiredAlarms(t *testing.T) {
	cfg := ReconcilerConfig{Cluster: "shoal", HeartbeatPeriod: 10 * time.Second, HeartbeatActions: []string{"arn:hb"}}
	steps := &shoalv1.ScalingPolicy{StepScaling: []*shoalv1.StepScaling{{Metric: "queue_depth", Steps: []*shoalv1.Step{
		{Upper: f64(10), AdjustmentType: shoalv1.AdjustmentType_ADJUSTMENT_TYPE_CHANGE_IN_CAPACITY, Adjustment: -1},
		{Lower: f64(10), Upper: f64(100), AdjustmentType: shoalv1.AdjustmentType_ADJUSTMENT_TYPE_CHANGE_IN_CAPACITY, Adjustment: 0},
		{Lower: f64(100), Upper: f64(500), AdjustmentType: shoalv1.AdjustmentType_ADJUSTMENT_TYPE_CHANGE_IN_CAPACITY, Adjustment: 1},
		{Lower: f64(500), AdjustmentType: shoalv1.AdjustmentType_ADJUSTMENT_TYPE_PERCENT_CHANGE, Adjustment: 50},
	}}}}
	tests := []struct {
		name   string
		fleets []FleetAlarms
		alarm  string
		want   string // "<cmp> <threshold> <stat> <metric> <period>/<eval>/<dta> <missing> <actions>" or "absent"
	}{
		{"heartbeat", nil, "shoal-coordinator-heartbeat", "LessThanThreshold 1 SampleCount CoordinatorHeartbeat 10/3/3 breaching [arn:hb]"},
		{"target high", []FleetAlarms{{Fleet: "web", Group: "web-asg", Policy: cpuPolicy(50), Actions: []string{"arn:a"}}}, "shoal-web-cpu-high", "GreaterThanThreshold 55 Average CPUUtilization 10/3/3 missing [arn:a]"},
		{"target low", []FleetAlarms{{Fleet: "web", Group: "web-asg", Policy: cpuPolicy(50)}}, "shoal-web-cpu-low", "LessThanThreshold 45 Average CPUUtilization 10/3/3 missing []"},
		{"custom tolerance", []FleetAlarms{{Fleet: "web", Group: "g", Policy: &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "requests_per_target", Target: 100, Tolerance: 0.2}}}}}, "shoal-web-requests_per_target-high", "GreaterThanThreshold 120 Average RequestsPerTarget 10/3/3 missing []"},
		{"step high is the lowest bound that adds", []FleetAlarms{{Fleet: "q", Group: "g", Policy: steps}}, "shoal-q-queue_depth-high", "GreaterThanOrEqualToThreshold 100 Average queue_depth 10/3/3 missing []"},
		{"step low is the highest bound that removes", []FleetAlarms{{Fleet: "q", Group: "g", Policy: steps}}, "shoal-q-queue_depth-low", "LessThanThreshold 10 Average queue_depth 10/3/3 missing []"},
		{"no policy, no fleet alarms", []FleetAlarms{{Fleet: "web", Group: "g"}}, "shoal-web-cpu-high", "absent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all, err := cfg.Desired(tt.fleets)
			if err != nil {
				t.Fatal(err)
			}
			got := "absent"
			for _, a := range all {
				if a.Name == tt.alarm {
					got = fmt.Sprintf("%s %g %s %s %d/%d/%d %s %v", a.Comparison, a.Threshold, a.Statistic, CloudWatchName(a.Metric), a.Period, a.EvaluationPeriods, a.DatapointsToAlarm, a.TreatMissingData, a.Actions)
				}
			}
			if tt.want == "absent" && got != "absent" || tt.want != "absent" && got != tt.want {
				t.Fatalf("%s:\n got %s\nwant %s", tt.alarm, got, tt.want)
			}
		})
	}
}

func TestDesiredAlarmsValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  ReconcilerConfig
		fl   []FleetAlarms
		want string
	}{
		{"empty cluster", ReconcilerConfig{HeartbeatPeriod: 10 * time.Second}, nil, "cluster: must not be empty"},
		{"bad period", ReconcilerConfig{Cluster: "c", HeartbeatPeriod: 20 * time.Second}, nil, "heartbeat period (20s) must be 10s, 30s or a multiple of 60s"},
		{"fleet without group", ReconcilerConfig{Cluster: "c", HeartbeatPeriod: 10 * time.Second}, []FleetAlarms{{Fleet: "web"}}, `fleet "web": fleet and group must not be empty`},
		{"fleet twice", ReconcilerConfig{Cluster: "c", HeartbeatPeriod: 10 * time.Second}, []FleetAlarms{{Fleet: "web", Group: "g"}, {Fleet: "web", Group: "g"}}, `fleet "web": listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.Desired(tt.fl)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func foreignAlarm(name, ns, cluster string) types.MetricAlarm {
	return types.MetricAlarm{AlarmName: sdkaws.String(name), Namespace: sdkaws.String(ns), MetricName: sdkaws.String("CPUUtilization"),
		Dimensions: []types.Dimension{{Name: sdkaws.String(DimCluster), Value: sdkaws.String(cluster)}}}
}

func TestReconcile(t *testing.T) {
	store := newAlarmStore(
		foreignAlarm("shoal-web-prod-cpu-high", Namespace, "shoal-web"), // cluster "shoal-web" shares our prefix
		foreignAlarm("shoal-billing", "AWS/Billing", "shoal"),           // not in namespace Shoal
		foreignAlarm("other-web-cpu-high", Namespace, "other"),
		foreignAlarm("shoal-old-cpu-high", Namespace, "shoal"), // ours, for a fleet that is gone
	)
	r, err := NewReconciler(store, ReconcilerConfig{Cluster: "shoal", HeartbeatPeriod: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		name        string
		fleets      []FleetAlarms
		wantCreated []string
		wantUpdated []string
		wantDeleted []string
	}{
		{"first reconcile creates and removes the gone fleet's alarm",
			[]FleetAlarms{{Fleet: "web", Group: "web-asg", Policy: cpuPolicy(50)}},
			[]string{"shoal-coordinator-heartbeat", "shoal-web-cpu-high", "shoal-web-cpu-low"}, nil, []string{"shoal-old-cpu-high"}},
		{"nothing changed, nothing done",
			[]FleetAlarms{{Fleet: "web", Group: "web-asg", Policy: cpuPolicy(50)}}, nil, nil, nil},
		{"new target updates both",
			[]FleetAlarms{{Fleet: "web", Group: "web-asg", Policy: cpuPolicy(60)}}, nil, []string{"shoal-web-cpu-high", "shoal-web-cpu-low"}, nil},
		{"new action updates both",
			[]FleetAlarms{{Fleet: "web", Group: "web-asg", Policy: cpuPolicy(60), Actions: []string{"arn:aws:sns:us-east-1:1:ops"}}}, nil, []string{"shoal-web-cpu-high", "shoal-web-cpu-low"}, nil},
		{"deleting the fleet deletes its alarms",
			nil, nil, nil, []string{"shoal-web-cpu-high", "shoal-web-cpu-low"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			ch, err := r.Reconcile(ctx, st.fleets)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"created", ch.Created, st.wantCreated}, {"updated", ch.Updated, st.wantUpdated}, {"deleted", ch.Deleted, st.wantDeleted}} {
				sort.Strings(c.got)
				if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
	want := "[other-web-cpu-high shoal-billing shoal-coordinator-heartbeat shoal-web-prod-cpu-high]"
	if got := fmt.Sprint(store.names()); got != want {
		t.Errorf("alarms left = %s, want %s", got, want)
	}
}

func TestListAssignsLongestFleet(t *testing.T) {
	store := newAlarmStore()
	r, _ := NewReconciler(store, ReconcilerConfig{Cluster: "shoal", HeartbeatPeriod: 10 * time.Second})
	ctx := context.Background()
	fleets := []FleetAlarms{{Fleet: "web", Group: "a", Policy: cpuPolicy(50)}, {Fleet: "web-api", Group: "b", Policy: cpuPolicy(50)}}
	if _, err := r.Reconcile(ctx, fleets); err != nil {
		t.Fatal(err)
	}
	got, err := r.List(ctx, []string{"web", "web-api"}, "web-api")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range got {
		names = append(names, a.Name+"@"+a.Fleet+"/"+a.Metric)
	}
	if fmt.Sprint(names) != "[shoal-web-api-cpu-high@web-api/cpu shoal-web-api-cpu-low@web-api/cpu]" {
		t.Errorf("List(web-api) = %v", names)
	}
	all, _ := r.List(ctx, []string{"web", "web-api"}, "")
	if len(all) != 5 || all[0].Name != "shoal-coordinator-heartbeat" || all[0].Fleet != "" || all[0].State != "INSUFFICIENT_DATA" {
		t.Errorf("List() = %+v", all)
	}
}

func TestHeartbeatPeriodFor(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want time.Duration
	}{
		{"1s", time.Second, 10 * time.Second},
		{"10s", 10 * time.Second, 10 * time.Second},
		{"15s", 15 * time.Second, 30 * time.Second},
		{"45s", 45 * time.Second, time.Minute},
		{"90s", 90 * time.Second, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HeartbeatPeriodFor(tt.in)
			if got != tt.want {
				t.Fatalf("HeartbeatPeriodFor(%v) = %v, want %v", tt.in, got, tt.want)
			}
			if err := (ReconcilerConfig{Cluster: "c", HeartbeatPeriod: got}).Validate(); err != nil {
				t.Fatalf("period %v does not validate: %v", got, err)
			}
		})
	}
}

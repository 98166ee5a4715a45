package publish

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Alarm shape the issue fixes for fleet alarms: 10 s periods, three of three.
const (
	AlarmPeriod            = 10 * time.Second
	AlarmEvaluationPeriods = 3
	AlarmDatapointsToAlarm = 3
	maxDeletePerCall       = 100
)

// FleetAlarms is what the reconciler needs to know about one fleet.
type FleetAlarms struct {
	Fleet   string
	Group   string
	Policy  *shoalv1.ScalingPolicy
	Actions []string
}

// AlarmSpec is one alarm as Shoal wants it.
type AlarmSpec struct {
	Name       string
	Fleet      string // empty for the cluster's heartbeat alarm
	Metric     string // Shoal metric name
	Comparison types.ComparisonOperator
	Threshold  float64
	// Statistic, Period, EvaluationPeriods, DatapointsToAlarm and
	// TreatMissingData are CloudWatch's.
	Statistic         types.Statistic
	Period            int32
	EvaluationPeriods int32
	DatapointsToAlarm int32
	TreatMissingData  string
	Dimensions        map[string]string
	Actions           []string
	Description       string
}

// AlarmName returns `<cluster>-<fleet>-<metric>-<side>`.
func AlarmName(cluster, fleet, metric, side string) string {
	return cluster + "-" + fleet + "-" + metric + "-" + side
}

// HeartbeatAlarmName returns `<cluster>-coordinator-heartbeat`.
func HeartbeatAlarmName(cluster string) string { return cluster + "-coordinator-heartbeat" }

// bound is one side of a metric's alarm.
type bound struct {
	threshold float64
	cmp       types.ComparisonOperator
}

// thresholds mirrors a policy's scaling thresholds per metric: target
// tracking alarms outside target ± tolerance (where decide starts to act);
// step scaling alarms at the lowest bound that adds capacity and the highest
// bound that removes it. The first entry for a metric wins, target tracking
// before steps, so one metric gets one pair of alarms.
func thresholds(p *shoalv1.ScalingPolicy) (metrics []string, high, low map[string]bound) {
	high, low = map[string]bound{}, map[string]bound{}
	seen := map[string]bool{}
	for _, t := range p.GetTargetTracking() {
		if seen[t.GetMetric()] {
			continue
		}
		seen[t.GetMetric()] = true
		metrics = append(metrics, t.GetMetric())
		tol := t.GetTolerance()
		if tol == 0 {
			tol = 0.1
		}
		high[t.GetMetric()] = bound{t.GetTarget() + t.GetTarget()*tol, types.ComparisonOperatorGreaterThanThreshold}
		low[t.GetMetric()] = bound{t.GetTarget() - t.GetTarget()*tol, types.ComparisonOperatorLessThanThreshold}
	}
	for _, s := range p.GetStepScaling() {
		m := s.GetMetric()
		if seen[m] {
			continue
		}
		seen[m] = true
		metrics = append(metrics, m)
		hi, lo := math.Inf(1), math.Inf(-1)
		for _, st := range s.GetSteps() {
			grows := st.GetAdjustment() > 0 && st.GetAdjustmentType() != shoalv1.AdjustmentType_ADJUSTMENT_TYPE_EXACT_CAPACITY
			shrinks := st.GetAdjustment() < 0 && st.GetAdjustmentType() != shoalv1.AdjustmentType_ADJUSTMENT_TYPE_EXACT_CAPACITY
			if grows && st.Lower != nil && st.GetLower() < hi {
				hi = st.GetLower()
			}
			if shrinks && st.Upper != nil && st.GetUpper() > lo {
				lo = st.GetUpper()
			}
		}
		if !math.IsInf(hi, 0) {
			high[m] = bound{hi, types.ComparisonOperatorGreaterThanOrEqualToThreshold}
		}
		if !math.IsInf(lo, 0) {
			low[m] = bound{lo, types.ComparisonOperatorLessThanThreshold}
		}
	}
	return metrics, high, low
}

// ReconcilerConfig configures a Reconciler.
type ReconcilerConfig struct {
	Cluster string
	// HeartbeatPeriod is the heartbeat alarm's period; it must cover the
	// publish interval (10 s, 30 s or a multiple of 60 s).
	HeartbeatPeriod time.Duration
	// HeartbeatActions are the dead-man's switch's alarm actions.
	HeartbeatActions []string
	// Logger gets RunAlarms' outcomes; nil is slog.Default().
	Logger *slog.Logger
}

// Validate reports the first wrong field and why.
func (c ReconcilerConfig) Validate() error {
	if c.Cluster == "" {
		return errors.New("cluster: must not be empty")
	}
	p := c.HeartbeatPeriod
	if p != 10*time.Second && p != 30*time.Second && (p < time.Minute || p%time.Minute != 0) {
		return fmt.Errorf("heartbeat period (%v) must be 10s, 30s or a multiple of 60s", p)
	}
	return nil
}

// HeartbeatPeriodFor is the shortest valid alarm period that covers a publish
// interval.
func HeartbeatPeriodFor(interval time.Duration) time.Duration {
	switch {
	case interval <= 10*time.Second:
		return 10 * time.Second
	case interval <= 30*time.Second:
		return 30 * time.Second
	}
	return (interval + time.Minute - 1).Truncate(time.Minute)
}

// Desired returns every alarm the cluster should have, sorted by name.
func (c ReconcilerConfig) Desired(fleets []FleetAlarms) ([]AlarmSpec, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	out := []AlarmSpec{{
		Name:              HeartbeatAlarmName(c.Cluster),
		Metric:            HeartbeatMetric,
		Comparison:        types.ComparisonOperatorLessThanThreshold,
		Threshold:         1,
		Statistic:         types.StatisticSampleCount,
		Period:            int32(c.HeartbeatPeriod / time.Second),
		EvaluationPeriods: AlarmEvaluationPeriods,
		DatapointsToAlarm: AlarmDatapointsToAlarm,
		TreatMissingData:  "breaching",
		Dimensions:        map[string]string{DimCluster: c.Cluster},
		Actions:           c.HeartbeatActions,
		Description:       fmt.Sprintf("Shoal cluster %s: dead-man's switch on the coordinator heartbeat. Managed by Shoal; edits are overwritten.", c.Cluster),
	}}
	seen := map[string]bool{}
	for _, f := range fleets {
		if f.Fleet == "" || f.Group == "" {
			return nil, fmt.Errorf("fleet %q: fleet and group must not be empty", f.Fleet)
		}
		if seen[f.Fleet] {
			return nil, fmt.Errorf("fleet %q: listed twice", f.Fleet)
		}
		seen[f.Fleet] = true
		metrics, high, low := thresholds(f.Policy)
		for _, m := range metrics {
			for _, side := range []struct {
				name string
				b    bound
				ok   bool
			}{{"high", high[m], hasKey(high, m)}, {"low", low[m], hasKey(low, m)}} {
				if !side.ok {
					continue
				}
				name := AlarmName(c.Cluster, f.Fleet, m, side.name)
				if len(name) > 255 {
					return nil, fmt.Errorf("fleet %q metric %q: alarm name %q is longer than 255 characters", f.Fleet, m, name)
				}
				out = append(out, AlarmSpec{
					Name:              name,
					Fleet:             f.Fleet,
					Metric:            m,
					Comparison:        side.b.cmp,
					Threshold:         side.b.threshold,
					Statistic:         types.StatisticAverage,
					Period:            int32(AlarmPeriod / time.Second),
					EvaluationPeriods: AlarmEvaluationPeriods,
					DatapointsToAlarm: AlarmDatapointsToAlarm,
					TreatMissingData:  "missing",
					Dimensions:        map[string]string{DimGroup: f.Group, DimCluster: c.Cluster},
					Actions:           f.Actions,
					Description:       fmt.Sprintf("Shoal cluster %s, fleet %s: %s %s its scaling threshold. Managed by Shoal; edits are overwritten.", c.Cluster, f.Fleet, m, map[string]string{"high": "above", "low": "below"}[side.name]),
				})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func hasKey(m map[string]bound, k string) bool { _, ok := m[k]; return ok }

// Reconciler keeps CloudWatch's alarms equal to the desired set.
type Reconciler struct {
	api API
	cfg ReconcilerConfig
	log *slog.Logger
}

// NewReconciler validates cfg and returns a Reconciler.
func NewReconciler(api API, cfg ReconcilerConfig) (*Reconciler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Reconciler{api: api, cfg: cfg, log: log}, nil
}

// Changes says what a reconcile did.
type Changes struct {
	Created, Updated, Deleted []string
}

// Reconcile creates, updates and deletes alarms so CloudWatch holds exactly
// the desired set for this cluster. A fleet that is gone from fleets has its
// alarms deleted; alarms that are not this cluster's are never touched.
func (r *Reconciler) Reconcile(ctx context.Context, fleets []FleetAlarms) (Changes, error) {
	desired, err := r.cfg.Desired(fleets)
	if err != nil {
		return Changes{}, err
	}
	have, err := r.managed(ctx)
	if err != nil {
		return Changes{}, err
	}
	var ch Changes
	want := map[string]bool{}
	for _, d := range desired {
		want[d.Name] = true
		cur, ok := have[d.Name]
		if ok && sameAlarm(d, cur) {
			continue
		}
		if _, err := r.api.PutMetricAlarm(ctx, putInput(d)); err != nil {
			return ch, fmt.Errorf("put alarm %s: %w", d.Name, awscloud.Translate(OpPutMetricAlarm, err))
		}
		if ok {
			ch.Updated = append(ch.Updated, d.Name)
		} else {
			ch.Created = append(ch.Created, d.Name)
		}
	}
	var stale []string
	for name := range have {
		if !want[name] {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	for start := 0; start < len(stale); start += maxDeletePerCall {
		batch := stale[start:min(start+maxDeletePerCall, len(stale))]
		if _, err := r.api.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: batch}); err != nil {
			return ch, fmt.Errorf("delete alarms %v: %w", batch, awscloud.Translate(OpDeleteAlarms, err))
		}
		ch.Deleted = append(ch.Deleted, batch...)
	}
	return ch, nil
}

// managed lists this cluster's alarms: named `<cluster>-`, on namespace
// Shoal, with ShoalCluster=<cluster>. The dimension check matters because a
// cluster named "shoal" shares its name prefix with one named "shoal-web".
func (r *Reconciler) managed(ctx context.Context) (map[string]types.MetricAlarm, error) {
	out := map[string]types.MetricAlarm{}
	p := cloudwatch.NewDescribeAlarmsPaginator(r.api, &cloudwatch.DescribeAlarmsInput{
		AlarmNamePrefix: sdkaws.String(r.cfg.Cluster + "-"),
		AlarmTypes:      []types.AlarmType{types.AlarmTypeMetricAlarm},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe alarms: %w", awscloud.Translate(OpDescribeAlarms, err))
		}
		for _, a := range page.MetricAlarms {
			if sdkaws.ToString(a.Namespace) != Namespace || dimMap(a.Dimensions)[DimCluster] != r.cfg.Cluster {
				continue
			}
			out[sdkaws.ToString(a.AlarmName)] = a
		}
	}
	return out, nil
}

func dimMap(ds []types.Dimension) map[string]string {
	m := make(map[string]string, len(ds))
	for _, d := range ds {
		m[sdkaws.ToString(d.Name)] = sdkaws.ToString(d.Value)
	}
	return m
}

func putInput(d AlarmSpec) *cloudwatch.PutMetricAlarmInput {
	in := &cloudwatch.PutMetricAlarmInput{
		AlarmName:          sdkaws.String(d.Name),
		AlarmDescription:   sdkaws.String(d.Description),
		Namespace:          sdkaws.String(Namespace),
		MetricName:         sdkaws.String(CloudWatchName(d.Metric)),
		Statistic:          d.Statistic,
		Period:             sdkaws.Int32(d.Period),
		EvaluationPeriods:  sdkaws.Int32(d.EvaluationPeriods),
		DatapointsToAlarm:  sdkaws.Int32(d.DatapointsToAlarm),
		Threshold:          sdkaws.Float64(d.Threshold),
		ComparisonOperator: d.Comparison,
		TreatMissingData:   sdkaws.String(d.TreatMissingData),
		ActionsEnabled:     sdkaws.Bool(true),
		AlarmActions:       d.Actions,
	}
	for _, k := range sortedKeys(d.Dimensions) {
		in.Dimensions = append(in.Dimensions, types.Dimension{Name: sdkaws.String(k), Value: sdkaws.String(d.Dimensions[k])})
	}
	return in
}

// sameAlarm reports whether CloudWatch's alarm already matches the spec.
func sameAlarm(d AlarmSpec, a types.MetricAlarm) bool {
	actions := append([]string(nil), a.AlarmActions...)
	want := append([]string(nil), d.Actions...)
	sort.Strings(actions)
	sort.Strings(want)
	if len(actions) == 0 && len(want) == 0 {
		actions, want = nil, nil
	}
	return sdkaws.ToString(a.MetricName) == CloudWatchName(d.Metric) &&
		sdkaws.ToString(a.Namespace) == Namespace &&
		a.Statistic == d.Statistic &&
		sdkaws.ToInt32(a.Period) == d.Period &&
		sdkaws.ToInt32(a.EvaluationPeriods) == d.EvaluationPeriods &&
		sdkaws.ToInt32(a.DatapointsToAlarm) == d.DatapointsToAlarm &&
		sdkaws.ToFloat64(a.Threshold) == d.Threshold &&
		a.ComparisonOperator == d.Comparison &&
		sdkaws.ToString(a.TreatMissingData) == d.TreatMissingData &&
		sdkaws.ToString(a.AlarmDescription) == d.Description &&
		reflect.DeepEqual(dimMap(a.Dimensions), d.Dimensions) &&
		reflect.DeepEqual(actions, want)
}

// AlarmStatus is one alarm as CloudWatch reports it; view.Alarm is its JSON.
type AlarmStatus struct {
	Name       string
	Fleet      string
	Metric     string
	State      string
	Reason     string
	Updated    time.Time
	Threshold  float64
	Comparison string
}

// Proto returns the status as ControlService's ListAlarms carries it.
func (s AlarmStatus) Proto() *shoalv1.Alarm {
	a := &shoalv1.Alarm{
		Name: s.Name, Fleet: s.Fleet, Metric: s.Metric, State: cwAlarmStates[s.State], Reason: s.Reason,
		Threshold: s.Threshold, Comparison: comparisons[s.Comparison],
	}
	if !s.Updated.IsZero() {
		a.StateUpdateTime = timestamppb.New(s.Updated)
	}
	return a
}

// cwAlarmStates and comparisons map CloudWatch's words to the wire enums; a
// word CloudWatch adds later maps to UNSPECIFIED.
var (
	cwAlarmStates = map[string]shoalv1.AlarmState{
		string(types.StateValueOk):               shoalv1.AlarmState_ALARM_STATE_OK,
		string(types.StateValueAlarm):            shoalv1.AlarmState_ALARM_STATE_ALARM,
		string(types.StateValueInsufficientData): shoalv1.AlarmState_ALARM_STATE_INSUFFICIENT_DATA,
	}
	comparisons = map[string]shoalv1.Comparison{
		string(types.ComparisonOperatorGreaterThanOrEqualToThreshold): shoalv1.Comparison_COMPARISON_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		string(types.ComparisonOperatorGreaterThanThreshold):          shoalv1.Comparison_COMPARISON_GREATER_THAN_THRESHOLD,
		string(types.ComparisonOperatorLessThanThreshold):             shoalv1.Comparison_COMPARISON_LESS_THAN_THRESHOLD,
		string(types.ComparisonOperatorLessThanOrEqualToThreshold):    shoalv1.Comparison_COMPARISON_LESS_THAN_OR_EQUAL_TO_THRESHOLD,
	}
)

// List returns this cluster's alarms, sorted by name; with fleet set, only
// that fleet's. fleets are the known fleet names: an alarm's fleet is the
// longest one its name starts with, so "web" and "web-api" do not mix.
func (r *Reconciler) List(ctx context.Context, fleets []string, fleet string) ([]AlarmStatus, error) {
	have, err := r.managed(ctx)
	if err != nil {
		return nil, err
	}
	var out []AlarmStatus
	for name, a := range have {
		st := AlarmStatus{
			Name:   name,
			Metric: ShoalName(sdkaws.ToString(a.MetricName)),
			State:  string(a.StateValue),
			Reason: sdkaws.ToString(a.StateReason),
			// The last state change is StateTransitionedTimestamp;
			// StateUpdatedTimestamp also moves when only the reason does.
			Updated:    sdkaws.ToTime(a.StateTransitionedTimestamp),
			Threshold:  sdkaws.ToFloat64(a.Threshold),
			Comparison: string(a.ComparisonOperator),
		}
		if st.Updated.IsZero() {
			st.Updated = sdkaws.ToTime(a.StateUpdatedTimestamp)
		}
		if name != HeartbeatAlarmName(r.cfg.Cluster) {
			for _, f := range fleets {
				if strings.HasPrefix(name, r.cfg.Cluster+"-"+f+"-") && len(f) > len(st.Fleet) {
					st.Fleet = f
				}
			}
		}
		if fleet != "" && st.Fleet != fleet {
			continue
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

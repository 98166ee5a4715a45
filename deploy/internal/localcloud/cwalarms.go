package localcloud

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cwstore"
)

// CloudWatch alarm operations (PutMetricAlarm, DescribeAlarms, DeleteAlarms,
// SetAlarmState, DescribeAlarmHistory); the metric operations are in cwapi.go.

func (s *Server) putMetricAlarm(in *putMetricAlarmInput) (*noOutput, error) {
	c := s.cloud
	if len(in.Metrics) > 0 {
		return nil, fmt.Errorf("%w: Metrics: metric math alarms are not supported by the local cloud", cwstore.ErrInvalidParameter)
	}
	a := cwstore.Alarm{
		Name: in.AlarmName, Description: in.AlarmDescription, ActionsEnabled: true,
		OKActions: in.OKActions, AlarmActions: in.AlarmActions, InsufficientActs: in.InsufficientDataActions,
		Metric:    cwstore.MetricID{Namespace: in.Namespace, MetricName: in.MetricName, Dimensions: dimensions(in.Dimensions)},
		Statistic: in.Statistic, ExtendedStatistic: in.ExtendedStatistic, Unit: in.Unit,
		ComparisonOperator: in.ComparisonOperator, TreatMissingData: in.TreatMissingData,
	}
	if in.ActionsEnabled != nil {
		a.ActionsEnabled = *in.ActionsEnabled
	}
	switch {
	case in.Period == nil:
		return nil, fmt.Errorf("%w: Period is required", cwstore.ErrMissingParameter)
	case in.EvaluationPeriods == nil:
		return nil, fmt.Errorf("%w: EvaluationPeriods is required", cwstore.ErrMissingParameter)
	case in.Threshold == nil:
		return nil, fmt.Errorf("%w: Threshold is required", cwstore.ErrMissingParameter)
	}
	a.Period, a.EvaluationPeriods, a.Threshold = *in.Period, *in.EvaluationPeriods, *in.Threshold
	if in.DatapointsToAlarm != nil {
		a.DatapointsToAlarm = *in.DatapointsToAlarm
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.alarms[a.Name] == nil && len(c.alarms) >= 5000 {
		return nil, apiErr(http.StatusBadRequest, "LimitExceeded", "The maximum of 5000 alarms has been reached")
	}
	na := cwstore.NewAlarm(a, c.alarms[a.Name], c.clock.Now())
	c.alarms[a.Name] = &na
	c.dirty = true
	return nil, nil
}

func (s *Server) alarmArn(name string) string {
	return "arn:aws:cloudwatch:" + s.cloud.cfg.Region + ":" + s.cloud.cfg.AccountID + ":alarm:" + name
}

func (s *Server) describeAlarms(in *describeAlarmsInput) (*describeAlarmsOutput, error) {
	c := s.cloud
	if in.AlarmNamePrefix != "" && len(in.AlarmNames) > 0 {
		return nil, fmt.Errorf("%w: AlarmNames and AlarmNamePrefix are mutually exclusive", cwstore.ErrInvalidCombination)
	}
	out := &describeAlarmsOutput{MetricAlarms: []cwMetricAlarm{}, CompositeAlarms: []cwMetricAlarm{}}
	if len(in.AlarmTypes) > 0 && !contains(in.AlarmTypes, "MetricAlarm") {
		return out, nil
	}
	max := in.MaxRecords
	if max <= 0 || max > 100 {
		max = 100
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.alarms.Sorted() {
		if len(in.AlarmNames) > 0 && !contains(in.AlarmNames, a.Name) {
			continue
		}
		if in.AlarmNamePrefix != "" && !strings.HasPrefix(a.Name, in.AlarmNamePrefix) {
			continue
		}
		if in.StateValue != "" && a.State != in.StateValue {
			continue
		}
		if in.NextToken != "" && a.Name <= in.NextToken {
			continue
		}
		if len(out.MetricAlarms) == max {
			out.NextToken = out.MetricAlarms[len(out.MetricAlarms)-1].AlarmName
			break
		}
		out.MetricAlarms = append(out.MetricAlarms, s.metricAlarm(a))
	}
	return out, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) metricAlarm(a *cwstore.Alarm) cwMetricAlarm {
	return cwMetricAlarm{
		AlarmName: a.Name, AlarmArn: s.alarmArn(a.Name), AlarmDescription: a.Description,
		AlarmConfigurationUpdatedTimestamp: a.ConfigUpdated, ActionsEnabled: a.ActionsEnabled,
		OKActions: orEmpty(a.OKActions), AlarmActions: orEmpty(a.AlarmActions), InsufficientDataActions: orEmpty(a.InsufficientActs),
		StateValue: a.State, StateReason: a.StateReason, StateReasonData: a.StateReasonData,
		StateUpdatedTimestamp: a.StateUpdated, StateTransitionedTimestamp: a.StateTransitioned,
		MetricName: a.Metric.MetricName, Namespace: a.Metric.Namespace, Dimensions: fromDimensions(a.Metric.Dimensions),
		Statistic: a.Statistic, ExtendedStatistic: a.ExtendedStatistic, Unit: a.Unit,
		Period: a.Period, EvaluationPeriods: a.EvaluationPeriods, DatapointsToAlarm: a.DatapointsToAlarm,
		Threshold: a.Threshold, ComparisonOperator: a.ComparisonOperator, TreatMissingData: a.TreatMissingData,
	}
}

func (s *Server) deleteAlarms(in *deleteAlarmsInput) (*noOutput, error) {
	c := s.cloud
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range in.AlarmNames {
		if c.alarms[n] == nil {
			return nil, fmt.Errorf("%w: alarm %s does not exist", cwstore.ErrResourceNotFound, n)
		}
	}
	for _, n := range in.AlarmNames {
		delete(c.alarms, n)
	}
	c.dirty = true
	return nil, nil
}

func (s *Server) setAlarmState(in *setAlarmStateInput) (*noOutput, error) {
	c := s.cloud
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.alarms[in.AlarmName]
	if a == nil {
		return nil, fmt.Errorf("%w: alarm %s does not exist", cwstore.ErrResourceNotFound, in.AlarmName)
	}
	c.dirty = true
	return nil, a.SetState(c.clock.Now(), in.StateValue, in.StateReason, in.StateReasonData)
}

func (s *Server) describeAlarmHistory(in *describeAlarmHistoryInput) (*describeAlarmHistoryOutput, error) {
	c := s.cloud
	max := in.MaxRecords
	if max <= 0 || max > 100 {
		max = 100
	}
	ascending := in.ScanBy == "TimestampAscending"
	c.mu.Lock()
	defer c.mu.Unlock()
	var items []cwAlarmHistoryItem
	for _, a := range c.alarms.Sorted() {
		if in.AlarmName != "" && a.Name != in.AlarmName {
			continue
		}
		for _, h := range a.History {
			if in.HistoryItemType != "" && h.Type != in.HistoryItemType {
				continue
			}
			if (in.StartDate != nil && h.Timestamp.Before(*in.StartDate)) || (in.EndDate != nil && h.Timestamp.After(*in.EndDate)) {
				continue
			}
			items = append(items, cwAlarmHistoryItem{AlarmName: a.Name, AlarmType: "MetricAlarm", Timestamp: h.Timestamp, HistoryItemType: h.Type, HistorySummary: h.Summary, HistoryData: h.Data})
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		if ascending {
			return items[i].Timestamp.Before(items[j].Timestamp)
		}
		return items[i].Timestamp.After(items[j].Timestamp)
	})
	if len(items) > max {
		items = items[:max]
	}
	if items == nil {
		items = []cwAlarmHistoryItem{}
	}
	return &describeAlarmHistoryOutput{AlarmHistoryItems: items}, nil
}

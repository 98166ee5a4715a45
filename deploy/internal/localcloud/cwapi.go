package localcloud

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cwstore"
)

// CloudWatch's operations, written once for all three protocols: each takes
// its input struct (filled by cwcodec.go's decoder from CBOR, JSON or
// awsQuery) and returns its output struct. Field names are the Smithy member
// names; see cwcodec.go for the tags.

type cwDimension struct {
	Name  string `cw:"required"`
	Value string `cw:"required"`
}

type cwDimensionFilter struct {
	Name  string `cw:"required"`
	Value string `cw:"omitempty"`
}

type cwStatisticSet struct {
	SampleCount float64 `cw:"required"`
	Sum         float64 `cw:"required"`
	Minimum     float64 `cw:"required"`
	Maximum     float64 `cw:"required"`
}

type cwMetricDatum struct {
	MetricName        string        `cw:"required"`
	Dimensions        []cwDimension `cw:"max=30"`
	Timestamp         *time.Time
	Value             *float64
	StatisticValues   *cwStatisticSet
	Values            []float64 `cw:"max=150"`
	Counts            []float64 `cw:"max=150"`
	Unit              string
	StorageResolution *int
}

type putMetricDataInput struct {
	Namespace  string          `cw:"required"`
	MetricData []cwMetricDatum `cw:"required,max=1000"`
}

type cwMetric struct {
	Namespace  string
	MetricName string
	Dimensions []cwDimension `cw:"max=30"`
}

type listMetricsInput struct {
	Namespace      string
	MetricName     string
	Dimensions     []cwDimensionFilter `cw:"max=10"`
	NextToken      string
	RecentlyActive string
}

type listMetricsOutput struct {
	Metrics []cwMetric
}

type getMetricStatisticsInput struct {
	Namespace          string        `cw:"required"`
	MetricName         string        `cw:"required"`
	Dimensions         []cwDimension `cw:"max=30"`
	StartTime          time.Time     `cw:"required"`
	EndTime            time.Time     `cw:"required"`
	Period             int           `cw:"required"`
	Statistics         []string      `cw:"max=5"`
	ExtendedStatistics []string      `cw:"max=10"`
	Unit               string
}

type cwDatapoint struct {
	Timestamp          time.Time
	SampleCount        *float64
	Average            *float64
	Sum                *float64
	Minimum            *float64
	Maximum            *float64
	Unit               string
	ExtendedStatistics map[string]float64
}

type getMetricStatisticsOutput struct {
	Label      string
	Datapoints []cwDatapoint
}

type cwMetricStat struct {
	Metric cwMetric `cw:"required"`
	Period int      `cw:"required"`
	Stat   string   `cw:"required"`
	Unit   string
}

type cwMetricDataQuery struct {
	Id         string `cw:"required"`
	MetricStat *cwMetricStat
	Expression string
	Label      string
	ReturnData *bool
	Period     *int
	AccountId  string
}

type getMetricDataInput struct {
	MetricDataQueries []cwMetricDataQuery `cw:"required,max=500"`
	StartTime         time.Time           `cw:"required"`
	EndTime           time.Time           `cw:"required"`
	NextToken         string
	ScanBy            string
	MaxDatapoints     *int
}

type cwMessageData struct {
	Code  string
	Value string
}

type cwMetricDataResult struct {
	Id         string
	Label      string
	Timestamps []time.Time
	Values     []float64
	StatusCode string
}

type getMetricDataOutput struct {
	MetricDataResults []cwMetricDataResult
	Messages          []cwMessageData
}

type putMetricAlarmInput struct {
	AlarmName               string `cw:"required"`
	AlarmDescription        string
	ActionsEnabled          *bool
	OKActions               []string `cw:"max=5"`
	AlarmActions            []string `cw:"max=5"`
	InsufficientDataActions []string `cw:"max=5"`
	MetricName              string
	Namespace               string
	Statistic               string
	ExtendedStatistic       string
	Dimensions              []cwDimension `cw:"max=30"`
	Period                  *int
	Unit                    string
	EvaluationPeriods       *int
	DatapointsToAlarm       *int
	Threshold               *float64
	ComparisonOperator      string
	TreatMissingData        string
	Metrics                 []cwMetricDataQuery `cw:"max=20"`
}

type describeAlarmsInput struct {
	AlarmNames      []string `cw:"max=100"`
	AlarmNamePrefix string
	AlarmTypes      []string `cw:"max=2"`
	StateValue      string
	ActionPrefix    string
	MaxRecords      int
	NextToken       string
}

type cwMetricAlarm struct {
	AlarmName                          string
	AlarmArn                           string
	AlarmDescription                   string `cw:"omitempty"`
	AlarmConfigurationUpdatedTimestamp time.Time
	ActionsEnabled                     bool
	OKActions                          []string
	AlarmActions                       []string
	InsufficientDataActions            []string
	StateValue                         string
	StateReason                        string
	StateReasonData                    string `cw:"omitempty"`
	StateUpdatedTimestamp              time.Time
	MetricName                         string
	Namespace                          string
	Statistic                          string `cw:"omitempty"`
	ExtendedStatistic                  string `cw:"omitempty"`
	Dimensions                         []cwDimension
	Period                             int
	Unit                               string `cw:"omitempty"`
	EvaluationPeriods                  int
	DatapointsToAlarm                  int `cw:"omitempty"`
	Threshold                          float64
	ComparisonOperator                 string
	TreatMissingData                   string `cw:"omitempty"`
	StateTransitionedTimestamp         time.Time
}

type describeAlarmsOutput struct {
	// CompositeAlarms is always empty: composite alarms are not modelled.
	CompositeAlarms []cwMetricAlarm
	MetricAlarms    []cwMetricAlarm
	NextToken       string `cw:"omitempty"`
}

type deleteAlarmsInput struct {
	AlarmNames []string `cw:"required,max=100"`
}

type setAlarmStateInput struct {
	AlarmName       string `cw:"required"`
	StateValue      string `cw:"required"`
	StateReason     string `cw:"required"`
	StateReasonData string
}

type describeAlarmHistoryInput struct {
	AlarmName       string
	AlarmTypes      []string `cw:"max=2"`
	HistoryItemType string
	StartDate       *time.Time
	EndDate         *time.Time
	MaxRecords      int
	NextToken       string
	ScanBy          string
}

type cwAlarmHistoryItem struct {
	AlarmName       string
	AlarmType       string
	Timestamp       time.Time
	HistoryItemType string
	HistorySummary  string
	HistoryData     string
}

type describeAlarmHistoryOutput struct {
	AlarmHistoryItems []cwAlarmHistoryItem
}

// cwOp is one operation: a fresh input struct, and the handler that takes
// it and returns the output struct (nil for operations without output).
type cwOp struct {
	newInput func() any
	call     func(s *Server, in any) (any, error)
}

func op[I, O any](f func(*Server, *I) (*O, error)) cwOp {
	return cwOp{
		newInput: func() any { return new(I) },
		call: func(s *Server, in any) (any, error) {
			out, err := f(s, in.(*I))
			if out == nil {
				return nil, err
			}
			return out, err
		},
	}
}

// noOutput is the output of operations that return nothing.
type noOutput struct{}

var cwOps = map[string]cwOp{
	"PutMetricData":        op((*Server).putMetricData),
	"ListMetrics":          op((*Server).listMetrics),
	"GetMetricStatistics":  op((*Server).getMetricStatistics),
	"GetMetricData":        op((*Server).getMetricData),
	"PutMetricAlarm":       op((*Server).putMetricAlarm),
	"DescribeAlarms":       op((*Server).describeAlarms),
	"DeleteAlarms":         op((*Server).deleteAlarms),
	"SetAlarmState":        op((*Server).setAlarmState),
	"DescribeAlarmHistory": op((*Server).describeAlarmHistory),
}

// cwProtocol is how one wire protocol reads inputs and writes answers.
type cwProtocol interface {
	name() string
	decoder() inputDecoder
	writeOutput(w http.ResponseWriter, op string, out any)
	writeError(w http.ResponseWriter, e *APIError)
}

// maxCloudWatchBody is CloudWatch's request size limit (1 MB for
// PutMetricData over HTTP POST); it applies after gzip decompression too.
const maxCloudWatchBody = 1 << 20

// readCloudWatchBody reads a bounded, possibly gzipped body: the SDKs gzip
// PutMetricData bodies of 10 KiB and more (@requestCompression).
func readCloudWatchBody(r *http.Request) ([]byte, *APIError) {
	return readBody(r, maxCloudWatchBody)
}

// cwError maps store errors to CloudWatch's awsQuery error codes; each
// protocol writes them in its own shape.
func cwError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	msg := err.Error()
	for _, s := range []error{cwstore.ErrInvalidParameter, cwstore.ErrInvalidCombination, cwstore.ErrMissingParameter, cwstore.ErrResourceNotFound, cwstore.ErrLimitExceeded} {
		msg = strings.TrimPrefix(msg, s.Error()+": ")
	}
	switch {
	case errors.Is(err, cwstore.ErrInvalidCombination):
		return apiErr(http.StatusBadRequest, "InvalidParameterCombination", "%s", msg)
	case errors.Is(err, cwstore.ErrMissingParameter):
		return apiErr(http.StatusBadRequest, "MissingParameter", "%s", msg)
	case errors.Is(err, cwstore.ErrResourceNotFound):
		return apiErr(http.StatusNotFound, "ResourceNotFound", "%s", msg)
	case errors.Is(err, cwstore.ErrLimitExceeded):
		return apiErr(http.StatusBadRequest, "LimitExceeded", "%s", msg)
	case errors.Is(err, cwstore.ErrInvalidParameter):
		return apiErr(http.StatusBadRequest, "InvalidParameterValue", "%s", msg)
	}
	return apiErr(http.StatusInternalServerError, "InternalServiceError", "%s", msg)
}

// cwShapes names the Smithy error shapes behind the awsQuery codes, for
// the __type of the JSON and CBOR protocols.
var cwShapes = map[string]string{
	"InvalidParameterValue":       "InvalidParameterValueException",
	"InvalidParameterCombination": "InvalidParameterCombinationException",
	"MissingParameter":            "MissingRequiredParameterException",
	"ResourceNotFound":            "ResourceNotFound",
	"InternalServiceError":        "InternalServiceFault",
	"LimitExceeded":               "LimitExceededFault",
	"InvalidAction":               "UnknownOperationException",
}

// errorType is the __type of e in the JSON and CBOR protocols.
func errorType(e *APIError) string {
	shape := e.Code
	if s, ok := cwShapes[e.Code]; ok {
		shape = s
	}
	return "com.amazonaws.cloudwatch#" + shape
}

// faultOf is the awsQuery error Type: Sender, or Receiver for 5xx.
func faultOf(e *APIError) string {
	if e.Status >= 500 {
		return "Receiver"
	}
	return "Sender"
}

func dimensions(ds []cwDimension) []cwstore.Dimension {
	out := make([]cwstore.Dimension, 0, len(ds))
	for _, d := range ds {
		out = append(out, cwstore.Dimension{Name: d.Name, Value: d.Value})
	}
	return out
}

func fromDimensions(ds []cwstore.Dimension) []cwDimension {
	out := make([]cwDimension, 0, len(ds))
	for _, d := range ds {
		out = append(out, cwDimension{Name: d.Name, Value: d.Value})
	}
	return out
}

func (s *Server) putMetricData(in *putMetricDataInput) (*noOutput, error) {
	data, err := decodeMetricData(in)
	if err != nil {
		return nil, err
	}
	c := s.cloud
	c.mu.Lock()
	defer c.mu.Unlock()
	return nil, c.metrics.Put(c.clock.Now(), data)
}

func decodeMetricData(in *putMetricDataInput) ([]cwstore.Datum, error) {
	out := make([]cwstore.Datum, 0, len(in.MetricData))
	for _, m := range in.MetricData {
		d := cwstore.Datum{Metric: cwstore.MetricID{Namespace: in.Namespace, MetricName: m.MetricName, Dimensions: dimensions(m.Dimensions)}, Unit: m.Unit, Values: m.Values, Counts: m.Counts}
		if m.Timestamp != nil {
			d.Timestamp = *m.Timestamp
		}
		if m.StorageResolution != nil {
			d.StorageResolution = *m.StorageResolution
		}
		if st := m.StatisticValues; st != nil {
			d.Stats = &cwstore.StatisticSet{SampleCount: st.SampleCount, Sum: st.Sum, Minimum: st.Minimum, Maximum: st.Maximum}
		}
		if m.Value != nil {
			if d.Stats != nil || len(d.Values) > 0 {
				return nil, fmt.Errorf("%w: Value, Values and StatisticValues are mutually exclusive", cwstore.ErrInvalidCombination)
			}
			d.Values = []float64{*m.Value}
		}
		out = append(out, d)
	}
	return out, nil
}

func (s *Server) listMetrics(in *listMetricsInput) (*listMetricsOutput, error) {
	filter := make([]cwstore.Dimension, 0, len(in.Dimensions))
	for _, d := range in.Dimensions {
		filter = append(filter, cwstore.Dimension{Name: d.Name, Value: d.Value})
	}
	c := s.cloud
	c.mu.Lock()
	ids := c.metrics.List(in.Namespace, in.MetricName, filter)
	c.mu.Unlock()
	out := &listMetricsOutput{Metrics: []cwMetric{}}
	for _, id := range ids {
		out.Metrics = append(out.Metrics, cwMetric{Namespace: id.Namespace, MetricName: id.MetricName, Dimensions: fromDimensions(id.Dimensions)})
	}
	return out, nil
}

func (s *Server) getMetricStatistics(in *getMetricStatisticsInput) (*getMetricStatisticsOutput, error) {
	c := s.cloud
	if err := cwstore.ValidateQueryPeriod(in.Period); err != nil {
		return nil, err
	}
	stats, ext := in.Statistics, in.ExtendedStatistics
	if len(stats)+len(ext) == 0 {
		return nil, fmt.Errorf("%w: at least one of Statistics or ExtendedStatistics is required", cwstore.ErrMissingParameter)
	}
	for _, st := range stats {
		if !cwstore.ValidStatistic(st) || strings.HasPrefix(st, "p") {
			return nil, fmt.Errorf("%w: Statistics %q must be one of SampleCount, Average, Sum, Minimum, Maximum", cwstore.ErrInvalidParameter, st)
		}
	}
	for _, st := range ext {
		if _, ok := cwstore.ParsePercentile(st); !ok {
			return nil, fmt.Errorf("%w: ExtendedStatistics %q must be a percentile such as p99", cwstore.ErrInvalidParameter, st)
		}
	}
	id := cwstore.MetricID{Namespace: in.Namespace, MetricName: in.MetricName, Dimensions: dimensions(in.Dimensions)}
	c.mu.Lock()
	aggs, err := c.metrics.Query(id, in.StartTime, in.EndTime, time.Duration(in.Period)*time.Second, in.Unit, cwstore.MaxStatisticsDatapoints)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := &getMetricStatisticsOutput{Label: id.MetricName, Datapoints: []cwDatapoint{}}
	for _, a := range aggs {
		dp := cwDatapoint{Timestamp: a.Start, Unit: a.Unit}
		if dp.Unit == "" {
			dp.Unit = "None"
		}
		for _, st := range stats {
			v, ok := a.Statistic(st)
			if !ok {
				continue
			}
			switch st {
			case "SampleCount":
				dp.SampleCount = &v
			case "Average":
				dp.Average = &v
			case "Sum":
				dp.Sum = &v
			case "Minimum":
				dp.Minimum = &v
			case "Maximum":
				dp.Maximum = &v
			}
		}
		if len(ext) > 0 {
			dp.ExtendedStatistics = map[string]float64{}
			for _, st := range ext {
				if v, ok := a.Statistic(st); ok {
					dp.ExtendedStatistics[st] = v
				}
			}
		}
		out.Datapoints = append(out.Datapoints, dp)
	}
	return out, nil
}

func (s *Server) getMetricData(in *getMetricDataInput) (*getMetricDataOutput, error) {
	c := s.cloud
	start, end := in.StartTime, in.EndTime
	ascending := in.ScanBy == "TimestampAscending"
	out := &getMetricDataOutput{MetricDataResults: []cwMetricDataResult{}, Messages: []cwMessageData{}}
	seen := map[string]bool{}
	budget := cwstore.MaxMetricDataDatapoints
	for _, q := range in.MetricDataQueries {
		qid := q.Id
		if !(qid[0] >= 'a' && qid[0] <= 'z') {
			return nil, fmt.Errorf("%w: MetricDataQueries.Id %q must start with a lowercase letter", cwstore.ErrInvalidParameter, qid)
		}
		if seen[qid] {
			return nil, fmt.Errorf("%w: MetricDataQueries.Id %q is used twice", cwstore.ErrInvalidParameter, qid)
		}
		seen[qid] = true
		if q.Expression != "" {
			return nil, fmt.Errorf("%w: MetricDataQueries %q: metric math expressions are not supported by the local cloud", cwstore.ErrInvalidParameter, qid)
		}
		ms := q.MetricStat
		if ms == nil {
			return nil, fmt.Errorf("%w: MetricDataQueries %q needs MetricStat", cwstore.ErrMissingParameter, qid)
		}
		if err := cwstore.ValidateQueryPeriod(ms.Period); err != nil {
			return nil, err
		}
		if !cwstore.ValidStatistic(ms.Stat) {
			return nil, fmt.Errorf("%w: MetricStat.Stat %q is not a supported statistic", cwstore.ErrInvalidParameter, ms.Stat)
		}
		if q.ReturnData != nil && !*q.ReturnData {
			continue
		}
		id := cwstore.MetricID{Namespace: ms.Metric.Namespace, MetricName: ms.Metric.MetricName, Dimensions: dimensions(ms.Metric.Dimensions)}
		period := time.Duration(ms.Period) * time.Second
		budget -= int(end.Sub(start) / period)
		if budget < 0 {
			return nil, fmt.Errorf("%w: the queries request more than %d datapoints in total", cwstore.ErrInvalidCombination, cwstore.MaxMetricDataDatapoints)
		}
		c.mu.Lock()
		aggs, err := c.metrics.Query(id, start, end, period, ms.Unit, cwstore.MaxMetricDataDatapoints)
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if !ascending {
			sort.Slice(aggs, func(i, j int) bool { return aggs[i].Start.After(aggs[j].Start) })
		}
		r := cwMetricDataResult{Id: qid, Label: q.Label, Timestamps: []time.Time{}, Values: []float64{}, StatusCode: "Complete"}
		if r.Label == "" {
			r.Label = id.MetricName
		}
		for _, a := range aggs {
			if v, ok := a.Statistic(ms.Stat); ok {
				r.Timestamps = append(r.Timestamps, a.Start)
				r.Values = append(r.Values, v)
			}
		}
		out.MetricDataResults = append(out.MetricDataResults, r)
	}
	return out, nil
}

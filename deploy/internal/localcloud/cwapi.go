package localcloud

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	// smithy-go's CBOR codec is the one aws-sdk-go-v2 itself uses on the
	// client side, so what it encodes the SDK decodes; it is already in the
	// module graph, unlike fxamacker/cbor. It always writes definite
	// lengths and reads indefinite ones, which is what a server needs.
	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cwstore"
)

// cmap reads a decoded CBOR map leniently: absent or mistyped members read
// as zero values, and callers validate what they require.
type cmap cbor.Map

func asMap(v cbor.Value) cmap {
	m, _ := v.(cbor.Map)
	return cmap(m)
}

func (m cmap) str(k string) string {
	s, _ := m[k].(cbor.String)
	return string(s)
}

func (m cmap) f64(k string) (float64, bool) {
	v, ok := m[k]
	if !ok {
		return 0, false
	}
	f, err := cbor.AsFloat64(v)
	return f, err == nil
}

func (m cmap) int(k string) (int, bool) {
	v, ok := m[k]
	if !ok {
		return 0, false
	}
	n, err := cbor.AsInt64(v)
	return int(n), err == nil
}

func (m cmap) bool(k string) (bool, bool) {
	b, ok := m[k].(cbor.Bool)
	return bool(b), ok
}

func (m cmap) time(k string) (time.Time, bool) {
	v, ok := m[k]
	if !ok {
		return time.Time{}, false
	}
	t, err := cbor.AsTime(v)
	return t, err == nil
}

func (m cmap) list(k string) cbor.List {
	l, _ := m[k].(cbor.List)
	return l
}

func (m cmap) strs(k string) []string {
	var out []string
	for _, v := range m.list(k) {
		if s, ok := v.(cbor.String); ok {
			out = append(out, string(s))
		}
	}
	return out
}

func (m cmap) dims(k string) []cwstore.Dimension {
	var out []cwstore.Dimension
	for _, v := range m.list(k) {
		d := asMap(v)
		out = append(out, cwstore.Dimension{Name: d.str("Name"), Value: d.str("Value")})
	}
	return out
}

func ctime(t time.Time) cbor.Value {
	return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(t.UnixMilli()) / 1000)}
}

func cstrs(s []string) cbor.List {
	out := cbor.List{}
	for _, v := range s {
		out = append(out, cbor.String(v))
	}
	return out
}

func cdims(ds []cwstore.Dimension) cbor.List {
	out := cbor.List{}
	for _, d := range ds {
		out = append(out, cbor.Map{"Name": cbor.String(d.Name), "Value": cbor.String(d.Value)})
	}
	return out
}

func cint(n int) cbor.Value {
	if n < 0 {
		return cbor.NegInt(uint64(-n - 1))
	}
	return cbor.Uint(uint64(n))
}

// cwError maps store errors to CloudWatch's modeled errors: the __type
// names the Smithy shape, X-Amzn-Query-Error carries the awsQuery code the
// SDK reports as ErrorCode().
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

var cwShapes = map[string]string{
	"InvalidParameterValue":       "InvalidParameterValueException",
	"InvalidParameterCombination": "InvalidParameterCombinationException",
	"MissingParameter":            "MissingRequiredParameterException",
	"ResourceNotFound":            "ResourceNotFound",
	"InternalServiceError":        "InternalServiceFault",
	"LimitExceeded":               "LimitExceededFault",
}

func writeCBOR(w http.ResponseWriter, status int, v cbor.Value) {
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.WriteHeader(status)
	if v != nil {
		_, _ = w.Write(cbor.Encode(v))
	}
}

func writeCBORError(w http.ResponseWriter, e *APIError) {
	shape := e.Code
	if s, ok := cwShapes[e.Code]; ok {
		shape = s
	}
	fault := "Sender"
	if e.Status >= 500 {
		fault = "Receiver"
	}
	w.Header().Set("X-Amzn-Query-Error", e.Code+";"+fault)
	writeCBOR(w, e.Status, cbor.Map{"__type": cbor.String("com.amazonaws.cloudwatch#" + shape), "message": cbor.String(e.Message)})
}

func (s *Server) serveCloudWatch(w http.ResponseWriter, r *http.Request, op string) {
	if r.Method != http.MethodPost {
		writeCBORError(w, apiErr(http.StatusMethodNotAllowed, "InvalidAction", "RPC v2 CBOR requests must be POST"))
		return
	}
	if e := s.cloud.faults.takeAPIFault(op); e != nil {
		writeCBORError(w, e)
		return
	}
	var src io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		// The SDK gzips PutMetricData bodies of 10 KiB and more
		// (@requestCompression), as CloudWatch accepts.
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			writeCBORError(w, apiErr(http.StatusBadRequest, "SerializationException", "gzip body: %v", err))
			return
		}
		defer zr.Close()
		src = zr
	}
	body, err := io.ReadAll(io.LimitReader(src, 16<<20))
	if err != nil {
		writeCBORError(w, apiErr(http.StatusBadRequest, "SerializationException", "read body: %v", err))
		return
	}
	in := cmap{}
	if len(body) > 0 {
		v, err := cbor.Decode(body)
		if err != nil {
			writeCBORError(w, apiErr(http.StatusBadRequest, "SerializationException", "body is not CBOR: %v", err))
			return
		}
		in = asMap(v)
	}
	out, err := s.cloudWatch(op, in)
	if err != nil {
		writeCBORError(w, cwError(err))
		return
	}
	writeCBOR(w, http.StatusOK, out)
}

func (s *Server) cloudWatch(op string, in cmap) (cbor.Value, error) {
	c := s.cloud
	switch op {
	case "PutMetricData":
		data, err := decodeMetricData(in)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.metrics.Put(c.clock.Now(), data); err != nil {
			return nil, err
		}
		return nil, nil
	case "ListMetrics":
		c.mu.Lock()
		ids := c.metrics.List(in.str("Namespace"), in.str("MetricName"), in.dims("Dimensions"))
		c.mu.Unlock()
		ms := cbor.List{}
		for _, id := range ids {
			ms = append(ms, cbor.Map{"Namespace": cbor.String(id.Namespace), "MetricName": cbor.String(id.MetricName), "Dimensions": cdims(id.Dimensions)})
		}
		return cbor.Map{"Metrics": ms}, nil
	case "GetMetricStatistics":
		return s.getMetricStatistics(in)
	case "GetMetricData":
		return s.getMetricData(in)
	case "PutMetricAlarm":
		return nil, s.putMetricAlarm(in)
	case "DescribeAlarms":
		return s.describeAlarms(in)
	case "DeleteAlarms":
		names := in.strs("AlarmNames")
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, n := range names {
			if c.alarms[n] == nil {
				return nil, fmt.Errorf("%w: alarm %s does not exist", cwstore.ErrResourceNotFound, n)
			}
		}
		for _, n := range names {
			delete(c.alarms, n)
		}
		c.dirty = true
		return nil, nil
	case "SetAlarmState":
		c.mu.Lock()
		defer c.mu.Unlock()
		a := c.alarms[in.str("AlarmName")]
		if a == nil {
			return nil, fmt.Errorf("%w: alarm %s does not exist", cwstore.ErrResourceNotFound, in.str("AlarmName"))
		}
		c.dirty = true
		return nil, a.SetState(c.clock.Now(), in.str("StateValue"), in.str("StateReason"), in.str("StateReasonData"))
	case "DescribeAlarmHistory":
		return s.describeAlarmHistory(in)
	}
	return nil, apiErr(http.StatusBadRequest, "UnknownOperationException", "The operation %s is not implemented by the local cloud's CloudWatch", op)
}

func decodeMetricData(in cmap) ([]cwstore.Datum, error) {
	ns := in.str("Namespace")
	if ns == "" {
		return nil, fmt.Errorf("%w: Namespace is required", cwstore.ErrMissingParameter)
	}
	list := in.list("MetricData")
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: MetricData is required", cwstore.ErrMissingParameter)
	}
	if len(list) > 1000 {
		return nil, fmt.Errorf("%w: MetricData: at most 1000 items, got %d", cwstore.ErrInvalidParameter, len(list))
	}
	var out []cwstore.Datum
	for _, v := range list {
		m := asMap(v)
		d := cwstore.Datum{Metric: cwstore.MetricID{Namespace: ns, MetricName: m.str("MetricName"), Dimensions: m.dims("Dimensions")}, Unit: m.str("Unit")}
		d.Timestamp, _ = m.time("Timestamp")
		d.StorageResolution, _ = m.int("StorageResolution")
		if sv, ok := m["StatisticValues"]; ok {
			sm := asMap(sv)
			st := &cwstore.StatisticSet{}
			st.SampleCount, _ = sm.f64("SampleCount")
			st.Sum, _ = sm.f64("Sum")
			st.Minimum, _ = sm.f64("Minimum")
			st.Maximum, _ = sm.f64("Maximum")
			d.Stats = st
		}
		for _, x := range m.list("Values") {
			f, err := cbor.AsFloat64(x)
			if err != nil {
				return nil, fmt.Errorf("%w: Values must be numbers", cwstore.ErrInvalidParameter)
			}
			d.Values = append(d.Values, f)
		}
		for _, x := range m.list("Counts") {
			f, err := cbor.AsFloat64(x)
			if err != nil {
				return nil, fmt.Errorf("%w: Counts must be numbers", cwstore.ErrInvalidParameter)
			}
			d.Counts = append(d.Counts, f)
		}
		if val, ok := m.f64("Value"); ok {
			if d.Stats != nil || len(d.Values) > 0 {
				return nil, fmt.Errorf("%w: Value, Values and StatisticValues are mutually exclusive", cwstore.ErrInvalidCombination)
			}
			d.Values = []float64{val}
		}
		out = append(out, d)
	}
	return out, nil
}

func (s *Server) getMetricStatistics(in cmap) (cbor.Value, error) {
	c := s.cloud
	start, ok1 := in.time("StartTime")
	end, ok2 := in.time("EndTime")
	period, ok3 := in.int("Period")
	if !ok1 || !ok2 || !ok3 || in.str("Namespace") == "" || in.str("MetricName") == "" {
		return nil, fmt.Errorf("%w: Namespace, MetricName, StartTime, EndTime and Period are required", cwstore.ErrMissingParameter)
	}
	if err := cwstore.ValidateQueryPeriod(period); err != nil {
		return nil, err
	}
	stats := in.strs("Statistics")
	ext := in.strs("ExtendedStatistics")
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
	id := cwstore.MetricID{Namespace: in.str("Namespace"), MetricName: in.str("MetricName"), Dimensions: in.dims("Dimensions")}
	c.mu.Lock()
	aggs, err := c.metrics.Query(id, start, end, time.Duration(period)*time.Second, in.str("Unit"), cwstore.MaxStatisticsDatapoints)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	dps := cbor.List{}
	for _, a := range aggs {
		dp := cbor.Map{"Timestamp": ctime(a.Start)}
		if a.Unit != "" {
			dp["Unit"] = cbor.String(a.Unit)
		} else {
			dp["Unit"] = cbor.String("None")
		}
		for _, st := range stats {
			if v, ok := a.Statistic(st); ok {
				dp[st] = cbor.Float64(v)
			}
		}
		if len(ext) > 0 {
			em := cbor.Map{}
			for _, st := range ext {
				if v, ok := a.Statistic(st); ok {
					em[st] = cbor.Float64(v)
				}
			}
			dp["ExtendedStatistics"] = em
		}
		dps = append(dps, dp)
	}
	return cbor.Map{"Label": cbor.String(id.MetricName), "Datapoints": dps}, nil
}

func (s *Server) getMetricData(in cmap) (cbor.Value, error) {
	c := s.cloud
	start, ok1 := in.time("StartTime")
	end, ok2 := in.time("EndTime")
	queries := in.list("MetricDataQueries")
	if !ok1 || !ok2 || len(queries) == 0 {
		return nil, fmt.Errorf("%w: MetricDataQueries, StartTime and EndTime are required", cwstore.ErrMissingParameter)
	}
	if len(queries) > 500 {
		return nil, fmt.Errorf("%w: MetricDataQueries: at most 500, got %d", cwstore.ErrInvalidParameter, len(queries))
	}
	ascending := in.str("ScanBy") == "TimestampAscending"
	results := cbor.List{}
	seen := map[string]bool{}
	budget := cwstore.MaxMetricDataDatapoints
	for _, qv := range queries {
		q := asMap(qv)
		qid := q.str("Id")
		if qid == "" || !(qid[0] >= 'a' && qid[0] <= 'z') {
			return nil, fmt.Errorf("%w: MetricDataQueries.Id %q must start with a lowercase letter", cwstore.ErrInvalidParameter, qid)
		}
		if seen[qid] {
			return nil, fmt.Errorf("%w: MetricDataQueries.Id %q is used twice", cwstore.ErrInvalidParameter, qid)
		}
		seen[qid] = true
		if q.str("Expression") != "" {
			return nil, fmt.Errorf("%w: MetricDataQueries %q: metric math expressions are not supported by the local cloud", cwstore.ErrInvalidParameter, qid)
		}
		msv, ok := q["MetricStat"]
		if !ok {
			return nil, fmt.Errorf("%w: MetricDataQueries %q needs MetricStat", cwstore.ErrMissingParameter, qid)
		}
		ms := asMap(msv)
		mt := asMap(ms["Metric"])
		period, _ := ms.int("Period")
		if err := cwstore.ValidateQueryPeriod(period); err != nil {
			return nil, err
		}
		stat := ms.str("Stat")
		if !cwstore.ValidStatistic(stat) {
			return nil, fmt.Errorf("%w: MetricStat.Stat %q is not a supported statistic", cwstore.ErrInvalidParameter, stat)
		}
		if rd, ok := q.bool("ReturnData"); ok && !rd {
			continue
		}
		id := cwstore.MetricID{Namespace: mt.str("Namespace"), MetricName: mt.str("MetricName"), Dimensions: mt.dims("Dimensions")}
		budget -= int(end.Sub(start) / (time.Duration(period) * time.Second))
		if budget < 0 {
			return nil, fmt.Errorf("%w: the queries request more than %d datapoints in total", cwstore.ErrInvalidCombination, cwstore.MaxMetricDataDatapoints)
		}
		c.mu.Lock()
		aggs, err := c.metrics.Query(id, start, end, time.Duration(period)*time.Second, ms.str("Unit"), cwstore.MaxMetricDataDatapoints)
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if !ascending {
			sort.Slice(aggs, func(i, j int) bool { return aggs[i].Start.After(aggs[j].Start) })
		}
		ts, vals := cbor.List{}, cbor.List{}
		for _, a := range aggs {
			if v, ok := a.Statistic(stat); ok {
				ts = append(ts, ctime(a.Start))
				vals = append(vals, cbor.Float64(v))
			}
		}
		label := q.str("Label")
		if label == "" {
			label = id.MetricName
		}
		results = append(results, cbor.Map{"Id": cbor.String(qid), "Label": cbor.String(label), "Timestamps": ts, "Values": vals, "StatusCode": cbor.String("Complete")})
	}
	return cbor.Map{"MetricDataResults": results, "Messages": cbor.List{}}, nil
}

func (s *Server) putMetricAlarm(in cmap) error {
	c := s.cloud
	if len(in.list("Metrics")) > 0 {
		return fmt.Errorf("%w: Metrics: metric math alarms are not supported by the local cloud", cwstore.ErrInvalidParameter)
	}
	a := cwstore.Alarm{
		Name: in.str("AlarmName"), Description: in.str("AlarmDescription"), ActionsEnabled: true,
		OKActions: in.strs("OKActions"), AlarmActions: in.strs("AlarmActions"), InsufficientActs: in.strs("InsufficientDataActions"),
		Metric:    cwstore.MetricID{Namespace: in.str("Namespace"), MetricName: in.str("MetricName"), Dimensions: in.dims("Dimensions")},
		Statistic: in.str("Statistic"), ExtendedStatistic: in.str("ExtendedStatistic"), Unit: in.str("Unit"),
		ComparisonOperator: in.str("ComparisonOperator"), TreatMissingData: in.str("TreatMissingData"),
	}
	if b, ok := in.bool("ActionsEnabled"); ok {
		a.ActionsEnabled = b
	}
	var ok bool
	if a.Period, ok = in.int("Period"); !ok {
		return fmt.Errorf("%w: Period is required", cwstore.ErrMissingParameter)
	}
	if a.EvaluationPeriods, ok = in.int("EvaluationPeriods"); !ok {
		return fmt.Errorf("%w: EvaluationPeriods is required", cwstore.ErrMissingParameter)
	}
	a.DatapointsToAlarm, _ = in.int("DatapointsToAlarm")
	if a.Threshold, ok = in.f64("Threshold"); !ok {
		return fmt.Errorf("%w: Threshold is required", cwstore.ErrMissingParameter)
	}
	if err := a.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.alarms[a.Name] == nil && len(c.alarms) >= 5000 {
		return apiErr(http.StatusBadRequest, "LimitExceeded", "The maximum of 5000 alarms has been reached")
	}
	na := cwstore.NewAlarm(a, c.alarms[a.Name], c.clock.Now())
	c.alarms[a.Name] = &na
	c.dirty = true
	return nil
}

func (s *Server) alarmArn(name string) string {
	return "arn:aws:cloudwatch:" + s.cloud.cfg.Region + ":" + s.cloud.cfg.AccountID + ":alarm:" + name
}

func (s *Server) describeAlarms(in cmap) (cbor.Value, error) {
	c := s.cloud
	names := in.strs("AlarmNames")
	prefix := in.str("AlarmNamePrefix")
	state := in.str("StateValue")
	if prefix != "" && len(names) > 0 {
		return nil, fmt.Errorf("%w: AlarmNames and AlarmNamePrefix are mutually exclusive", cwstore.ErrInvalidCombination)
	}
	if types := in.strs("AlarmTypes"); len(types) > 0 && !contains(types, "MetricAlarm") {
		return cbor.Map{"MetricAlarms": cbor.List{}, "CompositeAlarms": cbor.List{}}, nil
	}
	max, _ := in.int("MaxRecords")
	if max <= 0 || max > 100 {
		max = 100
	}
	next := in.str("NextToken")
	c.mu.Lock()
	defer c.mu.Unlock()
	out := cbor.List{}
	token := ""
	for _, a := range c.alarms.Sorted() {
		if len(names) > 0 && !contains(names, a.Name) {
			continue
		}
		if prefix != "" && !strings.HasPrefix(a.Name, prefix) {
			continue
		}
		if state != "" && a.State != state {
			continue
		}
		if next != "" && a.Name <= next {
			continue
		}
		if len(out) == max {
			token = asMap(out[len(out)-1]).str("AlarmName")
			break
		}
		out = append(out, s.alarmCBOR(a))
	}
	res := cbor.Map{"MetricAlarms": out, "CompositeAlarms": cbor.List{}}
	if token != "" {
		res["NextToken"] = cbor.String(token)
	}
	return res, nil
}

func (s *Server) alarmCBOR(a *cwstore.Alarm) cbor.Map {
	m := cbor.Map{
		"AlarmName": cbor.String(a.Name), "AlarmArn": cbor.String(s.alarmArn(a.Name)),
		"AlarmConfigurationUpdatedTimestamp": ctime(a.ConfigUpdated), "ActionsEnabled": cbor.Bool(a.ActionsEnabled),
		"OKActions": cstrs(a.OKActions), "AlarmActions": cstrs(a.AlarmActions), "InsufficientDataActions": cstrs(a.InsufficientActs),
		"StateValue": cbor.String(a.State), "StateReason": cbor.String(a.StateReason),
		"StateUpdatedTimestamp": ctime(a.StateUpdated), "StateTransitionedTimestamp": ctime(a.StateTransitioned),
		"MetricName": cbor.String(a.Metric.MetricName), "Namespace": cbor.String(a.Metric.Namespace),
		"Dimensions": cdims(a.Metric.Dimensions), "Period": cint(a.Period), "EvaluationPeriods": cint(a.EvaluationPeriods),
		"Threshold": cbor.Float64(a.Threshold), "ComparisonOperator": cbor.String(a.ComparisonOperator),
	}
	if a.Description != "" {
		m["AlarmDescription"] = cbor.String(a.Description)
	}
	if a.StateReasonData != "" {
		m["StateReasonData"] = cbor.String(a.StateReasonData)
	}
	if a.Statistic != "" {
		m["Statistic"] = cbor.String(a.Statistic)
	}
	if a.ExtendedStatistic != "" {
		m["ExtendedStatistic"] = cbor.String(a.ExtendedStatistic)
	}
	if a.Unit != "" {
		m["Unit"] = cbor.String(a.Unit)
	}
	if a.DatapointsToAlarm > 0 {
		m["DatapointsToAlarm"] = cint(a.DatapointsToAlarm)
	}
	if a.TreatMissingData != "" {
		m["TreatMissingData"] = cbor.String(a.TreatMissingData)
	}
	return m
}

func (s *Server) describeAlarmHistory(in cmap) (cbor.Value, error) {
	c := s.cloud
	name := in.str("AlarmName")
	typ := in.str("HistoryItemType")
	start, hasStart := in.time("StartDate")
	end, hasEnd := in.time("EndDate")
	max, _ := in.int("MaxRecords")
	if max <= 0 || max > 100 {
		max = 100
	}
	ascending := in.str("ScanBy") == "TimestampAscending"
	c.mu.Lock()
	defer c.mu.Unlock()
	type item struct {
		alarm string
		h     cwstore.HistoryItem
	}
	var items []item
	for _, a := range c.alarms.Sorted() {
		if name != "" && a.Name != name {
			continue
		}
		for _, h := range a.History {
			if typ != "" && h.Type != typ {
				continue
			}
			if (hasStart && h.Timestamp.Before(start)) || (hasEnd && h.Timestamp.After(end)) {
				continue
			}
			items = append(items, item{a.Name, h})
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		if ascending {
			return items[i].h.Timestamp.Before(items[j].h.Timestamp)
		}
		return items[i].h.Timestamp.After(items[j].h.Timestamp)
	})
	out := cbor.List{}
	for i, it := range items {
		if i == max {
			break
		}
		out = append(out, cbor.Map{
			"AlarmName": cbor.String(it.alarm), "AlarmType": cbor.String("MetricAlarm"), "Timestamp": ctime(it.h.Timestamp),
			"HistoryItemType": cbor.String(it.h.Type), "HistorySummary": cbor.String(it.h.Summary), "HistoryData": cbor.String(it.h.Data),
		})
	}
	return cbor.Map{"AlarmHistoryItems": out}, nil
}

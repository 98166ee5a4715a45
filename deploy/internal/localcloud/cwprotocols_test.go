package localcloud

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cwstore"
)

// These tests drive ServeHTTP directly with recorded requests, the way
// botocore's JSON 1.0 and awsQuery serializers write them.

type fixedNow time.Time

func (f fixedNow) Now() time.Time { return time.Time(f) }

var cwTestNow = time.Date(2026, 11, 30, 12, 0, 30, 0, time.UTC)

func newCWServer(t *testing.T) *Server {
	t.Helper()
	c := DefaultConfig()
	c.Addr, c.BootDelay, c.TerminateGrace, c.ReconcileInterval, c.LaunchRetry = "127.0.0.1:0", time.Second, time.Second, time.Second, time.Second
	c.InstanceIPPrefix, c.Clock = "127.0.78", fixedNow(cwTestNow)
	s, err := NewServer(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sigv4(service string) string {
	return "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/" + service + "/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("ab", 32)
}

func serve(s *Server, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func jsonRequest(op, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "GraniteServiceVersion20100801."+op)
	req.Header.Set("X-Amzn-Query-Mode", "true")
	req.Header.Set("Authorization", sigv4("monitoring"))
	return req
}

func queryRequest(form string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", sigv4("monitoring"))
	return req
}

func epoch(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// datums returns n JSON MetricDatum objects.
func datums(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"MetricName":"m%d","Value":1}`, i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func TestCloudWatchJSONErrors(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write([]byte(s))
		_ = zw.Close()
		return b.Bytes()
	}
	cases := []struct {
		name, op, body string
		edit           func(*http.Request)
		status         int
		typ, code      string // __type and the awsQuery code in X-Amzn-Query-Error; "" for success
		msg            string // the message must contain it
	}{
		{name: "values and a statistic set", op: "PutMetricData", status: 200,
			body: `{"Namespace":"Lab","MetricData":[{"MetricName":"CPU","Dimensions":[{"Name":"G","Value":"w"}],"Timestamp":` + epoch(cwTestNow) + `,"Values":[1,2],"Counts":[1,3]},{"MetricName":"CPU","StatisticValues":{"SampleCount":2,"Sum":4,"Minimum":1,"Maximum":3}}]}`},
		{name: "gzipped body", op: "PutMetricData", status: 200, body: string(gz(`{"Namespace":"Lab","MetricData":[{"MetricName":"CPU","Value":1}]}`)),
			edit: func(r *http.Request) { r.Header.Set("Content-Encoding", "gzip") }},
		{name: "missing namespace", op: "PutMetricData", body: `{"MetricData":[{"MetricName":"CPU","Value":1}]}`,
			status: 400, typ: "com.amazonaws.cloudwatch#MissingRequiredParameterException", code: "MissingParameter", msg: "The parameter Namespace is required."},
		{name: "missing nested member", op: "PutMetricData", body: `{"Namespace":"Lab","MetricData":[{"Value":1}]}`,
			status: 400, typ: "com.amazonaws.cloudwatch#MissingRequiredParameterException", code: "MissingParameter", msg: "MetricData.member.1.MetricName"},
		{name: "null is absent", op: "DeleteAlarms", body: `{"AlarmNames":null}`,
			status: 400, code: "MissingParameter", msg: "AlarmNames"},
		{name: "string for an integer", op: "GetMetricStatistics", body: `{"Namespace":"Lab","MetricName":"CPU","StartTime":1,"EndTime":2,"Period":"sixty","Statistics":["Sum"]}`,
			status: 400, typ: "com.amazonaws.cloudwatch#SerializationException", code: "SerializationException", msg: `"sixty" for parameter Period`},
		{name: "fraction for an integer", op: "GetMetricStatistics", body: `{"Namespace":"Lab","MetricName":"CPU","StartTime":1,"EndTime":2,"Period":60.5,"Statistics":["Sum"]}`,
			status: 400, code: "SerializationException", msg: "Period"},
		{name: "string for a double", op: "PutMetricData", body: `{"Namespace":"Lab","MetricData":[{"MetricName":"CPU","Value":"high"}]}`,
			status: 400, code: "SerializationException", msg: "MetricData.member.1.Value"},
		{name: "object for a list", op: "PutMetricData", body: `{"Namespace":"Lab","MetricData":{"MetricName":"CPU"}}`,
			status: 400, code: "SerializationException", msg: "MetricData"},
		{name: "NaN as botocore sends it", op: "PutMetricData", body: `{"Namespace":"Lab","MetricData":[{"MetricName":"CPU","Values":["NaN"]}]}`,
			status: 400, typ: "com.amazonaws.cloudwatch#InvalidParameterValueException", code: "InvalidParameterValue", msg: "NaN"},
		{name: "1001 datums", op: "PutMetricData", body: `{"Namespace":"Lab","MetricData":` + datums(1001) + `}`,
			status: 400, code: "InvalidParameterValue", msg: "MetricData must not have more than 1000 members"},
		{name: "31 dimensions", op: "PutMetricData", body: `{"Namespace":"Lab","MetricData":[{"MetricName":"CPU","Value":1,"Dimensions":[` + strings.TrimSuffix(strings.Repeat(`{"Name":"a","Value":"b"},`, 31), ",") + `]}]}`,
			status: 400, code: "InvalidParameterValue", msg: "MetricData.member.1.Dimensions must not have more than 30"},
		{name: "unknown alarm", op: "DeleteAlarms", body: `{"AlarmNames":["nope"]}`,
			status: 404, typ: "com.amazonaws.cloudwatch#ResourceNotFound", code: "ResourceNotFound", msg: "nope"},
		{name: "unknown operation", op: "PutDashboard", body: `{}`,
			status: 400, code: "InvalidAction", msg: "PutDashboard"},
		{name: "not JSON", op: "ListMetrics", body: `{"Namespace":`, status: 400, code: "SerializationException", msg: "not JSON"},
		{name: "not an object", op: "ListMetrics", body: `["Lab"]`, status: 400, code: "SerializationException", msg: "JSON object"},
		{name: "JSON 1.1", op: "ListMetrics", body: `{}`, edit: func(r *http.Request) { r.Header.Set("Content-Type", "application/x-amz-json-1.1") },
			status: 415, code: "InvalidAction", msg: "application/x-amz-json-1.1"},
		{name: "body over 1 MiB", op: "PutMetricData", body: `{"Namespace":"` + strings.Repeat("x", maxCloudWatchBody) + `"}`,
			status: 413, code: "RequestEntityTooLarge", msg: "1048576"},
		{name: "unsigned", op: "ListMetrics", body: `{}`, edit: func(r *http.Request) { r.Header.Del("Authorization") },
			status: 403, code: "MissingAuthenticationToken", msg: "SigV4"},
	}
	s := newCWServer(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := jsonRequest(c.op, c.body)
			if c.edit != nil {
				c.edit(req)
			}
			rec := serve(s, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/x-amz-json-1.0" {
				t.Errorf("Content-Type %q", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, rec.Body)
			}
			if c.code == "" {
				if len(body) != 0 || rec.Header().Get("X-Amzn-Query-Error") != "" {
					t.Fatalf("want an empty success, got %s", rec.Body)
				}
				return
			}
			if got := rec.Header().Get("X-Amzn-Query-Error"); got != c.code+";Sender" {
				t.Errorf("X-Amzn-Query-Error %q, want %q", got, c.code+";Sender")
			}
			typ, _ := body["__type"].(string)
			if c.typ != "" && typ != c.typ || !strings.HasPrefix(typ, "com.amazonaws.cloudwatch#") {
				t.Errorf("__type %q, want %q", typ, c.typ)
			}
			if msg, _ := body["message"].(string); !strings.Contains(msg, c.msg) {
				t.Errorf("message %q does not contain %q", msg, c.msg)
			}
		})
	}
}

func TestCloudWatchQueryErrors(t *testing.T) {
	const v = "&Version=2010-08-01"
	cases := []struct {
		name, form string
		edit       func(*http.Request)
		status     int
		code, msg  string // "" for success
	}{
		{name: "nested lists and a statistic set", status: 200, form: "Action=PutMetricData" + v + "&Namespace=Lab" +
			"&MetricData.member.1.MetricName=CPU&MetricData.member.1.Dimensions.member.1.Name=G&MetricData.member.1.Dimensions.member.1.Value=w" +
			"&MetricData.member.1.Values.member.1=1&MetricData.member.1.Values.member.2=2&MetricData.member.1.Counts.member.1=1&MetricData.member.1.Counts.member.2=3" +
			"&MetricData.member.1.Timestamp=2026-11-30T12%3A00%3A00Z&MetricData.member.2.MetricName=CPU&MetricData.member.2.StatisticValues.SampleCount=2" +
			"&MetricData.member.2.StatisticValues.Sum=4&MetricData.member.2.StatisticValues.Minimum=1&MetricData.member.2.StatisticValues.Maximum=3"},
		{name: "gzipped form", status: 200, form: "Action=PutMetricData" + v + "&Namespace=Lab&MetricData.member.1.MetricName=CPU&MetricData.member.1.Value=1",
			edit: func(r *http.Request) {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				_, _ = io.Copy(zw, r.Body)
				_ = zw.Close()
				r.Body = io.NopCloser(&b)
				r.Header.Set("Content-Encoding", "gzip")
			}},
		{name: "missing namespace", form: "Action=PutMetricData" + v + "&MetricData.member.1.MetricName=CPU&MetricData.member.1.Value=1",
			status: 400, code: "MissingParameter", msg: "The parameter Namespace is required."},
		{name: "missing statistic set member", form: "Action=PutMetricData" + v + "&Namespace=Lab&MetricData.member.1.MetricName=CPU&MetricData.member.1.StatisticValues.SampleCount=1",
			status: 400, code: "MissingParameter", msg: "MetricData.member.1.StatisticValues.Sum"},
		{name: "text for an integer", form: "Action=GetMetricStatistics" + v + "&Namespace=Lab&MetricName=CPU&StartTime=2026-11-30T11%3A00%3A00Z&EndTime=2026-11-30T12%3A00%3A00Z&Period=sixty&Statistics.member.1=Sum",
			status: 400, code: "InvalidParameterValue", msg: `"sixty" for parameter Period`},
		{name: "bad timestamp", form: "Action=GetMetricStatistics" + v + "&Namespace=Lab&MetricName=CPU&StartTime=yesterday&EndTime=2026-11-30T12%3A00%3A00Z&Period=60&Statistics.member.1=Sum",
			status: 400, code: "InvalidParameterValue", msg: "StartTime"},
		{name: "bad boolean", form: "Action=PutMetricAlarm" + v + "&AlarmName=a&ActionsEnabled=yes", status: 400, code: "InvalidParameterValue", msg: "ActionsEnabled"},
		{name: "gap in a list", form: "Action=DeleteAlarms" + v + "&AlarmNames.member.1=a&AlarmNames.member.3=b",
			status: 400, code: "InvalidParameterValue", msg: "AlarmNames must be numbered member.1 to member.2"},
		{name: "list without member", form: "Action=DeleteAlarms" + v + "&AlarmNames.1=a", status: 400, code: "InvalidParameterValue", msg: "AlarmNames"},
		{name: "value and structure", form: "Action=PutMetricData" + v + "&Namespace=Lab&MetricData=x&MetricData.member.1.MetricName=CPU",
			status: 400, code: "InvalidParameterValue", msg: "MetricData"},
		{name: "empty name part", form: "Action=ListMetrics" + v + "&Dimensions..Name=x", status: 400, code: "InvalidParameterValue", msg: "Dimensions..Name"},
		{name: "1001 datums", form: "Action=PutMetricData" + v + "&Namespace=Lab" + func() string {
			var b strings.Builder
			for i := 1; i <= 1001; i++ {
				fmt.Fprintf(&b, "&MetricData.member.%d.MetricName=m&MetricData.member.%d.Value=1", i, i)
			}
			return b.String()
		}(), status: 400, code: "InvalidParameterValue", msg: "MetricData must not have more than 1000 members; it has 1001"},
		{name: "unknown alarm", form: "Action=DeleteAlarms" + v + "&AlarmNames.member.1=nope", status: 404, code: "ResourceNotFound", msg: "nope"},
		{name: "unknown action", form: "Action=PutDashboard" + v, status: 400, code: "InvalidAction", msg: "PutDashboard"},
		{name: "no action", form: "Namespace=Lab" + v, status: 400, code: "MissingAction", msg: "Action"},
		{name: "other version under the monitoring scope", form: "Action=ListMetrics&Version=2011-01-01", status: 400, code: "InvalidParameterValue", msg: `"2011-01-01"`},
		{name: "JSON body under the monitoring scope", form: "{}", edit: func(r *http.Request) { r.Header.Set("Content-Type", "application/x-amz-json-1.0") },
			status: 415, code: "InvalidAction", msg: "application/x-amz-json-1.0"},
		{name: "body over 1 MiB", form: "Action=ListMetrics" + v + "&Namespace=" + strings.Repeat("x", maxCloudWatchBody), status: 413, code: "RequestEntityTooLarge", msg: "1048576"},
		{name: "unsigned, found by Version", form: "Action=ListMetrics" + v, edit: func(r *http.Request) { r.Header.Del("Authorization") },
			status: 403, code: "MissingAuthenticationToken", msg: "SigV4"},
	}
	s := newCWServer(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := queryRequest(c.form)
			if c.edit != nil {
				c.edit(req)
			}
			rec := serve(s, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if c.code == "" {
				var ok struct {
					XMLName   xml.Name
					RequestID string `xml:"ResponseMetadata>RequestId"`
				}
				if err := xml.Unmarshal(rec.Body.Bytes(), &ok); err != nil || ok.XMLName.Local != "PutMetricDataResponse" || ok.XMLName.Space != cloudwatchXMLNS || ok.RequestID == "" {
					t.Fatalf("success response %+v (%v): %s", ok, err, rec.Body)
				}
				return
			}
			var e struct {
				XMLName   xml.Name
				Type      string `xml:"Error>Type"`
				Code      string `xml:"Error>Code"`
				Message   string `xml:"Error>Message"`
				RequestID string `xml:"RequestId"`
			}
			if err := xml.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("error is not XML: %v: %s", err, rec.Body)
			}
			if e.XMLName.Local != "ErrorResponse" || e.XMLName.Space != cloudwatchXMLNS || e.Type != "Sender" || e.Code != c.code || e.RequestID == "" {
				t.Errorf("error %+v, want an ErrorResponse of Sender %s", e, c.code)
			}
			if !strings.Contains(e.Message, c.msg) {
				t.Errorf("message %q does not contain %q", e.Message, c.msg)
			}
		})
	}
}

// TestCloudWatchLimitExceededEveryProtocol: the 5001st alarm is refused
// with LimitExceeded in each protocol's shape.
func TestCloudWatchLimitExceededEveryProtocol(t *testing.T) {
	s := newCWServer(t)
	for i := 0; i < 5000; i++ {
		s.cloud.alarms[fmt.Sprintf("a%04d", i)] = &cwstore.Alarm{Name: fmt.Sprintf("a%04d", i)}
	}
	alarm := map[string]any{"AlarmName": "one-too-many", "Namespace": "Lab", "MetricName": "CPU", "Statistic": "Average", "Period": 60, "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold"}
	jb, _ := json.Marshal(alarm)
	rec := serve(s, jsonRequest("PutMetricAlarm", string(jb)))
	if rec.Code != 400 || rec.Header().Get("X-Amzn-Query-Error") != "LimitExceeded;Sender" || !strings.Contains(rec.Body.String(), `"com.amazonaws.cloudwatch#LimitExceededFault"`) {
		t.Errorf("JSON: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	form := url.Values{"Action": {"PutMetricAlarm"}, "Version": {"2010-08-01"}}
	for k, v := range alarm {
		form.Set(k, fmt.Sprint(v))
	}
	rec = serve(s, queryRequest(form.Encode()))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "<Code>LimitExceeded</Code>") {
		t.Errorf("awsQuery: %d %s", rec.Code, rec.Body)
	}
	cm := cbor.Map{}
	for k, v := range alarm {
		switch x := v.(type) {
		case string:
			cm[k] = cbor.String(x)
		case int:
			cm[k] = cbor.Uint(uint64(x))
		}
	}
	req := httptest.NewRequest(http.MethodPost, cloudwatchPrefix+"PutMetricAlarm", bytes.NewReader(cbor.Encode(cm)))
	req.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
	req.Header.Set("Authorization", sigv4("monitoring"))
	rec = serve(s, req)
	if rec.Code != 400 || rec.Header().Get("X-Amzn-Query-Error") != "LimitExceeded;Sender" {
		t.Errorf("CBOR: %d %v", rec.Code, rec.Header())
	}
}

// TestCloudWatchOneImplementationThreeProtocols writes through one
// protocol and reads the same answer through the other two.
func TestCloudWatchOneImplementationThreeProtocols(t *testing.T) {
	s := newCWServer(t)
	base := cwTestNow.Truncate(time.Minute).Add(-2 * time.Minute)
	put := cbor.Map{"Namespace": cbor.String("Lab"), "MetricData": cbor.List{
		cbor.Map{"MetricName": cbor.String("CPU"), "Timestamp": &cbor.Tag{ID: 1, Value: cbor.Float64(float64(base.Add(5 * time.Second).Unix()))},
			"Values": cbor.List{cbor.Float64(10), cbor.Float64(30)}, "Counts": cbor.List{cbor.Uint(1), cbor.Uint(1)}, "Unit": cbor.String("Percent"),
			"Dimensions": cbor.List{cbor.Map{"Name": cbor.String("G"), "Value": cbor.String("w<&>")}}},
	}}
	req := httptest.NewRequest(http.MethodPost, cloudwatchPrefix+"PutMetricData", bytes.NewReader(cbor.Encode(put)))
	req.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
	req.Header.Set("Authorization", sigv4("monitoring"))
	if rec := serve(s, req); rec.Code != 200 {
		t.Fatalf("CBOR PutMetricData: %d %s", rec.Code, rec.Body)
	}

	// JSON 1.0: epoch-second timestamps, maps as objects.
	rec := serve(s, jsonRequest("GetMetricStatistics", `{"Namespace":"Lab","MetricName":"CPU","Dimensions":[{"Name":"G","Value":"w<&>"}],"StartTime":`+epoch(base)+
		`,"EndTime":`+epoch(base.Add(time.Minute))+`,"Period":60,"Statistics":["Average","Maximum"],"ExtendedStatistics":["p50"]}`))
	var js struct {
		Label      string
		Datapoints []struct {
			Timestamp          float64
			Average, Maximum   float64
			Minimum            *float64
			Unit               string
			ExtendedStatistics map[string]float64
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &js); err != nil || rec.Code != 200 {
		t.Fatalf("JSON GetMetricStatistics: %d %v %s", rec.Code, err, rec.Body)
	}
	if len(js.Datapoints) != 1 || js.Label != "CPU" {
		t.Fatalf("JSON: %s", rec.Body)
	}
	dp := js.Datapoints[0]
	if dp.Timestamp != float64(base.Unix()) || dp.Average != 20 || dp.Maximum != 30 || dp.Minimum != nil || dp.Unit != "Percent" || dp.ExtendedStatistics["p50"] != 10 {
		t.Errorf("JSON datapoint %+v", dp)
	}

	// awsQuery: ISO 8601 timestamps, <member> lists, <entry> maps, escaped text.
	form := url.Values{"Action": {"GetMetricStatistics"}, "Version": {"2010-08-01"}, "Namespace": {"Lab"}, "MetricName": {"CPU"},
		"Dimensions.member.1.Name": {"G"}, "Dimensions.member.1.Value": {"w<&>"}, "StartTime": {base.Format(time.RFC3339)},
		"EndTime": {base.Add(time.Minute).Format(time.RFC3339)}, "Period": {"60"}, "Statistics.member.1": {"Average"}, "Statistics.member.2": {"Maximum"},
		"ExtendedStatistics.member.1": {"p50"}}
	rec = serve(s, queryRequest(form.Encode()))
	var xr struct {
		XMLName    xml.Name `xml:"GetMetricStatisticsResponse"`
		Label      string   `xml:"GetMetricStatisticsResult>Label"`
		Datapoints []struct {
			Timestamp string
			Average   float64
			Maximum   float64
			Unit      string
			Entries   []struct {
				Key   string  `xml:"key"`
				Value float64 `xml:"value"`
			} `xml:"ExtendedStatistics>entry"`
		} `xml:"GetMetricStatisticsResult>Datapoints>member"`
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &xr); err != nil || rec.Code != 200 {
		t.Fatalf("awsQuery GetMetricStatistics: %d %v %s", rec.Code, err, rec.Body)
	}
	if len(xr.Datapoints) != 1 || xr.Label != "CPU" {
		t.Fatalf("awsQuery: %s", rec.Body)
	}
	xd := xr.Datapoints[0]
	if xd.Timestamp != base.Format("2006-01-02T15:04:05.000Z") || xd.Average != 20 || xd.Maximum != 30 || xd.Unit != "Percent" ||
		len(xd.Entries) != 1 || xd.Entries[0].Key != "p50" || xd.Entries[0].Value != 10 {
		t.Errorf("awsQuery datapoint %+v", xd)
	}

	// The metric's escaped dimension value comes back intact in XML.
	rec = serve(s, queryRequest("Action=ListMetrics&Version=2010-08-01&Namespace=Lab"))
	if !strings.Contains(rec.Body.String(), "<Value>w&lt;&amp;&gt;</Value>") {
		t.Errorf("ListMetrics XML does not escape the dimension: %s", rec.Body)
	}
	// An empty list is sent as the bare name.
	rec = serve(s, queryRequest("Action=DescribeAlarms&Version=2010-08-01&AlarmNames="))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "<MetricAlarms></MetricAlarms>") {
		t.Errorf("DescribeAlarms with an empty list: %d %s", rec.Code, rec.Body)
	}
}

// TestCloudWatchRouting: every way a request names CloudWatch reaches it,
// and what the local cloud does not serve is named in the error.
func TestCloudWatchRouting(t *testing.T) {
	s := newCWServer(t)
	cases := []struct {
		name    string
		req     func() *http.Request
		status  int
		contain string
	}{
		{"awsQuery by scope", func() *http.Request { return queryRequest("Action=ListMetrics&Version=2010-08-01") }, 200, "<ListMetricsResponse"},
		{"awsQuery by Version under another scope", func() *http.Request {
			r := queryRequest("Action=ListMetrics&Version=2010-08-01")
			r.Header.Set("Authorization", sigv4("custom"))
			return r
		}, 200, "<ListMetricsResult>"},
		{"awsQuery in the URL query", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/?Action=ListMetrics&Version=2010-08-01", nil)
			r.Header.Set("Authorization", sigv4("monitoring"))
			return r
		}, 200, "<ListMetricsResult>"},
		{"JSON 1.0 by target", func() *http.Request { return jsonRequest("ListMetrics", "") }, 200, `{"Metrics":[]}`},
		{"another service's target", func() *http.Request {
			r := jsonRequest("ListMetrics", "{}")
			r.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
			return r
		}, 400, "DynamoDB_20120810.ListTables"},
		{"RPC v2 of another service", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/service/AmazonSQS/operation/ListQueues", nil)
			r.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
			r.Header.Set("Authorization", sigv4("sqs"))
			return r
		}, 400, "/service/AmazonSQS/operation/ListQueues"},
		{"another Smithy protocol", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, cloudwatchPrefix+"ListMetrics", nil)
			r.Header.Set("Smithy-Protocol", "rpc-v2-json")
			r.Header.Set("Authorization", sigv4("monitoring"))
			return r
		}, 400, "rpc-v2-json"},
		{"no service at all", func() *http.Request {
			r := queryRequest("Action=Foo&Version=1999-01-01")
			r.Header.Set("Authorization", sigv4("custom"))
			return r
		}, 400, `SigV4 scope "custom", Version "1999-01-01"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := serve(s, c.req())
			body := rec.Body.String()
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/cbor") {
				v, err := cbor.Decode(rec.Body.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				body = fmt.Sprint(fromCBOR(v))
			}
			if rec.Code != c.status || !strings.Contains(strings.ReplaceAll(body, "&#34;", `"`), c.contain) {
				t.Fatalf("got %d %s, want %d containing %s", rec.Code, body, c.status, c.contain)
			}
		})
	}
}

func TestCloudWatchCBORErrors(t *testing.T) {
	list := func(n int) cbor.List {
		l := cbor.List{}
		for i := 0; i < n; i++ {
			l = append(l, cbor.Map{"MetricName": cbor.String("m"), "Value": cbor.Float64(1)})
		}
		return l
	}
	cases := []struct {
		name, op  string
		in        cbor.Map
		status    int
		code, msg string
	}{
		{"negative integer", "GetMetricStatistics", cbor.Map{"Namespace": cbor.String("Lab"), "MetricName": cbor.String("CPU"), "StartTime": &cbor.Tag{ID: 1, Value: cbor.Uint(1)},
			"EndTime": &cbor.Tag{ID: 1, Value: cbor.Uint(2)}, "Period": cbor.NegInt(60), "Statistics": cbor.List{cbor.String("Sum")}}, 400, "InvalidParameterValue", "Period (-60)"},
		{"text for an integer", "PutMetricAlarm", cbor.Map{"AlarmName": cbor.String("a"), "Period": cbor.String("60")}, 400, "SerializationException", `"60" for parameter Period`},
		{"integer above int32", "PutMetricAlarm", cbor.Map{"AlarmName": cbor.String("a"), "Period": cbor.Uint(1 << 40)}, 400, "SerializationException", "32-bit integer"},
		{"text for a timestamp", "DescribeAlarmHistory", cbor.Map{"StartDate": cbor.String("yesterday")}, 400, "SerializationException", "StartDate"},
		{"missing member", "SetAlarmState", cbor.Map{"AlarmName": cbor.String("a"), "StateValue": cbor.String("OK")}, 400, "MissingParameter", "StateReason"},
		{"1001 datums", "PutMetricData", cbor.Map{"Namespace": cbor.String("Lab"), "MetricData": list(1001)}, 400, "InvalidParameterValue", "MetricData must not have more than 1000"},
		{"1000 datums", "PutMetricData", cbor.Map{"Namespace": cbor.String("Lab"), "MetricData": list(1000)}, 200, "", ""},
	}
	s := newCWServer(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, cloudwatchPrefix+c.op, bytes.NewReader(cbor.Encode(c.in)))
			req.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
			req.Header.Set("Authorization", sigv4("monitoring"))
			rec := serve(s, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %q", rec.Code, c.status, rec.Body)
			}
			if c.code == "" {
				return
			}
			if got := rec.Header().Get("X-Amzn-Query-Error"); got != c.code+";Sender" {
				t.Errorf("X-Amzn-Query-Error %q, want %s;Sender", got, c.code)
			}
			v, err := cbor.Decode(rec.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			m, _ := fromCBOR(v).(map[string]any)
			if msg, _ := m["message"].(string); !strings.Contains(msg, c.msg) {
				t.Errorf("message %q does not contain %q", msg, c.msg)
			}
		})
	}
}

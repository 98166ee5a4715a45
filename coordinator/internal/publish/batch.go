package publish

import (
	"strconv"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// AWS's PutMetricData limits per request.
const (
	MaxDatumsPerRequest = 1000
	MaxRequestBytes     = 1 << 20
)

// Stats is one period's aggregate of one series: a CloudWatch StatisticSet.
type Stats struct {
	SampleCount, Sum, Min, Max float64
}

// FleetStats is one fleet's aggregates for one period.
type FleetStats struct {
	Fleet string
	// Group is the Auto Scaling group, the series' AutoScalingGroupName.
	Group string
	// Metrics are fleet-wide aggregates keyed by Shoal metric name.
	Metrics map[string]Stats
	// PerInstance turns on the per-instance series in Instances (instance
	// ID → metric → stats); without it Instances is ignored.
	PerInstance bool
	Instances   map[string]map[string]Stats
}

// Period is every fleet's aggregates for the period that starts at Start.
// Start identifies the period: it is the datums' timestamp and the watermark.
type Period struct {
	Start  time.Time
	Fleets []FleetStats
	// Lost are loss records sent with this period as PeriodsLost datums,
	// each at its own period's timestamp.
	Lost []Loss
}

// request is one PutMetricData call's worth of datums, all from one period.
type request struct {
	period time.Time
	datums []types.MetricDatum
	bytes  int
	last   bool // the period's last request: once it is sent or dropped the period is settled
}

// splitter packs datums into requests under the count and size limits.
type splitter struct {
	maxDatums, maxBytes int
	period              time.Time
	out                 []request
	cur                 request
}

func (s *splitter) add(d types.MetricDatum) {
	n := datumSize(d)
	if len(s.cur.datums) > 0 && (len(s.cur.datums)+1 > s.maxDatums || s.cur.bytes+n > s.maxBytes) {
		s.out = append(s.out, s.cur)
		s.cur = request{}
	}
	s.cur.period = s.period
	s.cur.datums = append(s.cur.datums, d)
	s.cur.bytes += n
}

func (s *splitter) done() []request {
	if len(s.cur.datums) > 0 {
		s.out = append(s.out, s.cur)
		s.cur = request{}
	}
	if len(s.out) > 0 {
		s.out[len(s.out)-1].last = true
	}
	return s.out
}

// requestOverhead is what a PutMetricData request costs besides its datums
// (action, version, namespace, or the CBOR envelope).
const requestOverhead = 128

// datumSize is an upper bound on the bytes a datum adds to a request: its
// length in the awsQuery form encoding (key=value&...), which is larger than
// its RPC v2 CBOR encoding, so a request under the limit in one protocol is
// under it in the other.
func datumSize(d types.MetricDatum) int {
	const prefix = len("MetricData.member.1000.")
	n := 0
	field := func(keyLen, vlen int) { n += prefix + keyLen + 1 + vlen + 1 }
	field(len("MetricName"), len(sdkaws.ToString(d.MetricName)))
	for i, dim := range d.Dimensions {
		k := len("Dimensions.member.") + len(strconv.Itoa(i+1)) + 1
		field(k+len("Name"), len(sdkaws.ToString(dim.Name)))
		field(k+len("Value"), len(sdkaws.ToString(dim.Value)))
	}
	if d.Timestamp != nil {
		field(len("Timestamp"), len(time.RFC3339Nano))
	}
	if d.StatisticValues != nil {
		// The longest %g of a float64 is 24 characters.
		field(len("StatisticValues.SampleCount"), 24)
		field(len("StatisticValues.Sum"), 24)
		field(len("StatisticValues.Minimum"), 24)
		field(len("StatisticValues.Maximum"), 24)
	}
	if d.Value != nil {
		field(len("Value"), 24)
	}
	if d.Unit != "" {
		field(len("Unit"), len(d.Unit))
	}
	if d.StorageResolution != nil {
		field(len("StorageResolution"), 2)
	}
	return n
}

func dims(kv ...string) []types.Dimension {
	out := make([]types.Dimension, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Dimension{Name: sdkaws.String(kv[i]), Value: sdkaws.String(kv[i+1])})
	}
	return out
}

func datum(metric, unit string, ts *time.Time, st Stats, resolution int32, d []types.Dimension) types.MetricDatum {
	return types.MetricDatum{
		MetricName: sdkaws.String(metric),
		Dimensions: d,
		Timestamp:  ts,
		StatisticValues: &types.StatisticSet{
			SampleCount: sdkaws.Float64(st.SampleCount),
			Sum:         sdkaws.Float64(st.Sum),
			Minimum:     sdkaws.Float64(st.Min),
			Maximum:     sdkaws.Float64(st.Max),
		},
		Unit:              types.StandardUnit(unit),
		StorageResolution: sdkaws.Int32(resolution),
	}
}

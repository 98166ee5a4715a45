package cwstore

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Sentinel errors; the protocol layer maps them to CloudWatch error codes.
var (
	ErrInvalidParameter   = errors.New("invalid parameter value")
	ErrInvalidCombination = errors.New("invalid parameter combination")
	ErrMissingParameter   = errors.New("missing required parameter")
	ErrResourceNotFound   = errors.New("resource not found")
	// ErrLimitExceeded bounds the local cloud's memory: CloudWatch has no
	// metric count limit, an in-memory double must.
	ErrLimitExceeded     = errors.New("limit exceeded")
	errTooManyDatapoints = fmt.Errorf("%w: too many datapoints", ErrInvalidCombination)
)

const (
	maxPointsPerMetric = 200_000
	// MaxSeries is the most distinct metrics (namespace, name, dimensions)
	// the store keeps.
	MaxSeries = 100_000
)

// Datapoint limits per request, as CloudWatch enforces them.
const (
	MaxStatisticsDatapoints = 1440   // GetMetricStatistics
	MaxMetricDataDatapoints = 100800 // GetMetricData, per call
)

// Dimension is one name/value pair of a metric identity.
type Dimension struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// MetricID identifies a metric: namespace, name and the exact dimension set.
type MetricID struct {
	Namespace  string      `json:"namespace"`
	MetricName string      `json:"metricName"`
	Dimensions []Dimension `json:"dimensions,omitempty"`
}

func (m MetricID) key() string {
	dims := append([]Dimension(nil), m.Dimensions...)
	sort.Slice(dims, func(i, j int) bool { return dims[i].Name < dims[j].Name })
	var b strings.Builder
	b.WriteString(m.Namespace)
	b.WriteByte(0)
	b.WriteString(m.MetricName)
	for _, d := range dims {
		b.WriteByte(0)
		b.WriteString(d.Name)
		b.WriteByte('=')
		b.WriteString(d.Value)
	}
	return b.String()
}

// Datum is one PutMetricData entry after decoding: either a list of values
// (with counts) or a statistic set.
type Datum struct {
	Metric            MetricID
	Timestamp         time.Time
	Values            []float64
	Counts            []float64
	Stats             *StatisticSet
	Unit              string
	StorageResolution int
}

// StatisticSet is a pre-aggregated datum.
type StatisticSet struct {
	SampleCount, Sum, Minimum, Maximum float64
}

type point struct {
	ts    time.Time
	stats StatisticSet
	// values keeps raw samples (not statistic sets) for percentiles.
	values []float64
	unit   string
}

type series struct {
	id     MetricID
	points []point // sorted by ts
}

// Store holds datapoints per metric.
type Store struct {
	series map[string]*series
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{series: map[string]*series{}} }

// Validate checks one datum as PutMetricData does.
func (d Datum) Validate(now time.Time) error {
	switch {
	case d.Metric.Namespace == "":
		return fmt.Errorf("%w: Namespace is required", ErrMissingParameter)
	case strings.HasPrefix(d.Metric.Namespace, "AWS/"):
		return fmt.Errorf("%w: Namespace %q: the AWS/ prefix is reserved for AWS services", ErrInvalidParameter, d.Metric.Namespace)
	case d.Metric.MetricName == "":
		return fmt.Errorf("%w: MetricData.member.N.MetricName is required", ErrMissingParameter)
	case len(d.Metric.Dimensions) > 30:
		return fmt.Errorf("%w: Dimensions: at most 30 dimensions, got %d", ErrInvalidParameter, len(d.Metric.Dimensions))
	case d.StorageResolution != 0 && d.StorageResolution != 1 && d.StorageResolution != 60:
		return fmt.Errorf("%w: StorageResolution (%d) must be 1 or 60", ErrInvalidParameter, d.StorageResolution)
	case d.Stats != nil && len(d.Values) > 0:
		return fmt.Errorf("%w: StatisticValues and Values are mutually exclusive", ErrInvalidCombination)
	case len(d.Counts) > 0 && len(d.Counts) != len(d.Values):
		return fmt.Errorf("%w: Counts (%d) must have as many entries as Values (%d)", ErrInvalidParameter, len(d.Counts), len(d.Values))
	case len(d.Values) > 150:
		return fmt.Errorf("%w: Values: at most 150 values, got %d", ErrInvalidParameter, len(d.Values))
	}
	for _, dim := range d.Metric.Dimensions {
		if dim.Name == "" || dim.Value == "" {
			return fmt.Errorf("%w: Dimensions: name and value must be non-empty", ErrInvalidParameter)
		}
	}
	if d.Stats != nil {
		s := d.Stats
		if s.SampleCount <= 0 {
			return fmt.Errorf("%w: StatisticValues.SampleCount (%v) must be > 0", ErrInvalidParameter, s.SampleCount)
		}
		if s.Minimum > s.Maximum {
			return fmt.Errorf("%w: StatisticValues.Minimum (%v) must be <= Maximum (%v)", ErrInvalidParameter, s.Minimum, s.Maximum)
		}
	}
	for _, v := range d.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: Values: NaN and Infinity are not accepted", ErrInvalidParameter)
		}
	}
	// CloudWatch accepts data up to two weeks old and two hours ahead.
	if !d.Timestamp.IsZero() {
		if d.Timestamp.Before(now.Add(-14*24*time.Hour)) || d.Timestamp.After(now.Add(2*time.Hour)) {
			return fmt.Errorf("%w: Timestamp %s must be within two weeks in the past and two hours in the future", ErrInvalidParameter, d.Timestamp.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// Put stores validated data. A datum without timestamp is stamped now.
// Standard-resolution data (60) is stored at minute granularity, as
// CloudWatch does, so it cannot be read back at 1-second periods.
func (s *Store) Put(now time.Time, data []Datum) error {
	fresh := map[string]bool{}
	for _, d := range data {
		if err := d.Validate(now); err != nil {
			return err
		}
		if k := d.Metric.key(); s.series[k] == nil {
			fresh[k] = true
		}
	}
	if len(s.series)+len(fresh) > MaxSeries {
		return fmt.Errorf("%w: the local cloud keeps at most %d distinct metrics", ErrLimitExceeded, MaxSeries)
	}
	for _, d := range data {
		ts := d.Timestamp
		if ts.IsZero() {
			ts = now
		}
		if d.StorageResolution != 1 {
			ts = ts.Truncate(time.Minute)
		} else {
			ts = ts.Truncate(time.Second)
		}
		p := point{ts: ts.UTC(), unit: d.Unit}
		switch {
		case d.Stats != nil:
			p.stats = *d.Stats
		case len(d.Values) > 0:
			p.stats = StatisticSet{Minimum: math.Inf(1), Maximum: math.Inf(-1)}
			for i, v := range d.Values {
				c := 1.0
				if len(d.Counts) > 0 {
					c = d.Counts[i]
				}
				p.stats.SampleCount += c
				p.stats.Sum += v * c
				p.stats.Minimum = math.Min(p.stats.Minimum, v)
				p.stats.Maximum = math.Max(p.stats.Maximum, v)
				if c == 1 {
					p.values = append(p.values, v)
				}
			}
		default:
			// A datum with neither Value nor Values is a single 0, as on AWS
			// (Value defaults to 0 in the query-compatible model).
			p.stats = StatisticSet{SampleCount: 1}
			p.values = []float64{0}
		}
		s.insert(d.Metric, p)
	}
	return nil
}

func (s *Store) insert(id MetricID, p point) {
	k := id.key()
	se := s.series[k]
	if se == nil {
		se = &series{id: id}
		s.series[k] = se
	}
	i := sort.Search(len(se.points), func(i int) bool { return se.points[i].ts.After(p.ts) })
	se.points = append(se.points, point{})
	copy(se.points[i+1:], se.points[i:])
	se.points[i] = p
	if len(se.points) > maxPointsPerMetric {
		se.points = se.points[len(se.points)-maxPointsPerMetric:]
	}
}

// Prune drops data older than retention before now.
func (s *Store) Prune(now time.Time, retention time.Duration) {
	cut := now.Add(-retention)
	for k, se := range s.series {
		i := sort.Search(len(se.points), func(i int) bool { return !se.points[i].ts.Before(cut) })
		se.points = se.points[i:]
		if len(se.points) == 0 {
			delete(s.series, k)
		}
	}
}

// List returns metrics matching the filter (empty fields match anything;
// a dimension filter with empty Value matches any value of that name).
func (s *Store) List(namespace, name string, dims []Dimension) []MetricID {
	var out []MetricID
	for _, se := range s.series {
		if namespace != "" && se.id.Namespace != namespace {
			continue
		}
		if name != "" && se.id.MetricName != name {
			continue
		}
		if !matchDims(se.id.Dimensions, dims) {
			continue
		}
		out = append(out, se.id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

func matchDims(have, filter []Dimension) bool {
	for _, f := range filter {
		found := false
		for _, h := range have {
			if h.Name == f.Name && (f.Value == "" || h.Value == f.Value) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Aggregate is one period's statistics.
type Aggregate struct {
	Start  time.Time
	Stats  StatisticSet
	values []float64
	Unit   string
}

// Statistic returns the named statistic (SampleCount, Average, Sum,
// Minimum, Maximum, or a percentile pNN[.N] computed over raw values).
func (a Aggregate) Statistic(name string) (float64, bool) {
	switch name {
	case "SampleCount":
		return a.Stats.SampleCount, true
	case "Average":
		if a.Stats.SampleCount == 0 {
			return 0, false
		}
		return a.Stats.Sum / a.Stats.SampleCount, true
	case "Sum":
		return a.Stats.Sum, true
	case "Minimum":
		return a.Stats.Minimum, true
	case "Maximum":
		return a.Stats.Maximum, true
	}
	if q, ok := ParsePercentile(name); ok {
		if len(a.values) == 0 {
			return 0, false
		}
		v := append([]float64(nil), a.values...)
		sort.Float64s(v)
		idx := int(math.Ceil(q/100*float64(len(v)))) - 1
		idx = max(0, min(idx, len(v)-1))
		return v[idx], true
	}
	return 0, false
}

// ParsePercentile parses "p99" or "p99.9" into 99 / 99.9.
func ParsePercentile(s string) (float64, bool) {
	if len(s) < 2 || s[0] != 'p' {
		return 0, false
	}
	var q float64
	if _, err := fmt.Sscanf(s[1:], "%g", &q); err != nil || q < 0 || q > 100 {
		return 0, false
	}
	return q, true
}

// ValidStatistic reports whether name is a statistic the store computes.
func ValidStatistic(name string) bool {
	switch name {
	case "SampleCount", "Average", "Sum", "Minimum", "Maximum":
		return true
	}
	_, ok := ParsePercentile(name)
	return ok
}

// ValidateQueryPeriod checks a GetMetricStatistics/GetMetricData period.
func ValidateQueryPeriod(period int) error {
	switch {
	case period <= 0:
		return fmt.Errorf("%w: Period (%d) must be > 0", ErrInvalidParameter, period)
	case period < 60 && period != 1 && period != 5 && period != 10 && period != 20 && period != 30:
		return fmt.Errorf("%w: Period (%d) must be 1, 5, 10, 20, 30 or a multiple of 60", ErrInvalidParameter, period)
	case period >= 60 && period%60 != 0:
		return fmt.Errorf("%w: Period (%d) must be 1, 5, 10, 20, 30 or a multiple of 60", ErrInvalidParameter, period)
	}
	return nil
}

// Query aggregates one metric into periods over [start, end). unit, when
// set, keeps only data with that unit. Periods with no data are absent. A
// range holding more than maxPoints periods is refused.
func (s *Store) Query(id MetricID, start, end time.Time, period time.Duration, unit string, maxPoints int) ([]Aggregate, error) {
	if !start.Before(end) {
		return nil, fmt.Errorf("%w: StartTime (%s) must be before EndTime (%s)", ErrInvalidParameter, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	}
	if n := int64(end.Sub(start) / period); n > int64(maxPoints) {
		return nil, fmt.Errorf("%w: you requested up to %d datapoints, which exceeds the limit of %d", errTooManyDatapoints, n, maxPoints)
	}
	se := s.series[id.key()]
	if se == nil {
		return nil, nil
	}
	buckets := map[int64]*Aggregate{}
	var order []int64
	i := sort.Search(len(se.points), func(i int) bool { return !se.points[i].ts.Before(start) })
	for ; i < len(se.points) && se.points[i].ts.Before(end); i++ {
		p := se.points[i]
		if unit != "" && p.unit != unit {
			continue
		}
		// Periods align to the query start, as GetMetricStatistics does.
		b := int64(p.ts.Sub(start) / period)
		a := buckets[b]
		if a == nil {
			a = &Aggregate{Start: start.Add(time.Duration(b) * period), Stats: StatisticSet{Minimum: math.Inf(1), Maximum: math.Inf(-1)}, Unit: p.unit}
			buckets[b] = a
			order = append(order, b)
		}
		a.Stats.SampleCount += p.stats.SampleCount
		a.Stats.Sum += p.stats.Sum
		a.Stats.Minimum = math.Min(a.Stats.Minimum, p.stats.Minimum)
		a.Stats.Maximum = math.Max(a.Stats.Maximum, p.stats.Maximum)
		a.values = append(a.values, p.values...)
	}
	out := make([]Aggregate, 0, len(order))
	for _, b := range order {
		out = append(out, *buckets[b])
	}
	return out, nil
}

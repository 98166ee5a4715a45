package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
)

// Query asks for one series of one fleet.
type Query struct {
	Group  string
	Metric string // Shoal name (cpu) or custom name
	// Stat is a CloudWatch statistic: Average (default), Sum, SampleCount,
	// Minimum, Maximum.
	Stat string
	// Start and End bound the series; End defaults to now.
	Start, End time.Time
	// Period is the step; it defaults to 10 s and must be a multiple of 1 s.
	Period time.Duration
	// InstanceID selects the per-instance series.
	InstanceID string
}

// Point is one value of a series; view.Point is its JSON.
type Point struct {
	T time.Time
	V float64
}

// Reader reads Shoal series back from CloudWatch.
type Reader struct {
	api     API
	cluster string
}

// NewReader returns a Reader of cluster's series.
func NewReader(api API, cluster string) *Reader { return &Reader{api: api, cluster: cluster} }

var validStats = map[string]bool{"Average": true, "Sum": true, "SampleCount": true, "Minimum": true, "Maximum": true}

// Series returns the points of q, oldest first, following pagination.
func (r *Reader) Series(ctx context.Context, q Query) ([]Point, error) {
	if q.Stat == "" {
		q.Stat = "Average"
	}
	if q.Period == 0 {
		q.Period = 10 * time.Second
	}
	if q.End.IsZero() {
		q.End = time.Now()
	}
	switch {
	case q.Group == "":
		return nil, errors.New("group: must not be empty")
	case q.Metric == "":
		return nil, errors.New("metric: must not be empty")
	case !validStats[q.Stat]:
		return nil, fmt.Errorf("stat (%q) must be Average, Sum, SampleCount, Minimum or Maximum", q.Stat)
	case q.Period < time.Second || q.Period%time.Second != 0:
		return nil, fmt.Errorf("period (%v) must be a whole number of seconds", q.Period)
	case !q.Start.Before(q.End):
		return nil, fmt.Errorf("start (%s) must be before end (%s)", q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339))
	}
	d := dims(DimGroup, q.Group, DimCluster, r.cluster)
	if q.InstanceID != "" {
		d = append(d, dims(DimInstance, q.InstanceID)...)
	}
	return r.fetch(ctx, CloudWatchName(q.Metric), d, q)
}

// LostPeriods returns the cluster's PeriodsLost record between start and
// end: per step, how many periods were recorded lost (ARCHITECTURE.md,
// "Publishing across a leader change").
func (r *Reader) LostPeriods(ctx context.Context, start, end time.Time, period time.Duration) ([]Point, error) {
	if period < time.Second || period%time.Second != 0 {
		return nil, fmt.Errorf("period (%v) must be a whole number of seconds", period)
	}
	if !start.Before(end) {
		return nil, fmt.Errorf("start (%s) must be before end (%s)", start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return r.fetch(ctx, PeriodsLostMetric, dims(DimCluster, r.cluster), Query{Stat: "Sum", Start: start, End: end, Period: period})
}

func (r *Reader) fetch(ctx context.Context, name string, d []types.Dimension, q Query) ([]Point, error) {
	in := &cloudwatch.GetMetricDataInput{
		StartTime: sdkaws.Time(q.Start),
		EndTime:   sdkaws.Time(q.End),
		ScanBy:    types.ScanByTimestampAscending,
		MetricDataQueries: []types.MetricDataQuery{{
			Id: sdkaws.String("m0"),
			MetricStat: &types.MetricStat{
				Metric: &types.Metric{Namespace: sdkaws.String(Namespace), MetricName: sdkaws.String(name), Dimensions: d},
				Period: sdkaws.Int32(int32(q.Period / time.Second)),
				Stat:   sdkaws.String(q.Stat),
			},
			ReturnData: sdkaws.Bool(true),
		}},
	}
	var pts []Point
	p := cloudwatch.NewGetMetricDataPaginator(r.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, awscloud.Translate(OpGetMetricData, err)
		}
		for _, res := range page.MetricDataResults {
			for i := range min(len(res.Timestamps), len(res.Values)) {
				pts = append(pts, Point{T: res.Timestamps[i], V: res.Values[i]})
			}
		}
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].T.Before(pts[j].T) })
	return pts, nil
}

var sparks = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws values in width cells (values are averaged into cells
// when there are more of them than cells). NaN cells are blank; a flat series
// is drawn at mid height.
func Sparkline(values []float64, width int) string {
	if width <= 0 || len(values) == 0 {
		return ""
	}
	cells := values
	if len(values) > width {
		cells = make([]float64, width)
		for c := range width {
			lo, hi := c*len(values)/width, (c+1)*len(values)/width
			sum, n := 0.0, 0
			for _, v := range values[lo:hi] {
				if !math.IsNaN(v) {
					sum += v
					n++
				}
			}
			cells[c] = math.NaN()
			if n > 0 {
				cells[c] = sum / float64(n)
			}
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range cells {
		if !math.IsNaN(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	var b strings.Builder
	for _, v := range cells {
		switch {
		case math.IsNaN(v):
			b.WriteRune(' ')
		case hi == lo:
			b.WriteRune(sparks[len(sparks)/2-1])
		default:
			i := int((v - lo) / (hi - lo) * float64(len(sparks)-1))
			b.WriteRune(sparks[i])
		}
	}
	return b.String()
}

// WriteSeries prints pts as `metrics FLEET` shows them: one line per point
// (UTC time and value), then the sparkline between the lowest and highest
// value. width bounds the sparkline.
func WriteSeries(w io.Writer, metric, stat string, pts []Point, width int) error {
	if len(pts) == 0 {
		_, err := fmt.Fprintf(w, "%s (%s): no data\n", metric, stat)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TIME\t%s (%s)\n", strings.ToUpper(metric), stat)
	vals := make([]float64, len(pts))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, p := range pts {
		fmt.Fprintf(tw, "%s\t%s\n", p.T.UTC().Format(time.DateTime), strconv.FormatFloat(p.V, 'f', -1, 64))
		vals[i] = p.V
		lo, hi = math.Min(lo, p.V), math.Max(hi, p.V)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s  min %s  max %s\n", Sparkline(vals, width), strconv.FormatFloat(lo, 'f', -1, 64), strconv.FormatFloat(hi, 'f', -1, 64))
	return err
}

// WriteLost prints the PeriodsLost record under a series: nothing when no
// period was lost, else how many and when, so a gap in the series is
// explained rather than silent.
func WriteLost(w io.Writer, lost []Point) error {
	var when []string
	total := 0.0
	for _, p := range lost {
		if p.V > 0 {
			total += p.V
			when = append(when, p.T.UTC().Format(time.TimeOnly))
		}
	}
	if total == 0 {
		return nil
	}
	_, err := fmt.Fprintf(w, "periods recorded lost by the cluster in this window: %s (at %s); the leader's log and shoal_cloudwatch_periods_lost_total{reason} say why\n",
		strconv.FormatFloat(total, 'f', -1, 64), strings.Join(when, ", "))
	return err
}

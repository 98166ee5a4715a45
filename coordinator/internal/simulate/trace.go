package simulate

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ErrBadTrace is wrapped by every trace parsing error.
var ErrBadTrace = errors.New("bad trace")

// Point is one row of a trace: demand in requests/s from second T on.
type Point struct {
	T      int64
	Demand float64
}

// Trace is demand over time. Demand holds between points (a step function).
type Trace []Point

// Limits on a trace. The model keeps a few numbers per policy for every
// second of the trace, so the time column bounds memory (31 days of seconds
// is about 100 MB for three policies). Demand is bounded so that demand in
// instances and the scorecard's sums stay exact.
const (
	MaxTraceSeconds = 31 * 24 * 3600
	MaxDemand       = 1e9
)

// ReadTrace parses a CSV with the header `time,demand`: time in whole or
// fractional seconds from the start, strictly increasing, at most
// MaxTraceSeconds; demand in [0, MaxDemand] requests/s. Errors name the line
// and the field.
func ReadTrace(r io.Reader) (Trace, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	var out Trace
	header := false
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// FieldPos panics after a failed Read; csv.ParseError names the
			// line and column itself.
			return nil, fmt.Errorf("%w: %w", ErrBadTrace, err)
		}
		line, _ := cr.FieldPos(0)
		if !header {
			if len(rec) != 2 || strings.TrimSpace(rec[0]) != "time" || strings.TrimSpace(rec[1]) != "demand" {
				return nil, fmt.Errorf("%w: line %d: header must be \"time,demand\", got %q", ErrBadTrace, line, strings.Join(rec, ","))
			}
			header = true
			continue
		}
		if len(rec) != 2 {
			return nil, fmt.Errorf("%w: line %d: want 2 fields (time,demand), got %d", ErrBadTrace, line, len(rec))
		}
		ts, err := strconv.ParseFloat(strings.TrimSpace(rec[0]), 64)
		if err != nil || math.IsNaN(ts) || math.IsInf(ts, 0) {
			return nil, fmt.Errorf("%w: line %d: time: not a number: %q", ErrBadTrace, line, rec[0])
		}
		if ts < 0 {
			return nil, fmt.Errorf("%w: line %d: time: must be >= 0 (got %v)", ErrBadTrace, line, ts)
		}
		if ts > MaxTraceSeconds {
			return nil, fmt.Errorf("%w: line %d: time: must be at most %d s (31 days) (got %v)", ErrBadTrace, line, MaxTraceSeconds, ts)
		}
		d, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil || math.IsNaN(d) || math.IsInf(d, 0) {
			return nil, fmt.Errorf("%w: line %d: demand: not a number: %q", ErrBadTrace, line, rec[1])
		}
		if d < 0 {
			return nil, fmt.Errorf("%w: line %d: demand: must be >= 0 (got %v)", ErrBadTrace, line, d)
		}
		if d > MaxDemand {
			return nil, fmt.Errorf("%w: line %d: demand: must be at most %g requests/s (got %v)", ErrBadTrace, line, float64(MaxDemand), d)
		}
		t := int64(math.Round(ts))
		if n := len(out); n > 0 && t <= out[n-1].T {
			return nil, fmt.Errorf("%w: line %d: time: must increase by at least 1 s (got %v after %d)", ErrBadTrace, line, ts, out[n-1].T)
		}
		out = append(out, Point{T: t, Demand: d})
	}
	if !header {
		return nil, fmt.Errorf("%w: empty: want the header \"time,demand\"", ErrBadTrace)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no rows after the header", ErrBadTrace)
	}
	return out, nil
}

// Seconds returns demand for every second from the first point to the last,
// holding each value until the next point.
func (tr Trace) Seconds() []float64 {
	if len(tr) == 0 {
		return nil
	}
	start, end := tr[0].T, tr[len(tr)-1].T
	out := make([]float64, 0, end-start+1)
	i := 0
	for t := start; t <= end; t++ {
		for i+1 < len(tr) && tr[i+1].T <= t {
			i++
		}
		out = append(out, tr[i].Demand)
	}
	return out
}

// checkInstances refuses a trace whose demand, counted in instances of
// perInstance requests/s, does not fit the int32 the scorecard counts in: a
// wrapped count scored as negative over-provisioning.
func (tr Trace) checkInstances(perInstance float64) error {
	if !(perInstance > 0) {
		return nil // the policy or config check that runs next names the cause
	}
	for _, p := range tr {
		if n := math.Ceil(p.Demand / perInstance); n > math.MaxInt32 {
			return fmt.Errorf("%w: time %d s: demand: %v requests/s is %v instances at %v requests/s each, more than %d", ErrBadTrace, p.T, p.Demand, n, perInstance, math.MaxInt32)
		}
	}
	return nil
}

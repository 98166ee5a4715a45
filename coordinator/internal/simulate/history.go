package simulate

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// HistoryPoint is one step of a fleet's recorded history: the policy
// metric's fleet average over Step and how many samples it averaged (one
// per reporting instance per second).
type HistoryPoint struct {
	T          time.Time
	Step       time.Duration
	Avg, Count float64
}

// History reads a fleet's history: the metric its policy tracks and the
// points, oldest first. The coordinator's CLI provides it (CloudWatch);
// this package never touches the network itself.
type History func(ctx context.Context, fleet string, since time.Duration) (metric string, pts []HistoryPoint, err error)

// TraceFromHistory turns history into demand in requests/s, the unit the
// simulator's fleet model takes: instances reporting (Count per second of
// the step) times the metric, in requests/s for requests_per_target and in
// percent of capacityPerInstance otherwise. Time is seconds from the first
// point; each point holds until the next, as trace rows do.
func TraceFromHistory(pts []HistoryPoint, metric string, capacityPerInstance float64) (Trace, error) {
	if len(pts) == 0 {
		return nil, fmt.Errorf("%w: history: no datapoints with both an average and a sample count", ErrBadTrace)
	}
	perUnit := capacityPerInstance / 100
	if metric == "requests_per_target" {
		perUnit = 1
	}
	t0 := pts[0].T
	var out Trace
	for _, p := range pts {
		secs := p.Step.Seconds()
		if secs < 1 {
			return nil, fmt.Errorf("%w: history: step %v: must be at least 1 s", ErrBadTrace, p.Step)
		}
		t := int64(p.T.Sub(t0) / time.Second)
		if t > MaxTraceSeconds {
			return nil, fmt.Errorf("%w: history: spans more than %d s (31 days)", ErrBadTrace, MaxTraceSeconds)
		}
		if n := len(out); n > 0 && t <= out[n-1].T {
			continue // an overlap between resolutions: keep the first
		}
		d := p.Avg * (p.Count / secs) * perUnit
		if math.IsNaN(d) || math.IsInf(d, 0) || d < 0 || d > MaxDemand {
			return nil, fmt.Errorf("%w: history: %s: demand %v from average %v × %v samples: must be in [0, %g]", ErrBadTrace, p.T.UTC().Format(time.RFC3339), d, p.Avg, p.Count, float64(MaxDemand))
		}
		out = append(out, Point{T: t, Demand: math.Round(d*10) / 10})
	}
	return out, nil
}

// WriteTrace writes tr as `time,demand` CSV, the form ReadTrace takes.
func WriteTrace(w io.Writer, tr Trace) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "time,demand")
	for _, p := range tr {
		fmt.Fprintf(bw, "%d,%s\n", p.T, strconv.FormatFloat(p.Demand, 'f', -1, 64))
	}
	return bw.Flush()
}

// parseSince reads a duration that may also be whole days: "14d", "36h".
func parseSince(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 31 {
			return 0, fmt.Errorf("--since (%q): want whole days from 1d to 31d, or a Go duration such as 36h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--since (%q): want whole days from 1d to 31d, or a Go duration such as 36h", s)
	}
	return d, nil
}

func fetchHistory(cmd *cobra.Command, history History, fleet, sinceFlag, out string, capacity float64) error {
	switch {
	case fleet == "":
		return fmt.Errorf("--write-trace: only with --from-cloudwatch FLEET")
	case out == "":
		return fmt.Errorf("--from-cloudwatch: needs --write-trace FILE")
	case history == nil:
		return fmt.Errorf("--from-cloudwatch: not available in this binary; run `shoal-coordinator simulate`")
	}
	since, err := parseSince(sinceFlag)
	if err != nil {
		return err
	}
	metric, pts, err := history(cmd.Context(), fleet, since)
	if err != nil {
		return fmt.Errorf("--from-cloudwatch %s: %w", fleet, err)
	}
	tr, err := TraceFromHistory(pts, metric, capacity)
	if err != nil {
		return fmt.Errorf("--from-cloudwatch %s: %w", fleet, err)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("--write-trace: %w", err)
	}
	if err := WriteTrace(f, tr); err != nil {
		f.Close()
		return fmt.Errorf("--write-trace: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--write-trace: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d rows over %d s from %s's %s history\n", out, len(tr), tr[len(tr)-1].T, fleet, metric)
	return nil
}

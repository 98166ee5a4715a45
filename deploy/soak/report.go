package soak

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"
)

// Report is report.json; scripts rely on its field names.
type Report struct {
	Started     time.Time `json:"started"`
	DurationS   float64   `json:"duration_s"`
	WarmUpS     float64   `json:"warm_up_s"`
	SampleEvery float64   `json:"sample_every_s"`
	Spikes      int       `json:"spikes"`
	Requests    Requests  `json:"requests"`
	Processes   []Process `json:"processes"`
	// MetricsErrors counts /metrics reads that failed (a process busy or
	// stopping); their points carry goroutines -1.
	MetricsErrors int `json:"metrics_errors"`
	// LeaderChanges are the leaders seen, sampled as often as the
	// processes; the first is the leader the load began with.
	LeaderChanges []LeaderChange `json:"leader_changes"`
}

// LeaderChange is a new leader or term seen at T seconds.
type LeaderChange struct {
	T      float64   `json:"t_s"`
	At     time.Time `json:"at"`
	Leader string    `json:"leader"`
	Term   uint64    `json:"term"`
}

// Requests are the load generators' totals.
type Requests struct {
	Total  int `json:"total"`
	OK     int `json:"ok"`
	Failed int `json:"failed"`
	// Unsent are requests the schedule called for that the generator never
	// sent, because every one of its connections was still waiting for an
	// answer (loadtest's dropped=): load the run did not offer. The demo
	// counts them in failed_requests; here they are shown apart, since the
	// soak's few connections per phase, not the system, may hold them back.
	Unsent int `json:"unsent"`
	// FailedByCode is loadtest's errors_by_code (http_503, timeout, ...).
	FailedByCode map[string]int `json:"failed_by_code,omitempty"`
}

// Process is one process's summary. Slopes are per hour over the points
// after the warm-up; a nil slope was not computed (the process lived too
// short after the warm-up, or serves no /metrics for goroutines).
type Process struct {
	Name       string     `json:"name"`
	PID        int        `json:"pid"`
	Exe        string     `json:"exe"`
	Samples    int        `json:"samples"`
	FirstS     float64    `json:"first_s"`
	LastS      float64    `json:"last_s"`
	RSSMiB     [2]float64 `json:"rss_mib_first_last"`
	FDs        [2]int     `json:"fds_first_last"`
	Goroutines [2]int     `json:"goroutines_first_last"`
	RSSSlope   *float64   `json:"rss_mib_per_hour"`
	FDSlope    *float64   `json:"fds_per_hour"`
	GoSlope    *float64   `json:"goroutines_per_hour"`
	Points     []Point    `json:"points"`
}

// minSlopePoints is how many points after the warm-up a slope needs.
const minSlopePoints = 3

// Summarize turns the sampler's series into report rows.
func Summarize(series []Series, warmUp time.Duration) []Process {
	out := make([]Process, 0, len(series))
	for _, se := range series {
		if len(se.Points) == 0 {
			continue
		}
		first, last := se.Points[0], se.Points[len(se.Points)-1]
		p := Process{
			Name: se.Name, PID: se.PID, Exe: se.Exe, Samples: len(se.Points), FirstS: first.T, LastS: last.T,
			RSSMiB:     [2]float64{mib(first.RSS), mib(last.RSS)},
			FDs:        [2]int{first.FDs, last.FDs},
			Goroutines: [2]int{first.Goroutines, last.Goroutines},
			Points:     se.Points,
		}
		var ts, rss, fds, gts, gs []float64
		for _, pt := range se.Points {
			if pt.T < warmUp.Seconds() {
				continue
			}
			ts = append(ts, pt.T)
			rss = append(rss, mib(pt.RSS))
			fds = append(fds, float64(pt.FDs))
			if pt.Goroutines >= 0 {
				gts = append(gts, pt.T)
				gs = append(gs, float64(pt.Goroutines))
			}
		}
		if len(ts) >= minSlopePoints {
			p.RSSSlope = slopePtr(ts, rss)
			p.FDSlope = slopePtr(ts, fds)
		}
		if len(gts) >= minSlopePoints {
			p.GoSlope = slopePtr(gts, gs)
		}
		out = append(out, p)
	}
	return out
}

func slopePtr(ts, ys []float64) *float64 {
	if s, ok := Slope(ts, ys); ok {
		return &s
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// WriteTable prints one row per process: its life, first and last values
// and slopes per hour.
func WriteTable(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "soak %s, started %s, warm-up %s, a sample every %s, %d spikes\n",
		time.Duration(r.DurationS*float64(time.Second)), r.Started.UTC().Format(time.RFC3339),
		time.Duration(r.WarmUpS*float64(time.Second)), time.Duration(r.SampleEvery*float64(time.Second)), r.Spikes)
	fmt.Fprintf(w, "requests: %d, ok %d, failed %d, unsent by the generator %d", r.Requests.Total, r.Requests.OK, r.Requests.Failed, r.Requests.Unsent)
	if len(r.Requests.FailedByCode) > 0 {
		fmt.Fprintf(w, " %v", r.Requests.FailedByCode)
	}
	fmt.Fprint(w, "\n")
	if n := len(r.LeaderChanges); n > 1 {
		fmt.Fprintf(w, "leader changes: %d (", n-1)
		for i, c := range r.LeaderChanges[1:] {
			if i > 0 {
				fmt.Fprint(w, ", ")
			}
			fmt.Fprintf(w, "%s %s", c.At.Format(time.TimeOnly), c.Leader)
		}
		fmt.Fprint(w, ")\n")
	} else {
		fmt.Fprintln(w, "leader changes: 0")
	}
	fmt.Fprint(w, "\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tlived (s)\tsamples\tRSS MiB\tMiB/h\tfds\tfds/h\tgoroutines\tgoroutines/h\t")
	for _, p := range r.Processes {
		fmt.Fprintf(tw, "%s\t%.0f–%.0f\t%d\t%.1f→%.1f\t%s\t%d→%d\t%s\t%s\t%s\t\n",
			p.Name, p.FirstS, p.LastS, p.Samples, p.RSSMiB[0], p.RSSMiB[1], fmtSlope(p.RSSSlope, 1),
			p.FDs[0], p.FDs[1], fmtSlope(p.FDSlope, 1), fmtPair(p.Goroutines), fmtSlope(p.GoSlope, 1))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\nslopes: least squares over the samples after the warm-up; – where a process lived too short after it or serves no /metrics")
	return err
}

func fmtSlope(s *float64, prec int) string {
	if s == nil {
		return "–"
	}
	return strconv.FormatFloat(*s, 'f', prec, 64)
}

func fmtPair(g [2]int) string {
	if g[0] < 0 && g[1] < 0 {
		return "–"
	}
	return fmt.Sprintf("%d→%d", g[0], g[1])
}

// Write writes report.json and report.txt into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.txt"))
	if err != nil {
		return err
	}
	if err := WriteTable(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

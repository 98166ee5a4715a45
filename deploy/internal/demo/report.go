package demo

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// TimelineHeader is timeline.csv's header: the live line's columns.
var TimelineHeader = []string{"t", "rps", "p99", "cpu_avg", "desired", "in_service", "draining", "decision"}

// CompareHeader is what a compare run's timeline.csv adds after
// TimelineHeader: the AWS-scaled fleet's columns, then each fleet's
// instances pending or running (what is billed).
var CompareHeader = []string{"aws_rps", "aws_p99", "aws_util", "aws_desired", "aws_in_service", "aws_draining", "aws_change", "running", "aws_running"}

func (r *run) writeReport(s *Summary) error {
	dir := r.cfg.ReportDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "timeline.csv"), func(w io.Writer) error { return writeTimeline(w, s.Rows) }); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "chart.svg"), func(w io.Writer) error { return writeChart(w, s) }); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "summary.json"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	})
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// writeTimeline writes one CSV row per second; p99 is in milliseconds and
// cpu_avg is empty while no instance reported.
func writeTimeline(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	compare := len(rows) > 0 && rows[0].AWS != nil
	head := TimelineHeader
	if compare {
		head = append(append([]string(nil), TimelineHeader...), CompareHeader...)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, r := range rows {
		rec := []string{strconv.Itoa(r.T), strconv.Itoa(r.RPS), strconv.FormatFloat(r.P99ms, 'f', 1, 64), optFloat(r.CPUAvg, r.CPUKnown),
			strconv.Itoa(r.Desired), strconv.Itoa(r.InService), strconv.Itoa(r.Draining), r.Decision}
		if a := r.AWS; compare && a != nil {
			rec = append(rec, strconv.Itoa(a.RPS), strconv.FormatFloat(a.P99ms, 'f', 1, 64), optFloat(a.Util, a.UtilKnown),
				strconv.Itoa(a.Desired), strconv.Itoa(a.InService), strconv.Itoa(a.Draining), a.Change, strconv.Itoa(r.Running), strconv.Itoa(a.Running))
		} else if compare {
			rec = append(rec, make([]string, len(CompareHeader))...)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// optFloat is v with one decimal, or empty when unknown.
func optFloat(v float64, ok bool) string {
	if !ok {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// writeChart draws three stacked panels sharing the time axis — load, p99
// and instance count — with the spike shaded and decisions as labelled
// vertical lines. Hand-written SVG: a plotting library would be the only
// dependency of a few dozen lines of drawing.
func writeChart(w io.Writer, s *Summary) error {
	const (
		width, left, right = 960, 70, 20
		panelH, gap, top   = 150, 40, 50
	)
	rows := s.Rows
	n := len(rows)
	if n == 0 {
		return fmt.Errorf("chart: no rows")
	}
	plotW := float64(width - left - right)
	height := top + 3*panelH + 3*gap + 20
	x := func(t float64) float64 { return left + plotW*t/float64(max(rows[n-1].T, 1)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	compare := len(s.Fleets) > 1
	switch {
	case s.Scenario == ScenarioSpot:
		var ids []string
		for _, i := range s.Interruptions {
			ids = append(ids, i.Instance)
		}
		fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">Shoal demo, spot scenario: fleet %s at %d instances, %d req/s steady, Spot interruptions of %s</text>`+"\n",
			left, s.Fleet, s.Min, s.BaselineRPS, strings.Join(ids, ", "))
	case compare:
		fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">Shoal (%s) beside AWS target tracking at 10 s (%s): %d→%d req/s spike each, target %.0f %% utilisation</text>`+"\n",
			left, s.Fleet, AWSFleet, s.BaselineRPS, s.SpikeRPS, s.Target)
	default:
		fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">Shoal demo: fleet %s, %d→%d req/s spike, target %s %.0f</text>`+"\n", left, s.Fleet, s.BaselineRPS, s.SpikeRPS, metric, s.Target)
	}

	type series struct {
		label string
		color string
		val   func(Row) float64
		step  bool
	}
	panels := []struct {
		title string
		lines []series
	}{
		{"load (requests/s)", []series{{"rps", "#1f77b4", func(r Row) float64 { return float64(r.RPS) }, false}}},
		{"p99 latency (ms)", []series{{"p99", "#d62728", func(r Row) float64 { return r.P99ms }, false}}},
		{"instances", []series{
			{"desired", "#2ca02c", func(r Row) float64 { return float64(r.Desired) }, true},
			{"in_service", "#9467bd", func(r Row) float64 { return float64(r.InService) }, true},
			{"draining", "#ff7f0e", func(r Row) float64 { return float64(r.Draining) }, true},
		}},
	}
	legendW := 100.0
	if compare {
		// The same axes for both fleets: Shoal's series in solid colours,
		// AWS's beside them.
		side := func(f func(SideRow) float64) func(Row) float64 {
			return func(r Row) float64 {
				if r.AWS == nil {
					return 0
				}
				return f(*r.AWS)
			}
		}
		panels[0].lines = []series{
			{"Shoal rps", "#1f77b4", func(r Row) float64 { return float64(r.RPS) }, false},
			{"AWS rps", "#17becf", side(func(a SideRow) float64 { return float64(a.RPS) }), false},
		}
		panels[1].lines = []series{
			{"Shoal p99", "#d62728", func(r Row) float64 { return r.P99ms }, false},
			{"AWS p99", "#8c564b", side(func(a SideRow) float64 { return a.P99ms }), false},
		}
		panels[2].title = "instances (desired, in service)"
		panels[2].lines = []series{
			{"Shoal desired", "#2ca02c", func(r Row) float64 { return float64(r.Desired) }, true},
			{"Shoal in_service", "#9467bd", func(r Row) float64 { return float64(r.InService) }, true},
			{"AWS desired", "#e377c2", side(func(a SideRow) float64 { return float64(a.Desired) }), true},
			{"AWS in_service", "#7f7f7f", side(func(a SideRow) float64 { return float64(a.InService) }), true},
		}
		legendW = 130
	}
	for i, p := range panels {
		y0 := float64(top + i*(panelH+gap))
		ymax := 1.0
		for _, l := range p.lines {
			for _, r := range rows {
				ymax = max(ymax, l.val(r))
			}
		}
		ymax *= 1.1
		y := func(v float64) float64 { return y0 + panelH - panelH*v/ymax }
		// The spike phase, shaded.
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="#fdecc8"/>`+"\n", x(float64(s.SpikeStart)), y0, x(float64(s.SpikeEnd))-x(float64(s.SpikeStart)), panelH)
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="none" stroke="#999"/>`+"\n", left, y0, plotW, panelH)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-weight="bold">%s</text>`+"\n", left, y0-6, p.title)
		for _, frac := range []float64{0, 0.5, 1} {
			v := ymax / 1.1 * frac
			prec := 0
			if ymax < 11 {
				prec = 1
			}
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, strconv.FormatFloat(v, 'f', prec, 64))
		}
		for j, l := range p.lines {
			var pts []string
			prevY := 0.0
			for k, r := range rows {
				yy := y(l.val(r))
				if l.step && k > 0 {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(r.T)), prevY))
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(r.T)), yy))
				prevY = yy
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", l.color, strings.Join(pts, " "))
			// Legend above the panel, clear of the lines.
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s" text-anchor="end">■ %s</text>`+"\n", float64(width-right)-float64(len(p.lines)-1-j)*legendW, y0-6, l.color, l.label)
		}
		if compare {
			// AWS's capacity changes, as the timeline saw them.
			for _, r := range rows {
				if r.AWS == nil || r.AWS.Change == "" {
					continue
				}
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e377c2" stroke-dasharray="2,3"/>`+"\n", x(float64(r.T)), y0, x(float64(r.T)), y0+panelH)
				if i == len(panels)-1 {
					fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#e377c2">AWS %s</text>`+"\n", x(float64(r.T))+3, y0+14, strings.ReplaceAll(r.AWS.Change, "->", "→"))
				}
			}
		}
		for j, d := range s.Decisions {
			if d.T < 0 {
				continue
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="4,3"/>`+"\n", x(d.T), y0, x(d.T), y0+panelH)
			if i == len(panels)-1 {
				// Staggered, since decisions seconds apart would overprint.
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11">%d→%d</text>`+"\n", x(d.T)+3, y0+panelH-4-float64(j%3)*13, d.From, d.To)
			}
		}
		if i == 0 {
			for _, span := range alarmSpans(s, rows[n-1].T) {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="6" fill="#d62728"/>`+"\n", x(float64(span[0])), y0+2, x(float64(span[1]))-x(float64(span[0])))
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#d62728">%s ALARM</text>`+"\n", x(float64(span[0]))+3, y0+20, s.HighAlarm)
			}
		}
	}
	axisY := top + 3*panelH + 2*gap + 18
	for t := 0; t <= rows[n-1].T; t += 10 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%ds</text>`+"\n", x(float64(t)), axisY, t)
	}
	if compare {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#777">shaded: spike; grey dashed: Shoal's decisions; pink dotted: AWS's capacity changes; red bar: Shoal's high alarm in ALARM</text>`+"\n", left, axisY+18)
	} else {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#777">shaded: spike; dashed: scaling decisions; red bar: the high alarm in ALARM</text>`+"\n", left, axisY+18)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// alarmSpans returns the timeline seconds [from, to) the high alarm spent in
// ALARM, as far as the demo saw; an open span ends at end.
func alarmSpans(s *Summary, end int) [][2]int {
	var spans [][2]int
	start := -1
	for _, c := range s.AlarmChanges {
		if c.Name != s.HighAlarm {
			continue
		}
		switch {
		case c.To == "ALARM" && start < 0:
			start = c.T
		case c.To != "ALARM" && start >= 0:
			spans = append(spans, [2]int{start, c.T})
			start = -1
		}
	}
	if start >= 0 {
		spans = append(spans, [2]int{start, end})
	}
	return spans
}

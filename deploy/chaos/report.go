package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Report is chaos-report/report.json; scripts rely on exactly these fields.
type Report struct {
	Seed       uint64      `json:"seed"`
	Faults     []Fault     `json:"faults"`
	Invariants []Invariant `json:"invariants"`
	Requests   Totals      `json:"requests"`
}

// Totals counts the load generator's requests.
type Totals struct {
	Total  int `json:"total"`
	Failed int `json:"failed"`
}

// reportFault is a fault as report.json spells it: the four named fields.
type reportFault struct {
	Kind   string  `json:"kind"`
	Target string  `json:"target"`
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
}

// MarshalJSON writes faults with only kind, target, start_s and end_s.
func (r Report) MarshalJSON() ([]byte, error) {
	fs := make([]reportFault, 0, len(r.Faults))
	for _, f := range r.Faults {
		fs = append(fs, reportFault{Kind: f.Kind, Target: f.Target, StartS: round3(f.StartS), EndS: round3(f.EndS)})
	}
	invs := r.Invariants
	if invs == nil {
		invs = []Invariant{}
	}
	return json.Marshal(struct {
		Seed       uint64        `json:"seed"`
		Faults     []reportFault `json:"faults"`
		Invariants []Invariant   `json:"invariants"`
		Requests   Totals        `json:"requests"`
	}{r.Seed, fs, invs, r.Requests})
}

func round3(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 3, 64), 64)
	return v
}

// NewReport summarises a checked run.
func NewReport(r *Records, invs []Invariant) Report {
	rep := Report{Seed: r.Seed, Faults: r.Faults, Invariants: invs}
	for _, q := range r.Requests {
		rep.Requests.Total++
		if q.Failed() {
			rep.Requests.Failed++
		}
	}
	return rep
}

// WriteReport writes report.json, records.json (the checker's input, to
// rerun or to turn into a regression test) and timeline.svg into dir.
func WriteReport(dir string, r *Records, rep Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, v := range map[string]any{"report.json": rep, "records.json": r} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(dir, "timeline.svg"))
	if err != nil {
		return err
	}
	if err := writeTimeline(f, r, rep); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// second is one second of the timeline.
type second struct {
	rps, failed int
	desired     int
}

func timelineRows(r *Records) []second {
	end := int64(0)
	for _, q := range r.Requests {
		end = max(end, q.EndMS)
	}
	for _, f := range r.Faults {
		end = max(end, int64(f.EndS*1000))
	}
	n := int(end/1000) + 1
	rows := make([]second, n)
	for _, q := range r.Requests {
		s := int(q.StartMS / 1000)
		if s < 0 || s >= n {
			continue
		}
		rows[s].rps++
		if q.Failed() {
			rows[s].failed++
		}
	}
	// The group's desired capacity, as applied calls set it.
	var sets [][2]int64
	desired := -1
	for _, d := range r.Decisions {
		if d.AtMS < r.T0MS {
			desired = d.To
		}
	}
	for _, a := range scalingCalls(r) {
		if applied(a) && a.Op == "SetDesiredCapacity" && a.Desired != nil {
			sets = append(sets, [2]int64{a.AtMS - r.T0MS, int64(*a.Desired)})
		}
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i][0] < sets[j][0] })
	k := 0
	for s := range rows {
		for k < len(sets) && sets[k][0] <= int64(s)*1000 {
			desired = int(sets[k][1])
			k++
		}
		rows[s].desired = max(desired, 0)
	}
	return rows
}

// faultColors shade each kind's windows.
var faultColors = map[string]string{
	KindPartition:  "#fdd0a2",
	KindKill:       "#fcbba1",
	KindPause:      "#dadaeb",
	KindCloudFault: "#c7e9c0",
	KindDiskFull:   "#fee391",
	KindDisconnect: "#c6dbef",
}

// writeTimeline draws the demo chart's style (deploy/internal/demo): three
// stacked panels sharing the time axis — load, failed requests and the
// group's desired capacity — with every fault window shaded in its kind's
// colour and labelled, and operator commands as ticks.
func writeTimeline(w io.Writer, r *Records, rep Report) error {
	const (
		width, left, right = 960, 70, 20
		panelH, gap, top   = 130, 40, 50
	)
	rows := timelineRows(r)
	n := len(rows)
	if n < 2 {
		return fmt.Errorf("timeline: no load recorded")
	}
	plotW := float64(width - left - right)
	height := top + 3*panelH + 3*gap + 40
	x := func(t float64) float64 { return left + plotW*t/float64(n-1) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	failedInv := 0
	for _, inv := range rep.Invariants {
		if !inv.OK {
			failedInv++
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">Shoal chaos run: seed %d, %d faults, %d requests (%d failed), %d of %d invariants hold</text>`+"\n",
		left, rep.Seed, len(rep.Faults), rep.Requests.Total, rep.Requests.Failed, len(rep.Invariants)-failedInv, len(rep.Invariants))
	panels := []struct {
		title string
		color string
		val   func(second) float64
		step  bool
	}{
		{"load (requests/s)", "#1f77b4", func(s second) float64 { return float64(s.rps) }, false},
		{"failed requests/s", "#d62728", func(s second) float64 { return float64(s.failed) }, false},
		{"group desired capacity", "#2ca02c", func(s second) float64 { return float64(s.desired) }, true},
	}
	for i, p := range panels {
		y0 := float64(top + i*(panelH+gap))
		ymax := 1.0
		for _, s := range rows {
			ymax = max(ymax, p.val(s))
		}
		ymax *= 1.1
		y := func(v float64) float64 { return y0 + panelH - panelH*v/ymax }
		for _, f := range rep.Faults {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"/>`+"\n", x(f.StartS), y0, max(x(f.EndS)-x(f.StartS), 1), panelH, faultColors[f.Kind])
			if i == 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" transform="rotate(-90 %.1f %.1f)">%s %s</text>`+"\n", x(f.StartS)+10, y0+panelH-4, x(f.StartS)+10, y0+panelH-4, f.Kind, esc(f.Variant+" "+f.Target))
			}
		}
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
		var pts []string
		prevY := 0.0
		for t, s := range rows {
			yy := y(p.val(s))
			if p.step && t > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(t)), prevY))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(t)), yy))
			prevY = yy
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", p.color, strings.Join(pts, " "))
		if i == len(panels)-1 {
			for _, o := range r.Ops {
				if o.Kind == "get_fleet" || o.Kind == "get_policy" {
					continue
				}
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555"/>`+"\n", x(float64(o.CallNS)/1e9), y0+panelH, x(float64(o.CallNS)/1e9), y0+panelH-6)
			}
		}
	}
	axisY := top + 3*panelH + 2*gap + 18
	stepT := max(10, (n/10+9)/10*10)
	for t := 0; t < n; t += stepT {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%ds</text>`+"\n", x(float64(t)), axisY, t)
	}
	lx := float64(left)
	for _, k := range Kinds {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="12" height="12" fill="%s"/><text x="%.1f" y="%d">%s</text>`+"\n", lx, axisY+10, faultColors[k], lx+16, axisY+20, k)
		lx += 110
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#777">ticks: operator commands</text>`+"\n", lx, axisY+20)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

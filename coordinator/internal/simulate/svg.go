package simulate

import (
	"fmt"
	"io"
	"strings"
)

// WriteSVG draws demand (in instances) and each policy's supply over time.
// It is written by hand: a few polylines need no charting library.
func WriteSVG(w io.Writer, r *Result) error {
	const width, height, left, right, top, bottom = 1000.0, 420.0, 50.0, 170.0, 20.0, 40.0
	n := len(r.DemandInstances)
	if n == 0 {
		return fmt.Errorf("svg: empty result")
	}
	var ymax int32 = 1
	for _, d := range r.DemandInstances {
		ymax = max(ymax, d)
	}
	for _, s := range r.Runs {
		for _, v := range s.Supply {
			ymax = max(ymax, v)
		}
	}
	pw, ph := width-left-right, height-top-bottom
	x := func(i int) float64 { return left + pw*float64(i)/float64(max(n-1, 1)) }
	y := func(v int32) float64 { return top + ph*(1-float64(v)/float64(ymax)) }
	// Step lines keep only the points where the value changes, so a day at
	// one sample a second stays a small file.
	line := func(vals []int32) string {
		var b strings.Builder
		for i, v := range vals {
			if i > 0 && v == vals[i-1] && i != n-1 {
				continue
			}
			if i > 0 {
				fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(vals[i-1]))
			}
			fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(v))
		}
		return strings.TrimSpace(b.String())
	}
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top+ph, left+pw, top+ph)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, top+ph)
	for k := 0; k <= 4; k++ {
		v := int32(float64(ymax) * float64(k) / 4)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%d</text>`+"\n", left-6, y(v)+4, v)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x((n-1)*k/4), top+ph+18, clock(int64((n-1)*k/4)))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">time</text>`+"\n", left+pw/2, height-4)
	fmt.Fprintf(&b, `<text x="12" y="%.0f" transform="rotate(-90 12 %.0f)" text-anchor="middle">instances</text>`+"\n", top+ph/2, top+ph/2)
	fmt.Fprintf(&b, `<polyline fill="none" stroke="black" stroke-width="2" points="%s"/>`+"\n", line(r.DemandInstances))
	legend := func(i int, color, name string, dash bool) {
		ly := top + 10 + float64(i)*18
		d := ""
		if dash {
			d = ` stroke-dasharray="4 2"`
		}
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/>`+"\n", left+pw+10, ly, left+pw+30, ly, color, d)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left+pw+36, ly+4, name)
	}
	legend(0, "black", "demand", false)
	for i, s := range r.Runs {
		c := colors[i%len(colors)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="4 2" points="%s"/>`+"\n", c, line(s.Supply))
		legend(i+1, c, s.Policy, true)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func clock(s int64) string {
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// The chart's geometry.
const (
	svgWidth   = 960
	svgPanelH  = 230
	svgMarginL = 70
	svgMarginR = 150
	svgTop     = 60
	svgGap     = 60
)

type svgLine struct {
	name   string
	color  string
	values []float64
}

// WriteSVGFile draws r's series to path.
func (r *Report) WriteSVGFile(path string) error {
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// WriteSVG draws throughput, time to CONFIRMED and server memory over the
// run, in one-second buckets, as a standalone SVG document.
func (r *Report) WriteSVG(w io.Writer) error {
	n := len(r.Series)
	col := func(f func(Second) float64) []float64 {
		v := make([]float64, n)
		for i, s := range r.Series {
			v[i] = f(s)
		}
		return v
	}
	panels := []struct {
		title, unit string
		lines       []svgLine
	}{
		{"throughput", "per second", []svgLine{
			{"accepted/s", "#1f77b4", col(func(s Second) float64 { return float64(s.Accepted) })},
			{"confirmed/s", "#2ca02c", col(func(s Second) float64 { return float64(s.Confirmed) })},
			{"cancelled/s", "#d62728", col(func(s Second) float64 { return float64(s.Cancelled) })},
		}},
		{"time to CONFIRMED", "ms", []svgLine{
			{"p50", "#9467bd", col(func(s Second) float64 { return s.P50ConfirmMs })},
			{"p99", "#ff7f0e", col(func(s Second) float64 { return s.P99ConfirmMs })},
		}},
		{"server memory", "RSS MB", []svgLine{
			{"RSS", "#8c564b", col(func(s Second) float64 { return s.RSSMB })},
		}},
	}
	height := svgTop + len(panels)*(svgPanelH+svgGap)
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	title := fmt.Sprintf("berth bench %s on %s: %.0f confirmed/s, p99 time to CONFIRMED %.0f ms, %d oversold",
		r.Scenario, r.Database, r.ConfirmedPerSec, r.P99ConfirmMs, r.Oversold)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", svgMarginL, esc(title))
	sub := fmt.Sprintf("%d customers, %d flight(s) × %d seats, %s; raw guarded UPDATE %.0f tx/s (ratio %.3f)",
		r.Users, r.Flights, r.Seats, r.Machine.CPU, r.RawTxPerSec, r.Ratio)
	fmt.Fprintf(&b, `<text x="%d" y="46" fill="#555555">%s</text>`+"\n", svgMarginL, esc(sub))
	for i, p := range panels {
		drawPanel(&b, svgTop+i*(svgPanelH+svgGap)+20, p.title, p.unit, p.lines, n)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func drawPanel(b *strings.Builder, y0 int, title, unit string, lines []svgLine, n int) {
	x0, w, h := svgMarginL, svgWidth-svgMarginL-svgMarginR, svgPanelH
	maxV := 0.0
	for _, l := range lines {
		for _, v := range l.values {
			maxV = max(maxV, v)
		}
	}
	top := niceCeil(maxV)
	fmt.Fprintf(b, `<g>`+"\n")
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0-8, esc(title+" ("+unit+")"))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999999"/>`+"\n", x0, y0, w, h)
	// Horizontal grid and y labels.
	for i := 0; i <= 5; i++ {
		y := float64(y0+h) - float64(i)*float64(h)/5
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", x0, y, x0+w, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555555">%s</text>`+"\n", x0-6, y+4, esc(fmtNum(top*float64(i)/5)))
	}
	// X ticks: seconds.
	span := max(n-1, 1)
	step := 1
	for span/step > 10 {
		switch {
		case step < 5:
			step = 5
		case step < 10:
			step = 10
		default:
			step *= 2
		}
	}
	xOf := func(i int) float64 { return float64(x0) + float64(i)*float64(w)/float64(span) }
	yOf := func(v float64) float64 { return float64(y0+h) - v/top*float64(h) }
	for i := 0; i <= span; i += step {
		x := xOf(i)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999999"/>`+"\n", x, y0+h, x, y0+h+4)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555555">%ds</text>`+"\n", x, y0+h+17, i)
	}
	if n == 0 {
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" fill="#999999">no data</text>`+"\n", x0+w/2, y0+h/2)
	}
	for li, l := range lines {
		if n == 1 {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", xOf(0), yOf(l.values[0]), l.color)
		} else if n > 1 {
			var pts strings.Builder
			for i, v := range l.values {
				if i > 0 {
					pts.WriteByte(' ')
				}
				fmt.Fprintf(&pts, "%.1f,%.1f", xOf(i), yOf(v))
			}
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", l.color, pts.String())
		}
		ly := y0 + 14 + li*18
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", x0+w+12, ly-4, x0+w+32, ly-4, l.color)
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", x0+w+38, ly, esc(l.name))
	}
	b.WriteString("</g>\n")
}

func fmtNum(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

package batch

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// chart geometry, in SVG user units.
const (
	chartW, chartH                             = 760, 360
	marginL, marginR, marginT, marginB         = 72, 150, 36, 44
	plotW, plotH                       float64 = chartW - marginL - marginR, chartH - marginT - marginB
)

var chartColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// WriteSVG writes a chart of the output tokens the provider served per
// minute, per region, by when each call was sent, in bins of one minute,
// against the quota line of a region (its accounts' quotas together); and,
// below it when the limiter made requests wait, a chart of how many
// requests waited on each limit (see writeWaits).
func (s Summary) WriteSVG(w io.Writer) error {
	if s.Minute <= 0 || s.Wall <= 0 || len(s.Endpoints) == 0 {
		return fmt.Errorf("%w: nothing to chart", ErrInvalidConfig)
	}
	height := chartH
	if len(s.Waits) > 0 {
		height += chartH
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", chartW, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	s.writeOutput(&b)
	if len(s.Waits) > 0 {
		fmt.Fprintf(&b, `<g transform="translate(0,%d)">`+"\n", chartH)
		s.writeWaits(&b)
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeOutput draws the chart of output tokens per minute per region.
func (s Summary) writeOutput(b *strings.Builder) {
	bin := s.Minute
	regions, series := s.outputPerMinute(bin)
	quota := float64(s.Quota.OutputTokensPerMinute) * float64(len(s.Endpoints)/len(regions))
	top := quota * 1.25
	for _, ser := range series {
		for _, v := range ser {
			top = max(top, v*1.05)
		}
	}
	wall := s.Wall.Seconds()
	x := func(t float64) float64 { return marginL + t/wall*plotW }
	y := func(v float64) float64 { return marginT + plotH - v/top*plotH }
	title := fmt.Sprintf("Output tokens per minute served, per region (%s, %s) — a minute lasts %v", s.Mode, s.Algorithm, s.Minute)
	fmt.Fprintf(b, `<text x="%d" y="20" font-size="14">%s</text>`+"\n", marginL, html.EscapeString(strings.ReplaceAll(title, ", )", ")")))
	writeAxes(b, x, y, wall, top, func(v float64) string { return group(int64(v)) })
	writeSeries(b, x, y, bin, wall, regions, series)
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-dasharray="6 4"/>`+"\n",
		marginL, y(quota), x(wall), y(quota))
	ly := marginT + 20*len(series)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black" stroke-dasharray="6 4"/>`+"\n",
		chartW-marginR+12, ly, chartW-marginR+32, ly)
	fmt.Fprintf(b, `<text x="%d" y="%d">quota of a region</text>`+"\n", chartW-marginR+38, ly+4)
}

// writeSeries draws one step line per series, a value per bin, with a
// legend of names.
func writeSeries(b *strings.Builder, x, y func(float64) float64, bin time.Duration, wall float64, names []string, series [][]float64) {
	for i, ser := range series {
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="`, chartColors[i%len(chartColors)])
		for k, v := range ser {
			t0, t1 := (time.Duration(k) * bin).Seconds(), min(wall, (time.Duration(k+1)*bin).Seconds())
			fmt.Fprintf(b, "%.1f,%.1f %.1f,%.1f ", x(t0), y(v), x(t1), y(v))
		}
		b.WriteString("\"/>\n")
		ly := marginT + 20*i
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n",
			chartW-marginR+12, ly, chartW-marginR+32, ly, chartColors[i%len(chartColors)])
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", chartW-marginR+38, ly+4, html.EscapeString(names[i]))
	}
}

// outputPerMinute returns the regions in order of first appearance and, per
// region, the output tokens per minute of each bin of the run.
func (s Summary) outputPerMinute(bin time.Duration) ([]string, [][]float64) {
	var regions []string
	of := map[string]int{}
	for _, e := range s.Endpoints {
		if _, ok := of[e.Region]; !ok {
			of[e.Region] = len(regions)
			regions = append(regions, e.Region)
		}
	}
	n := int((s.Wall + bin - 1) / bin)
	series := make([][]float64, len(regions))
	for i := range series {
		series[i] = make([]float64, n)
	}
	for _, a := range s.Admissions {
		k := min(n-1, int(a.At/bin))
		series[of[s.Endpoints[a.Endpoint].Region]][k] += float64(a.OutputTokens)
	}
	for k := range n {
		width := min(bin, s.Wall-time.Duration(k)*bin) // the last bin may be short
		for i := range series {
			series[i][k] *= float64(s.Minute) / float64(width)
		}
	}
	return regions, series
}

// writeAxes draws the axes, with ticks in seconds and in the values'
// unit, labelled by label.
func writeAxes(b *strings.Builder, x, y func(float64) float64, wall, top float64, label func(float64) string) {
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", marginL, y(0), x(wall), y(0))
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%.1f" stroke="black"/>`+"\n", marginL, marginT, marginL, y(0))
	for _, t := range ticks(wall) {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%g</text>`+"\n", x(t), y(0)+16, t)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">seconds since the first call</text>`+"\n", x(wall/2), chartH-6)
	for _, v := range ticks(top) {
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y(v)+4, label(v))
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y(v), x(wall), y(v))
	}
}

// ticks returns round values from 0 up to hi, about five of them.
func ticks(hi float64) []float64 {
	if hi <= 0 {
		return []float64{0}
	}
	step := math.Pow(10, math.Floor(math.Log10(hi/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if hi/(step*m) <= 6 {
			step *= m
			break
		}
	}
	var out []float64
	for v := 0.0; v <= hi+step/1e9; v += step {
		out = append(out, v)
	}
	return out
}

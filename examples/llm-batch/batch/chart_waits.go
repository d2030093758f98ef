package batch

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/concurry/concurry"
)

// waitBins is the number of bins of the chart of waits over a run.
const waitBins = 60

// writeWaits draws the chart of waits: over the run, in bins of a
// sixtieth of it, how many requests were waiting on average, by the limit
// that kept them waiting (summed over the endpoints, from the set that
// granted each) — which limit held the batch back, and when.
func (s Summary) writeWaits(b *strings.Builder) {
	keys, series := s.waitingPerBin(waitBins)
	top := 1.0
	for _, ser := range series {
		for _, v := range ser {
			top = max(top, v*1.1)
		}
	}
	wall := s.Wall.Seconds()
	bin := s.Wall / waitBins
	x := func(t float64) float64 { return marginL + t/wall*plotW }
	y := func(v float64) float64 { return marginT + plotH - v/top*plotH }
	fmt.Fprintf(b, `<text x="%d" y="20" font-size="14">Requests waiting, by the limit they waited on (all regions)</text>`+"\n", marginL)
	writeAxes(b, x, y, wall, top, func(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) })
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = shortKey(k)
		if k != concurry.CallKey && k != KeyConnections {
			names[i] += " tokens"
		}
	}
	writeSeries(b, x, y, bin, wall, names, series)
}

// waitingPerBin returns the keys that made requests wait, in order of
// first appearance, and for each the average number of requests waiting
// on it in each of n bins of the run.
func (s Summary) waitingPerBin(n int) ([]string, [][]float64) {
	var keys []string
	of := map[string]int{}
	var series [][]float64
	bin := s.Wall / time.Duration(n)
	if bin <= 0 {
		return nil, nil
	}
	for _, w := range s.Waits {
		i, ok := of[w.Key]
		if !ok {
			i = len(keys)
			of[w.Key] = i
			keys = append(keys, w.Key)
			series = append(series, make([]float64, n))
		}
		for k := max(0, int(w.From/bin)); k < n && time.Duration(k)*bin < w.To; k++ {
			lo, hi := max(w.From, time.Duration(k)*bin), min(w.To, time.Duration(k+1)*bin)
			if hi > lo {
				series[i][k] += float64(hi-lo) / float64(bin)
			}
		}
	}
	return keys, series
}

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/concurry/concurry/examples/llm-batch/batch"
)

// bar is a one-line progress bar redrawn in place on a terminal: done/total,
// the rate, the time left and the 429s so far. Its update method is called
// from one goroutine at a time.
type bar struct {
	w     io.Writer
	width int // cells of the bar itself
}

func newBar(w io.Writer) *bar { return &bar{w: w, width: 30} }

// update redraws the bar; the final update ends its line.
func (b *bar) update(p batch.Progress) {
	line := b.render(p)
	if p.Final {
		fmt.Fprintf(b.w, "\r%s\x1b[K\n", line)
		return
	}
	fmt.Fprintf(b.w, "\r%s\x1b[K", line)
}

// render returns the bar's text for p.
func (b *bar) render(p batch.Progress) string {
	frac := 0.0
	if p.Total > 0 {
		frac = float64(p.Done) / float64(p.Total)
	}
	full := min(b.width, int(frac*float64(b.width)))
	rate, eta := 0.0, "?"
	if secs := p.Elapsed.Seconds(); secs > 0 && p.Done > 0 {
		rate = float64(p.Done) / secs
		left := time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second))
		eta = left.Round(time.Second).String()
	}
	return fmt.Sprintf("%*d/%d [%s%s] %3.0f%%  %5.1f req/s  elapsed %s  ETA %s  429s: %d",
		len(fmt.Sprint(p.Total)), p.Done, p.Total, strings.Repeat("█", full), strings.Repeat("░", b.width-full),
		100*frac, rate, p.Elapsed.Round(time.Second), eta, p.RateLimited)
}

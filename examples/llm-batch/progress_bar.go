package main

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/concurry/concurry/examples/llm-batch/batch"
)

// progressBar is the live bar of a run, drawn by mpb: done/total, the bar,
// the share done, the rate, the time elapsed and left, and the 429s so far.
// mpb redraws it in place and fits it to the terminal's width, so it never
// wraps: on a narrow terminal the bar shrinks and the text on its right
// drops the rate and the times, then the ETA; on a wide one the bar holds 30
// cells. It draws nothing when its writer is not a terminal.
// The figures come from batch.Progress, so they agree with the summary. Its
// methods are safe for concurrent use.
type progressBar struct {
	container *mpb.Progress
	bar       *mpb.Bar
	last      atomic.Pointer[batch.Progress] // the latest update
}

// Widths of the bar, in columns, brackets included.
const (
	barWidth    = 32 // 30 cells between the brackets
	minBarWidth = 12 // the least the text on its right leaves it
)

// newProgressBar returns a bar of total prompts drawn on w, redrawn every
// 100ms. Options of mpb's container come after the defaults: tests draw on
// a terminal of their own with newLineStartWriter and mpb.WithWidth. Call
// finish when the run is over.
func newProgressBar(w io.Writer, total int, opts ...mpb.ContainerOption) *progressBar {
	b := &progressBar{}
	b.last.Store(&batch.Progress{Total: total})
	defaults := []mpb.ContainerOption{mpb.WithConsoleWriter(newLineStartWriter(w, false)), mpb.WithRefreshRate(100 * time.Millisecond)}
	b.container = mpb.New(append(defaults, opts...)...)
	b.bar = b.container.New(int64(total),
		mpb.BarStyle().Lbound("[").Filler("█").Tip("█").Padding("░").Rbound("]"),
		mpb.BarWidth(barWidth),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return countText(*b.last.Load()) })),
		mpb.AppendDecorators(decor.Any(b.statsText)),
	)
	return b
}

// update shows p; the final update of a run that did not complete leaves
// the bar where it stopped. It is batch.Config.Progress.
func (b *progressBar) update(p batch.Progress) {
	b.last.Store(&p)
	b.bar.SetCurrent(int64(p.Done))
	if p.Final && p.Done < p.Total {
		b.bar.Abort(false)
	}
}

// finish draws the bar for the last time and waits for mpb to end.
func (b *progressBar) finish() {
	b.bar.Abort(false) // a no-op when the bar is complete
	b.container.Wait()
}

// lineStartWriter is mpb's console writer, which redraws the bar by moving
// the cursor up to its line, but it also moves the cursor to the start of
// that line: where the terminal wrote on the line below the bar — its echo
// of ^C — the next frame still starts at the first column, so it still fits
// the width and leaves nothing of the echo or of the last frame behind.
type lineStartWriter struct {
	*cupwriter.Writer
	tty bool // draw as on a terminal
}

// newLineStartWriter returns a console writer to w, which draws as on a
// terminal where w is one, or where tty is set.
func newLineStartWriter(w io.Writer, tty bool) lineStartWriter {
	cw := cupwriter.New(w, tty)
	return lineStartWriter{Writer: cw, tty: tty || cw.IsTerminal()}
}

// Flush writes the frame of lines lines, and starts the next with the
// cursor's moves back to the start of the bar's first line.
func (w lineStartWriter) Flush(lines int) error {
	if err := w.Writer.Flush(lines); err != nil || !w.tty {
		return err
	}
	return w.WriteByte('\r') // after the move up, which Flush buffered
}

// statsText returns the longest of statsTexts that leaves the bar its least
// width (and a space either side) in the columns still free.
func (b *progressBar) statsText(st decor.Statistics) string {
	texts := statsTexts(*b.last.Load())
	for _, t := range texts {
		if utf8.RuneCountInString(t)+2+minBarWidth <= st.AvailableWidth {
			return t
		}
	}
	return texts[len(texts)-1]
}

// countText returns "done/total", done padded to the width of total.
func countText(p batch.Progress) string {
	return fmt.Sprintf("%*d/%d", len(fmt.Sprint(p.Total)), p.Done, p.Total)
}

// statsTexts returns the text right of the bar, from the longest to the
// shortest: the share done, the rate, the time elapsed and left, the 429s.
func statsTexts(p batch.Progress) []string {
	frac, rate, eta := 0.0, 0.0, "?"
	if p.Total > 0 {
		frac = float64(p.Done) / float64(p.Total)
	}
	if secs := p.Elapsed.Seconds(); secs > 0 && p.Done > 0 {
		rate = float64(p.Done) / secs
		left := time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second))
		eta = left.Round(time.Second).String()
	}
	share, limited := fmt.Sprintf("%3.0f%%", 100*frac), fmt.Sprintf("429s: %d", p.RateLimited)
	return []string{
		fmt.Sprintf("%s  %5.1f req/s  elapsed %s  ETA %s  %s", share, rate, p.Elapsed.Round(time.Second), eta, limited),
		fmt.Sprintf("%s  ETA %s  %s", share, eta, limited),
		fmt.Sprintf("%s  %s", share, limited),
	}
}

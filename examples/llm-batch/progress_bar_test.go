package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vbauerster/mpb/v8"

	"github.com/concurry/concurry/examples/llm-batch/batch"
)

// escapes matches the terminal control sequences mpb writes to redraw.
var escapes = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// screenLines returns what a terminal shows of out, line by line: mpb's
// control sequences and carriage returns removed.
func screenLines(out string) []string {
	out = strings.ReplaceAll(escapes.ReplaceAllString(out, ""), "\r", "")
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// driveBar shows b a run of 200 prompts: a frame a quarter of the way,
// drawn by refresh and awaited with drawn, then the end with done prompts.
func driveBar(b *progressBar, refresh chan<- any, drawn func(), done int) {
	b.update(batchProgress(50, false))
	refresh <- time.Now()
	drawn()
	b.update(batchProgress(done, true))
	b.finish()
}

// batchProgress returns a run of 200 prompts with done of them done: 50 in
// 5s, or, when final, in 16s.
func batchProgress(done int, final bool) batch.Progress {
	p := batch.Progress{Done: done, Total: 200, RateLimited: 3, Elapsed: 5 * time.Second, Final: final}
	if final {
		p.Elapsed = 16 * time.Second
	}
	return p
}

// screen is a fake terminal's screen: it keeps what mpb writes, and says
// when a frame was written.
type screen struct {
	bytes.Buffer
	frames chan struct{}
}

func newScreen() *screen { return &screen{frames: make(chan struct{}, 100)} }

func (s *screen) Write(p []byte) (int, error) {
	n, err := s.Buffer.Write(p) // mpb's goroutine writes each frame at once
	select {
	case s.frames <- struct{}{}:
	default: // nobody waits for so many frames
	}
	return n, err
}

func (s *screen) drawn() { <-s.frames }

// barOn returns a bar drawn on s as on a terminal of width columns.
func barOn(s *screen, width int, refresh <-chan any) *progressBar {
	return newProgressBar(s, 200, mpb.WithConsoleWriter(newLineStartWriter(s, true)), mpb.WithWidth(width), mpb.WithManualRefresh(refresh))
}

func TestProgressBarLine(t *testing.T) {
	s, refresh := newScreen(), make(chan any)
	driveBar(barOn(s, 120, refresh), refresh, s.drawn, 200)
	lines := screenLines(s.String())
	require.Len(t, lines, 2, "%q", s.String())
	assert.Equal(t, " 50/200 [████████░░░░░░░░░░░░░░░░░░░░░░]  25%   10.0 req/s  elapsed 5s  ETA 15s  429s: 3", lines[0])
	assert.Equal(t, "200/200 [██████████████████████████████] 100%   12.5 req/s  elapsed 16s  ETA 0s  429s: 3", lines[1])
	assert.Contains(t, statsTexts(batch.Progress{Total: 200})[0], "ETA ?")
}

// On a narrow terminal the bar shrinks and the text on its right gets
// shorter, down to the share done and the 429s: no line is wider than the
// terminal, so none wraps.
func TestProgressBarFitsANarrowTerminal(t *testing.T) {
	for width, want := range map[int][2]string{
		80: {" 50/200 [██████░░░░░░░░░░░░░░░░]  25%   10.0 req/s  elapsed 5s  ETA 15s  429s: 3", "200/200 [██████████████████████] 100%   12.5 req/s  elapsed 16s  ETA 0s  429s: 3"},
		60: {" 50/200 [███████░░░░░░░░░░░░░░░░░░░░]  25%  ETA 15s  429s: 3", "200/200 [████████████████████████████] 100%  ETA 0s  429s: 3"},
		40: {" 50/200 [████░░░░░░░░░░░░]  25%  429s: 3", "200/200 [████████████████] 100%  429s: 3"},
		25: {" 50/200 [░]  25%  429s: 3", "200/200 [█] 100%  429s: 3"}, // the bar is all but gone
	} {
		s, refresh := newScreen(), make(chan any)
		driveBar(barOn(s, width, refresh), refresh, s.drawn, 200)
		lines := screenLines(s.String())
		require.Len(t, lines, 2, "%q", s.String())
		for i, l := range lines {
			assert.LessOrEqual(t, utf8.RuneCountInString(l), width, "%q", l)
			assert.Equal(t, want[i], l, "%d columns", width)
		}
		assert.Equal(t, []string{want[1]}, replay(s.String(), width), "the screen: the last frame over the first")
	}
}

// A run that ends early (interrupted, or failed before its first prompt)
// leaves the bar where it stopped, and finish does not wait for the rest.
func TestProgressBarOfARunCutShort(t *testing.T) {
	s, refresh := newScreen(), make(chan any)
	driveBar(barOn(s, 120, refresh), refresh, s.drawn, 60)
	lines := screenLines(s.String())
	assert.True(t, strings.HasPrefix(lines[len(lines)-1], " 60/200 ["), "%q", lines)

	s = newScreen()
	barOn(s, 120, refresh).finish()
	assert.True(t, strings.HasPrefix(screenLines(s.String())[0], "  0/200 ["), "%q", s.String())
}

// Where its writer is no terminal, the bar draws nothing at all, not even
// at the end, where mpb draws the last frame of a bar on a terminal.
func TestProgressBarDrawsNothingWithoutATerminal(t *testing.T) {
	var out bytes.Buffer
	b := newProgressBar(&out, 200)
	b.update(batch.Progress{Done: 50, Total: 200, Elapsed: time.Second})
	b.update(batch.Progress{Done: 200, Total: 200, Elapsed: 2 * time.Second, Final: true})
	b.finish()
	assert.Empty(t, out.String())

	b = newProgressBar(&out, 200, mpb.WithAutoRefresh()) // the same, forced to draw
	b.update(batch.Progress{Done: 200, Total: 200, Elapsed: 2 * time.Second, Final: true})
	b.finish()
	assert.Contains(t, out.String(), "200/200 [")
}

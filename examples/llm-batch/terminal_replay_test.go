package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// replay returns the screen a terminal of width columns shows after out,
// line by line, trailing blanks trimmed, up to the last line written to. It knows what mpb writes: text,
// \r, \n, ESC[nA (cursor up n lines) and ESC[J (erase from the cursor to the
// end of the screen); and like a terminal, it wraps a line that runs past
// the last column.
func replay(out string, width int) []string {
	var rows [][]rune
	row, col := 0, 0
	at := func(r int) []rune {
		for len(rows) <= r {
			rows = append(rows, nil)
		}
		return rows[r]
	}
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; {
		case c == '\r':
			col = 0
		case c == '\n':
			row, col = row+1, 0
		case c == '\x1b' && i+1 < len(rs) && rs[i+1] == '[':
			j := i + 2
			for j < len(rs) && rs[j] >= '0' && rs[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(string(rs[i+2 : j]))
			switch rs[j] {
			case 'A':
				row = max(0, row-max(n, 1))
			case 'J':
				rows[row] = at(row)[:min(col, len(at(row)))]
				rows = rows[:row+1]
			}
			i = j
		default:
			if col == width { // the pending wrap of the last column
				row, col = row+1, 0
			}
			line := at(row)
			for len(line) <= col {
				line = append(line, ' ')
			}
			line[col] = c
			rows[row], col = line, col+1
		}
	}
	lines := make([]string, len(rows))
	for i, r := range rows {
		lines[i] = strings.TrimRight(string(r), " ")
	}
	return lines
}

func TestReplay(t *testing.T) {
	assert.Equal(t, []string{"abcd", "ef", "xyz"}, replay("abcdef\nxyz", 4), "wraps past the last column")
	assert.Equal(t, []string{"one", "new"}, replay("one\ntwo\n\x1b[1A\x1b[Jnew", 80), "up one line, erase, write")
	assert.Equal(t, []string{"olnew"}, replay("old\n^C\x1b[1A\x1b[Jnew\n", 80), "the column stays where it was")
	assert.Equal(t, []string{"new"}, replay("old\n^C\x1b[1A\x1b[J\rnew\n", 80))
}

// The terminal echoes ^C where the cursor is, at the start of the line
// below the bar; the next frame still starts at the first column, erases
// the echo, and fits the width.
func TestProgressBarRedrawsOverTheEchoOfCtrlC(t *testing.T) {
	s, refresh := newScreen(), make(chan any)
	b := barOn(s, 60, refresh)
	b.update(batchProgress(50, false))
	refresh <- struct{}{}
	s.drawn()
	s.WriteString("^C") // the echo
	b.update(batchProgress(60, true))
	b.finish()
	screen := replay(s.String(), 60)
	require.Equal(t, []string{" 60/200 [████████░░░░░░░░░░░░░░░░░░░]  30%  ETA 37s  429s: 3"}, screen, "%q", s.String())
}

//go:build linux

package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vbauerster/mpb/v8"
	"golang.org/x/sys/unix"
)

// openTerminal returns both ends of a new pseudo-terminal of cols columns.
func openTerminal(t *testing.T, cols uint16) (master, terminal *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0), "unlockpt")
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	require.NoError(t, err, "ptsname")
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlSetWinsize(int(terminal.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: cols}))
	return master, terminal
}

// On a real terminal the bar finds the width by itself: the same run draws
// longer lines on a wide terminal, and no line wider than a narrow one.
func TestProgressBarFindsTheTerminalWidth(t *testing.T) {
	widest := map[uint16]int{}
	for _, cols := range []uint16{50, 132} {
		master, terminal := openTerminal(t, cols)
		chunks := make(chan string)
		go func() {
			defer close(chunks)
			buf := make([]byte, 4096)
			for {
				n, err := master.Read(buf) // until the terminal closes: EIO
				if n > 0 {
					chunks <- string(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
		var out strings.Builder
		drawn := func() { // the first frame is on the screen
			for !strings.Contains(out.String(), "50/200") {
				out.WriteString(<-chunks)
			}
		}
		refresh := make(chan any)
		driveBar(newProgressBar(terminal, 200, mpb.WithManualRefresh(refresh)), refresh, drawn, 200)
		require.NoError(t, terminal.Close())
		for c := range chunks {
			out.WriteString(c)
		}
		require.NoError(t, master.Close())
		lines := screenLines(out.String())
		require.Len(t, lines, 2, "%q", out.String())
		for _, l := range lines {
			assert.LessOrEqual(t, utf8.RuneCountInString(l), int(cols), "%d columns: %q", cols, l)
			widest[cols] = max(widest[cols], utf8.RuneCountInString(l))
		}
		assert.True(t, strings.HasPrefix(lines[1], "200/200 ["), "%q", lines)
	}
	assert.Greater(t, widest[132], 80, "a wide terminal gets a line wider than 80 columns")
}

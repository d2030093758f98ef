package concurry

import (
	"fmt"
	"runtime/debug"
)

// callContained runs fn, a callback supplied by the user, in a goroutine of
// its own and waits for it. When fn panics or calls runtime.Goexit, it
// reports exited true and what happened (the panic value and stack), and the
// caller's goroutine goes on unharmed.
func callContained(fn func()) (what string, exited bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		normal := false
		defer func() {
			if normal {
				return
			}
			exited = true
			if r := recover(); r != nil {
				what = fmt.Sprintf("panicked: %v\n%s", r, debug.Stack())
			} else {
				what = "called runtime.Goexit"
			}
		}()
		fn()
		normal = true
	}()
	<-done
	return what, exited
}

package redis

import (
	"time"

	"github.com/concurry/concurry/backend"
)

// request is what one Acquire call reports besides its result: it fills
// opts.Report and calls opts.OnWait. It lives on the caller's stack.
type request struct {
	opts    backend.AcquireOptions
	start   time.Time // when it started to wait
	waiting bool      // it started to wait
}

// wait marks the start of the wait, blocked by spec blocker (-1 if
// unknown): the first call fills the report and calls OnWait.
func (r *request) wait(blocker int) {
	if r.waiting {
		return
	}
	r.waiting = true
	if r.start.IsZero() {
		r.start = time.Now()
	}
	if rep := r.opts.Report; rep != nil {
		rep.Waited, rep.Blocker = true, blocker
	}
	if f := r.opts.OnWait; f != nil {
		onWait(f, blocker)
	}
}

// onWait calls f(blocker), recovering a panic: a hook that panics does not
// end the wait. A runtime.Goexit in it ends the caller's goroutine: nothing
// was granted yet, and the caller's deferred calls take it out of the queue.
func onWait(f func(int), blocker int) {
	defer func() { _ = recover() }()
	f(blocker)
}

// refused records that the request was refused without waiting, blocked by
// spec blocker.
func (r *request) refused(blocker int) {
	if rep := r.opts.Report; rep != nil && !r.waiting {
		rep.Blocker = blocker
	}
}

// degraded records that the outage policy decided the request.
func (r *request) degraded() {
	if rep := r.opts.Report; rep != nil {
		rep.Degraded = true
	}
}

// end records how long the request waited, when it did.
func (r *request) end() {
	if rep := r.opts.Report; rep != nil && r.waiting {
		rep.Duration = time.Since(r.start)
	}
}

package batch

import (
	"sync"
	"time"

	"github.com/concurry/concurry"
)

// Wait is one wait of a request the limiter granted: on which endpoint (an
// index of Summary.Endpoints), which limit kept it waiting (the key of the
// set that granted it), and from when to when, since the start of the run.
type Wait struct {
	Endpoint int
	Key      string
	From, To time.Duration
}

// waitLog records the waits of a run as they end, through the LimitSets'
// WaitDone hook. Safe for concurrent use.
type waitLog struct {
	start func() time.Time           // the start of the run, read when a wait ends
	sets  map[*concurry.LimitSet]int // set → endpoint; written before the first wait

	mu    sync.Mutex
	waits []Wait // guarded by mu
}

// waitDone records a granted wait of one set; a set's wait that another set
// of the pool won, or that failed, is not a wait of the request's.
func (l *waitLog) waitDone(i concurry.WaitInfo) {
	ep, ok := l.sets[i.Set]
	if !ok || i.Err != nil || i.Key == "" {
		return
	}
	to := time.Since(l.start())
	w := Wait{Endpoint: ep, Key: i.Key, From: max(0, to-i.Waited), To: to}
	l.mu.Lock()
	l.waits = append(l.waits, w)
	l.mu.Unlock()
}

// all returns a copy of the waits so far, in the order they ended.
func (l *waitLog) all() []Wait {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Wait(nil), l.waits...)
}

// withWaitDone returns h with f called on every WaitDone before h's own.
func withWaitDone(h concurry.Hooks, f func(concurry.WaitInfo)) concurry.Hooks {
	next := h.WaitDone
	h.WaitDone = func(i concurry.WaitInfo) {
		f(i)
		if next != nil {
			next(i)
		}
	}
	return h
}

package redis

import "sync"

// line is the queue of one set name in this process: every set of that
// name (and definition) opened through one Backend shares it, so that their
// blocked requests are served first come, first served, as one set's are,
// and a non-waiting Acquire of any of them fails while a request of another
// waits, as on the in-memory backend. The Backend keeps it while a set uses
// it; the last Close drops it.
type line struct {
	def  string        // the definition its sets share
	refs int           // guarded by the Backend's mu; the open sets using it, 0 for a private line
	turn chan struct{} // a token: held by the head waiter's attempt or a projection in flight

	mu    sync.Mutex
	queue []*waiter // guarded by mu; the blocked Acquire calls of these sets, oldest first
	due   due       // guarded by mu; the latest refusal's ready instant
	ref   clockRef  // guarded by mu; the latest attempt's instant
}

func newLine(def string) *line { return &line{def: def, turn: make(chan struct{}, 1)} }

// lineOf returns the line of name for a set of definition def, shared or
// made. A set whose definition differs from the shared line's gets a
// private line: Redis holds one of the two definitions, so the other set's
// every call fails with backend.ErrLimitMismatch and never waits.
func (b *Backend) lineOf(name, def string) *line {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.lines[name]
	switch {
	case l == nil:
		l = newLine(def)
		b.lines[name] = l
	case l.def != def:
		return newLine(def)
	}
	l.refs++
	return l
}

// dropLine gives up a set's use of name's line l; the last use removes it.
func (b *Backend) dropLine(name string, l *line) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l.refs == 0 { // private
		return
	}
	if l.refs--; l.refs == 0 && b.lines[name] == l {
		delete(b.lines, name)
	}
}

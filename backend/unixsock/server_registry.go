package unixsock

import (
	"context"
	"sync"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
)

// registry holds a server's named sets. Every connection that opens a set
// gets its own memory handle, so closing it (or dropping the connection)
// fails only that connection's waiters. An anchor handle keeps each set alive
// while nobody has it open, for its retention time. A registry is safe for
// concurrent use.
type registry struct {
	mem    *memory.Backend
	retain time.Duration // ServerOptions.Retain

	mu     sync.Mutex
	sets   map[string]*entry // guarded by mu
	closed bool              // guarded by mu
}

type entry struct {
	anchor backend.Set
	retain time.Duration
	users  int         // guarded by registry.mu: open handles
	timer  *time.Timer // guarded by registry.mu: forgets the set when it fires
}

func newRegistry(retain time.Duration) *registry {
	return &registry{mem: memory.New(), retain: retain, sets: make(map[string]*entry)}
}

// open returns a new handle on the set name, creating the set with specs the
// first time. It fails with backend.ErrLimitMismatch when the set exists
// with other specs, and with backend.ErrClosed after close.
func (r *registry) open(name string, specs []backend.Spec) (backend.Set, *entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, backend.ErrClosed
	}
	h, err := r.mem.Open(context.Background(), name, specs)
	if err != nil {
		return nil, nil, err
	}
	e := r.sets[name]
	if e == nil {
		anchor, _ := r.mem.Open(context.Background(), name, specs)
		e = &entry{anchor: anchor, retain: r.retention(specs)}
		r.sets[name] = e
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.users++
	return h, e, nil
}

// retention returns how long a set of specs outlives its last user.
func (r *registry) retention(specs []backend.Spec) time.Duration {
	if r.retain != 0 {
		return max(0, r.retain)
	}
	var d time.Duration
	for _, s := range specs {
		if s.Kind == backend.Rate {
			d = max(d, s.Window)
		}
	}
	return d
}

// release records that a handle of name's set was closed.
func (r *registry) release(name string, e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.users--; e.users > 0 || r.closed {
		return
	}
	if e.retain == 0 {
		r.forgetLocked(name, e)
		return
	}
	e.timer = time.AfterFunc(e.retain, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if e.users == 0 && !r.closed {
			r.forgetLocked(name, e)
		}
	})
}

// forgetLocked drops the set. Requires mu held.
func (r *registry) forgetLocked(name string, e *entry) {
	if r.sets[name] == e {
		delete(r.sets, name)
	}
	e.anchor.Close()
}

// close forgets every set; later opens fail.
func (r *registry) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for name, e := range r.sets {
		if e.timer != nil {
			e.timer.Stop()
		}
		r.forgetLocked(name, e)
	}
}

// len returns the number of sets held.
func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sets)
}

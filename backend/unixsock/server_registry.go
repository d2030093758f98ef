package unixsock

import (
	"context"
	"fmt"
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
	mem       *memory.Backend
	retain    time.Duration // ServerOptions.Retain
	idleCheck time.Duration // ServerOptions.IdleCheck
	maxSets   int           // ServerOptions.MaxSets

	mu     sync.Mutex
	sets   map[string]*entry // guarded by mu
	closed bool              // guarded by mu
}

type entry struct {
	anchor backend.Set
	specs  []backend.Spec
	users  int         // guarded by registry.mu: open handles
	idle   time.Time   // guarded by registry.mu: when users last fell to 0
	timer  *time.Timer // guarded by registry.mu: checks the idle set
}

func newRegistry(opts ServerOptions) *registry {
	return &registry{
		mem: memory.New(), retain: opts.Retain, idleCheck: opts.IdleCheck, maxSets: opts.MaxSets,
		sets: make(map[string]*entry),
	}
}

// open returns a new handle on the set name, creating the set with specs the
// first time. It fails with backend.ErrLimitMismatch when the set exists
// with other specs, with ErrServerLimit when it would be a set past
// MaxSets, and with backend.ErrClosed after close.
func (r *registry) open(name string, specs []backend.Spec) (backend.Set, *entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, backend.ErrClosed
	}
	e := r.sets[name]
	if e == nil && len(r.sets) >= r.maxSets {
		return nil, nil, fmt.Errorf("%w: the server holds %d sets (MaxSets)", ErrServerLimit, len(r.sets))
	}
	h, err := r.mem.Open(context.Background(), name, specs)
	if err != nil {
		return nil, nil, err
	}
	if e == nil {
		anchor, _ := r.mem.Open(context.Background(), name, specs)
		e = &entry{anchor: anchor, specs: specs}
		r.sets[name] = e
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.users++
	return h, e, nil
}

// release records that a handle of name's set was closed. A set nobody has
// open is forgotten after Retain, at once when Retain is negative; under the
// default Retain, as soon as it is full again (checked now and every
// IdleCheck), however long that takes: a set in debt or paused is kept, so
// that forgetting it never resets a budget.
func (r *registry) release(name string, e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.users--; e.users > 0 || r.closed {
		return
	}
	e.idle = time.Now()
	r.checkLocked(name, e)
}

// checkLocked forgets the idle set e when its time has come, and otherwise
// arms its timer to check again. Requires mu held.
func (r *registry) checkLocked(name string, e *entry) {
	var wait time.Duration
	switch {
	case r.retain < 0:
	case r.retain > 0:
		wait = r.retain - time.Since(e.idle)
	default:
		if !full(e) {
			wait = r.idleCheck
		}
	}
	if wait <= 0 {
		r.forgetLocked(name, e)
		return
	}
	e.timer = time.AfterFunc(wait, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if e.users == 0 && !r.closed && r.sets[name] == e {
			r.checkLocked(name, e)
		}
	})
}

// full reports whether the set of e is as a new one would be: every limit at
// its capacity, no debt, no pause in force, so that forgetting it resets
// nothing.
func full(e *entry) bool {
	if i, ok := e.anchor.(backend.Idler); ok {
		return i.Idle()
	}
	st, err := e.anchor.Stats(context.Background())
	if err != nil {
		return false
	}
	for i, s := range e.specs {
		if st[i].Available < s.Capacity || st[i].InUse > 0 || st[i].Debt > 0 {
			return false
		}
	}
	return true
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

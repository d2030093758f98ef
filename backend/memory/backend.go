package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/internal/memset"
)

// Backend keeps named sets in this process. Two LimitSets opened with the same
// name share one set; different limits under one name are refused with
// backend.ErrLimitMismatch. An empty name gives a private set. The zero value
// is not usable; call New. A Backend is safe for concurrent use.
type Backend struct {
	mu    sync.Mutex
	named map[string]*namedSet // guarded by mu
}

type namedSet struct {
	set  *memset.Set
	refs int
}

// New returns an empty Backend.
func New() *Backend { return &Backend{named: make(map[string]*namedSet)} }

// Open returns a handle on the set of the given name, creating it with specs
// the first time. Closing a handle wakes only the waiters that came through
// it; the set is forgotten when its last handle is closed. Specs outside the
// contract's range (see backend.CheckSpecs) and names longer than
// backend.MaxNameLen fail with an error matching backend.ErrInvalidLimit.
//
// The set keeps specs rather than a copy (a Keyed opens one set per
// identity, all of one definition): the caller must not modify them
// afterwards.
func (b *Backend) Open(_ context.Context, name string, specs []backend.Spec) (backend.Set, error) {
	if err := backend.CheckSpecs(specs); err != nil {
		return nil, err
	}
	if name == "" {
		return memset.NewSet(specs).Handle(nil), nil
	}
	if err := backend.CheckName(name); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ns, ok := b.named[name]
	if !ok {
		ns = &namedSet{set: memset.NewSet(specs)}
		b.named[name] = ns
	} else if !slices.Equal(ns.set.Specs(), specs) {
		return nil, fmt.Errorf("%w: %q is defined as %v, not %v", backend.ErrLimitMismatch, name, ns.set.Specs(), specs)
	}
	ns.refs++
	return ns.set.Handle(func() { b.forget(name, ns) }), nil
}

func (b *Backend) forget(name string, ns *namedSet) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ns.refs--; ns.refs == 0 && b.named[name] == ns {
		delete(b.named, name)
	}
}

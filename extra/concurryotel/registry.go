package concurryotel

import (
	"fmt"
	"sync"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// RegisterOption configures Register, RegisterPool, RegisterKeyed and
// KeyedHooks. The interface is sealed: use WithBackend.
type RegisterOption interface{ apply(*source) }

type backendOption string

func (o backendOption) apply(s *source) { s.backend = string(o) }

// WithBackend names the backend the registered sets live in, for the
// concurry.backend attribute: give it the backend given to
// concurry.WithBackend (or KeyedOptions.Backend). Its name is derived from
// b's type by [BackendName]. Without it a set has Options.Backend.
func WithBackend(b backend.Backend) RegisterOption { return backendOption(BackendName(b)) }

// source is one registered set, pool or Keyed, with its attributes.
type source struct {
	name    string // the pool's or Keyed's name; a set's is its own
	backend string
}

type poolSource struct {
	source
	pool *concurry.LimitPool
}

type keyedSource struct {
	source
	keyed *concurry.Keyed
}

type setSource struct {
	source
	set *concurry.LimitSet
}

// registry holds what Register and its siblings registered. Hooks read the
// backend of a set from it; the collection callback reads everything.
type registry struct {
	defaultBackend string

	mu       sync.RWMutex
	sets     map[*concurry.LimitSet]source  // guarded by mu; registered with Register
	pools    map[*concurry.LimitPool]source // guarded by mu
	keyed    map[*concurry.Keyed]source     // guarded by mu
	poolSets map[*concurry.LimitSet]source  // guarded by mu; the sets of registered pools
	order    []any                          // guarded by mu; sources in registration order
}

func newRegistry(defaultBackend string) *registry {
	return &registry{
		defaultBackend: defaultBackend,
		sets:           make(map[*concurry.LimitSet]source),
		pools:          make(map[*concurry.LimitPool]source),
		keyed:          make(map[*concurry.Keyed]source),
		poolSets:       make(map[*concurry.LimitSet]source),
	}
}

func (r *registry) newSource(name string, opts []RegisterOption) source {
	s := source{name: name, backend: r.defaultBackend}
	for _, o := range opts {
		o.apply(&s)
	}
	return s
}

// backendOf returns the backend attribute of ls: the one it or its pool was
// registered with, else the default.
func (r *registry) backendOf(ls *concurry.LimitSet) string {
	r.mu.RLock()
	s, ok := r.sets[ls]
	if !ok {
		s, ok = r.poolSets[ls]
	}
	r.mu.RUnlock()
	if ok {
		return s.backend
	}
	return r.defaultBackend
}

// addSet registers ls, or fails with ErrDuplicateName leaving the
// registry as it was.
func (r *registry) addSet(ls *concurry.LimitSet, s source) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.sets[ls]
	r.sets[ls] = s
	if err := r.checkNames(); err != nil {
		if had {
			r.sets[ls] = old
		} else {
			delete(r.sets, ls)
		}
		return err
	}
	if !had {
		r.order = append(r.order, ls)
	}
	return nil
}

// addPool registers p, or fails with ErrDuplicateName leaving the registry
// as it was.
func (r *registry) addPool(p *concurry.LimitPool, s source) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.pools[p]
	r.pools[p] = s
	if !had {
		r.order = append(r.order, p)
	}
	r.indexPoolSets()
	if err := r.checkNames(); err != nil {
		if had {
			r.pools[p] = old
		} else {
			delete(r.pools, p)
			r.order = r.order[:len(r.order)-1]
		}
		r.indexPoolSets()
		return err
	}
	return nil
}

// addKeyed registers k, or fails with ErrDuplicateName when another
// registered Keyed has its name.
func (r *registry) addKeyed(k *concurry.Keyed, s source) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for other, o := range r.keyed {
		if other != k && o.name == s.name {
			return fmt.Errorf("%w: two Keyeds are named %q", ErrDuplicateName, s.name)
		}
	}
	if _, ok := r.keyed[k]; !ok {
		r.order = append(r.order, k)
	}
	r.keyed[k] = s
	return nil
}

// checkNames fails with ErrDuplicateName when two registered sets, on their
// own or in pools, have one name. Requires mu held.
func (r *registry) checkNames() error {
	seen := make(map[string]*concurry.LimitSet, len(r.sets)+len(r.poolSets))
	for _, m := range []map[*concurry.LimitSet]source{r.sets, r.poolSets} {
		for ls := range m {
			if other, ok := seen[ls.Name()]; ok && other != ls {
				return fmt.Errorf("%w: two sets are named %q", ErrDuplicateName, ls.Name())
			}
			seen[ls.Name()] = ls
		}
	}
	return nil
}

// remove forgets a registered source and reports whether it was registered.
func (r *registry) remove(v any) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	found := false
	switch v := v.(type) {
	case *concurry.LimitSet:
		_, found = r.sets[v]
		delete(r.sets, v)
	case *concurry.LimitPool:
		_, found = r.pools[v]
		delete(r.pools, v)
		r.indexPoolSets()
	case *concurry.Keyed:
		_, found = r.keyed[v]
		delete(r.keyed, v)
	}
	if found {
		for i, o := range r.order {
			if o == v {
				r.order = append(r.order[:i:i], r.order[i+1:]...)
				break
			}
		}
	}
	return found
}

// indexPoolSets rebuilds poolSets, the first registered pool of each set
// winning. Requires mu held.
func (r *registry) indexPoolSets() {
	clear(r.poolSets)
	for _, o := range r.order {
		p, ok := o.(*concurry.LimitPool)
		if !ok {
			continue
		}
		for i := range p.Len() {
			if _, seen := r.poolSets[p.At(i)]; !seen {
				r.poolSets[p.At(i)] = r.pools[p]
			}
		}
	}
}

// snapshot returns the registered sources in registration order, so that
// the collection reads them outside the lock.
func (r *registry) snapshot() (sets []setSource, pools []poolSource, keyed []keyedSource) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, o := range r.order {
		switch o := o.(type) {
		case *concurry.LimitSet:
			sets = append(sets, setSource{r.sets[o], o})
		case *concurry.LimitPool:
			pools = append(pools, poolSource{r.pools[o], o})
		case *concurry.Keyed:
			keyed = append(keyed, keyedSource{r.keyed[o], o})
		}
	}
	return sets, pools, keyed
}

package observe

import (
	"fmt"
	"sync"

	"github.com/concurry/concurry"
)

// Source is one registered set, pool or Keyed, with its attributes.
type Source struct {
	Name    string // the pool's or Keyed's name; a set's is its own
	Backend string
}

type PoolSource struct {
	Source
	Pool *concurry.LimitPool
}

type KeyedSource struct {
	Source
	Keyed *concurry.Keyed
}

type SetSource struct {
	Source
	Set *concurry.LimitSet
}

// Registry holds what Register and its siblings registered. Hooks read the
// backend of a set from it; the collection callback reads everything.
type Registry struct {
	defaultBackend string

	mu       sync.RWMutex
	sets     map[*concurry.LimitSet]Source  // guarded by mu; registered with Register
	pools    map[*concurry.LimitPool]Source // guarded by mu
	keyed    map[*concurry.Keyed]Source     // guarded by mu
	poolSets map[*concurry.LimitSet]Source  // guarded by mu; the sets of registered pools
	order    []any                          // guarded by mu; sources in registration order
}

func NewRegistry(defaultBackend string) *Registry {
	return &Registry{
		defaultBackend: defaultBackend,
		sets:           make(map[*concurry.LimitSet]Source),
		pools:          make(map[*concurry.LimitPool]Source),
		keyed:          make(map[*concurry.Keyed]Source),
		poolSets:       make(map[*concurry.LimitSet]Source),
	}
}

// NewSource returns the source of a registration under name, with the
// registry's default backend.
func (r *Registry) NewSource(name string) Source {
	return Source{Name: name, Backend: r.defaultBackend}
}

// BackendOf returns the backend attribute of ls: the one it or its pool was
// registered with, else the default.
func (r *Registry) BackendOf(ls *concurry.LimitSet) string {
	r.mu.RLock()
	s, ok := r.sets[ls]
	if !ok {
		s, ok = r.poolSets[ls]
	}
	r.mu.RUnlock()
	if ok {
		return s.Backend
	}
	return r.defaultBackend
}

// AddSet registers ls, or fails with ErrDuplicateName leaving the
// Registry as it was.
func (r *Registry) AddSet(ls *concurry.LimitSet, s Source) error {
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

// AddPool registers p, or fails with ErrDuplicateName leaving the Registry
// as it was.
func (r *Registry) AddPool(p *concurry.LimitPool, s Source) error {
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

// AddKeyed registers k, or fails with ErrDuplicateName when another
// registered Keyed has its name.
func (r *Registry) AddKeyed(k *concurry.Keyed, s Source) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for other, o := range r.keyed {
		if other != k && o.Name == s.Name {
			return fmt.Errorf("%w: two Keyeds are named %q", ErrDuplicateName, s.Name)
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
func (r *Registry) checkNames() error {
	seen := make(map[string]*concurry.LimitSet, len(r.sets)+len(r.poolSets))
	for _, m := range []map[*concurry.LimitSet]Source{r.sets, r.poolSets} {
		for ls := range m {
			if other, ok := seen[ls.Name()]; ok && other != ls {
				return fmt.Errorf("%w: two sets are named %q", ErrDuplicateName, ls.Name())
			}
			seen[ls.Name()] = ls
		}
	}
	return nil
}

// Remove forgets a registered Source and reports whether it was registered.
func (r *Registry) Remove(v any) bool {
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
func (r *Registry) indexPoolSets() {
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

// Snapshot returns the registered sources in registration order, so that
// the collection reads them outside the lock.
func (r *Registry) Snapshot() (sets []SetSource, pools []PoolSource, keyed []KeyedSource) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, o := range r.order {
		switch o := o.(type) {
		case *concurry.LimitSet:
			sets = append(sets, SetSource{r.sets[o], o})
		case *concurry.LimitPool:
			pools = append(pools, PoolSource{r.pools[o], o})
		case *concurry.Keyed:
			keyed = append(keyed, KeyedSource{r.keyed[o], o})
		}
	}
	return sets, pools, keyed
}

package concurryprom

import (
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/internal/observe"
)

// RegisterOption configures Register, RegisterPool, RegisterKeyed and
// KeyedHooks. The interface is sealed: use WithBackend.
type RegisterOption interface{ apply(*observe.Source) }

type backendOption string

func (o backendOption) apply(s *observe.Source) { s.Backend = string(o) }

// WithBackend names the backend the registered sets live in, for the
// concurry.backend attribute: give it the backend given to
// concurry.WithBackend (or KeyedOptions.Backend). Its name is derived from
// b's type by [BackendName]. Without it a set has Options.Backend.
func WithBackend(b backend.Backend) RegisterOption { return backendOption(BackendName(b)) }

// newSource returns the source of a registration under name with opts.
func newSource(r *observe.Registry, name string, opts []RegisterOption) observe.Source {
	s := r.NewSource(name)
	for _, o := range opts {
		o.apply(&s)
	}
	return s
}

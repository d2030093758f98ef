package concurry

import (
	"fmt"
	"maps"

	"github.com/concurry/concurry/backend"
)

// Option configures NewLimitSet. The interface is sealed: use the With
// functions of this package.
type Option interface{ applySet(*setOptions) }

type setOptions struct {
	private  bool // open the backend set without a name (Keyed, in memory)
	hooks    *Hooks
	counters *setCounters // shared counters (Keyed); nil: the set's own
	name     string
	config   map[string]any
	backend  backend.Backend
}

type optionFunc func(*setOptions)

func (f optionFunc) applySet(o *setOptions) { f(o) }

// WithName names the set. Shared backends find a set by its name, so every
// process that names the same set shares its limits; the in-memory backend
// needs no name.
func WithName(name string) Option { return optionFunc(func(o *setOptions) { o.name = name }) }

// WithConfig attaches metadata, such as a region, account or endpoint, that
// every acquisition from the set hands back through [Acquisition.Config]. The
// map is copied (shallowly).
func WithConfig(config map[string]any) Option {
	c := maps.Clone(config)
	return optionFunc(func(o *setOptions) { o.config = c })
}

// WithBackend keeps the set's state in b instead of in a private in-memory
// backend: a Unix-socket server shared by the processes of one host, or Redis.
func WithBackend(b backend.Backend) Option { return optionFunc(func(o *setOptions) { o.backend = b }) }

// Balancing selects how a LimitPool picks a set for each acquisition. The zero
// value is RoundRobin.
type Balancing uint8

const (
	// RoundRobin cycles through the sets, starting at the pool's worker index.
	RoundRobin Balancing = iota
	// Random picks a set uniformly at random.
	Random
)

// String returns "RoundRobin", "Random", or "Balancing(N)" for a value that
// is neither.
func (b Balancing) String() string {
	switch b {
	case RoundRobin:
		return "RoundRobin"
	case Random:
		return "Random"
	}
	return fmt.Sprintf("Balancing(%d)", uint8(b))
}

// PoolOption configures NewLimitPool. The interface is sealed.
type PoolOption interface{ applyPool(*poolOptions) }

type poolOptions struct {
	balancing   Balancing
	workerIndex int
	hooks       *Hooks
}

type poolOptionFunc func(*poolOptions)

func (f poolOptionFunc) applyPool(o *poolOptions) { f(o) }

// WithBalancing sets the pool's balancing; the default is RoundRobin.
// NewLimitPool refuses a value that is neither RoundRobin nor Random.
func WithBalancing(b Balancing) PoolOption {
	return poolOptionFunc(func(o *poolOptions) { o.balancing = b })
}

// WithWorkerIndex sets where RoundRobin starts: a pool with worker index i
// over n sets grants its first acquisition from set i mod n. Give each worker
// of a pool its own index so that they start on different sets.
func WithWorkerIndex(i int) PoolOption {
	return poolOptionFunc(func(o *poolOptions) { o.workerIndex = i })
}

// SetPoolOption configures a LimitSet or a LimitPool.
type SetPoolOption interface {
	Option
	PoolOption
}

// WithHooks sets the hooks a LimitSet or LimitPool calls as it decides (see
// [Hooks]). The struct is copied; nil fields are never called.
func WithHooks(h Hooks) SetPoolOption { return hooksOption{&h} }

type hooksOption struct{ h *Hooks }

func (o hooksOption) applySet(s *setOptions)   { s.hooks = o.h }
func (o hooksOption) applyPool(p *poolOptions) { p.hooks = o.h }

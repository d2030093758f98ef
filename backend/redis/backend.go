package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/backend"
)

// resourceAlg is the algorithm code the scripts use for a Resource spec.
const resourceAlg = 9

// Backend keeps named limit sets in Redis, Valkey or a Redis Cluster, shared
// by every process that opens the same name through the same key prefix. The
// zero value is not usable; call New. A Backend is safe for concurrent use.
type Backend struct {
	client redis.UniversalClient
	opts   Options
	clock  func() int64 // tests only: the instant every script uses, in µs; nil for Redis TIME

	scripts atomic.Bool   // the server has no functions: run the entry points as scripts
	loads   atomic.Uint64 // library loads so far
	loadMu  sync.Mutex    // one library load at a time
	down    atomic.Bool   // the latest call found Redis unreachable

	mu       sync.Mutex
	degraded map[string]*atomic.Int64 // guarded by mu; per set name, for the names that counted a decision
	shapes   map[uint64][]*shape      // guarded by mu; by a hash of their specs
	nshapes  int                      // guarded by mu
	lines    map[string]*line         // guarded by mu; by set name, the lines of the names with an open set
}

var _ backend.LazyOpener = (*Backend)(nil)

// New returns a Backend over client, which may be a single node, a Sentinel
// failover client or a Cluster client. The Backend does not own the client:
// closing the client is the caller's job, after every set is closed.
func New(client redis.UniversalClient, opts Options) *Backend {
	return &Backend{client: client, opts: opts.withDefaults(), degraded: make(map[string]*atomic.Int64), shapes: make(map[uint64][]*shape), lines: make(map[string]*line)}
}

// Degraded returns how many decisions the sets of the given name made
// through this Backend while Redis could not be reached: requests refused
// under FailClosed, granted under FailOpen, and settles that could not be
// sent.
func (b *Backend) Degraded(name string) int64 {
	b.mu.Lock()
	c := b.degraded[name]
	b.mu.Unlock()
	if c == nil {
		return 0
	}
	return c.Load()
}

func (b *Backend) counter(name string) *atomic.Int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.degraded[name]
	if !ok {
		c = new(atomic.Int64)
		b.degraded[name] = c
	}
	return c
}

// Open returns the set of the given name. The first process to use a name
// stores its definitions in Redis; a later Open, or any call of a set, that
// finds other definitions fails with an error matching
// backend.ErrLimitMismatch. Open fails, before reaching Redis, with
// backend.ErrNameRequired for an empty name and backend.ErrInvalidLimit for
// a name or limits outside the contract's range (backend.CheckName and
// backend.CheckSpecs: the same on every backend); and, under FailClosed,
// with an error matching backend.ErrBackendUnavailable when Redis cannot be
// reached, or ctx's error when it ends first. Under FailOpen an unreachable
// Redis does not fail Open: the definitions are checked on the first call
// that reaches Redis.
func (b *Backend) Open(ctx context.Context, name string, specs []backend.Spec) (backend.Set, error) {
	s, err := b.OpenLazy(name, specs)
	if err != nil {
		return nil, err
	}
	if _, err := s.Stats(ctx); err != nil {
		if !errors.Is(err, backend.ErrBackendUnavailable) || b.opts.Outage == FailClosed {
			return nil, err
		}
	}
	return s, nil
}

// OpenLazy implements backend.LazyOpener: it returns the set of the given
// name as Open does, with the same checks before Redis, but makes no call:
// the definitions are checked by the set's first call, which fails with an
// error matching backend.ErrLimitMismatch when Redis holds others (as every
// call does), and an unreachable Redis is met, under the outage policy, by
// that call.
func (b *Backend) OpenLazy(name string, specs []backend.Spec) (backend.Set, error) {
	if err := backend.CheckName(name); err != nil {
		return nil, err
	}
	if err := backend.CheckSpecs(specs); err != nil {
		return nil, err
	}
	return newSet(b, name, specs), nil
}

// define returns the canonical definition of specs, compared byte for byte
// with the one stored in Redis.
func define(specs []backend.Spec) string {
	var sb strings.Builder
	sb.WriteString("concurry/4")
	for _, sp := range specs {
		if sp.Kind == backend.Resource {
			fmt.Fprintf(&sb, "|resource:%d:%s", sp.Capacity, strconv.Quote(sp.Key))
			continue
		}
		fmt.Fprintf(&sb, "|%v:%d:%d:%s", sp.Algorithm, int64(sp.Window), sp.Capacity, strconv.Quote(sp.Key))
	}
	return sb.String()
}

// params returns the five script numbers of sp, a spec CheckSpecs accepts:
// algorithm, capacity, window in µs (rounded up), and capacity and window
// divided by their gcd. Every one is at most 2^50, exact in Lua.
func params(sp backend.Spec) [5]int64 {
	if sp.Kind == backend.Resource {
		return [5]int64{resourceAlg, sp.Capacity, 0, 0, 0}
	}
	w := max(1, int64((sp.Window+time.Microsecond-1)/time.Microsecond))
	g := gcd(sp.Capacity, w)
	return [5]int64{int64(sp.Algorithm), sp.Capacity, w, sp.Capacity / g, w / g}
}

// reached records whether a call reached Redis (err is nil or not an
// ErrBackendUnavailable) and logs when that changes.
func (b *Backend) reached(err error) {
	if err != nil && errors.Is(err, backend.ErrBackendUnavailable) {
		if !b.down.Swap(true) {
			b.opts.Logger.Warn("concurry: redis unreachable", "policy", b.opts.Outage.String(), "err", err)
		}
		return
	}
	if b.down.Load() && b.down.Swap(false) {
		b.opts.Logger.Info("concurry: redis reachable again")
	}
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

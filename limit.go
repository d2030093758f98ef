package concurry

import (
	"fmt"
	"strings"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// Algorithm selects how a RateLimit or CallLimit spends its capacity over its
// window. The zero value is TokenBucket.
type Algorithm uint8

// The five algorithms. Their exact semantics are documented on
// [algorithms.Kind]; TokenBucket and GCRA refund unused units, the others do not.
const (
	TokenBucket   = Algorithm(algorithms.TokenBucket)   // bursts up to Capacity, refills continuously; refunds
	LeakyBucket   = Algorithm(algorithms.LeakyBucket)   // paces each unit Window/Capacity apart; never bursts
	SlidingWindow = Algorithm(algorithms.SlidingWindow) // exact rolling sum over (now−Window, now]
	FixedWindow   = Algorithm(algorithms.FixedWindow)   // epoch-aligned counters; up to 2× Capacity across a boundary
	GCRA          = Algorithm(algorithms.GCRA)          // theoretical arrival time; admits what TokenBucket admits; refunds
)

// String returns the algorithm's name, such as "TokenBucket".
func (a Algorithm) String() string { return algorithms.Kind(a).String() }

// Refunds reports whether the algorithm gives back units that were requested
// but not used.
func (a Algorithm) Refunds() bool { return algorithms.Kind(a).Refunds() }

// ParseAlgorithm returns the algorithm named s. Names are matched without
// regard to case, '-' or '_': "token_bucket", "TokenBucket" and "tokenbucket"
// all name TokenBucket.
func ParseAlgorithm(s string) (Algorithm, error) {
	norm := strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(s))
	for a := TokenBucket; a <= GCRA; a++ {
		if strings.ToLower(a.String()) == norm {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown algorithm %q", ErrInvalidLimit, s)
}

// LimitKind says which of the three limit types a limit is.
type LimitKind uint8

const (
	KindRate     LimitKind = iota // a RateLimit
	KindCall                      // a CallLimit
	KindResource                  // a ResourceLimit
)

// String returns "rate", "call" or "resource".
func (k LimitKind) String() string {
	switch k {
	case KindCall:
		return "call"
	case KindResource:
		return "resource"
	}
	return "rate"
}

func kindOf(l Limit) LimitKind {
	switch l.(type) {
	case CallLimit:
		return KindCall
	case ResourceLimit:
		return KindResource
	}
	return KindRate
}

// CallKey is the key of every CallLimit.
const CallKey = "call_count"

// Limit is one constraint of a LimitSet: a [RateLimit], [CallLimit] or
// [ResourceLimit]. Limits are plain values; the set built from them does the
// accounting. The interface is sealed.
type Limit interface {
	spec() backend.Spec
	String() string
}

// RateLimit caps how many units of Key may be used per Window, for example
// tokens per minute. A request must name its key with the amount it expects to
// use, and the acquisition must then report the real usage with Update.
type RateLimit struct {
	Key       string
	Window    time.Duration
	Capacity  int64
	Algorithm Algorithm
}

// CallLimit caps calls per Window. Every acquisition from a set holding it
// takes one call, named or not; its key is [CallKey].
type CallLimit struct {
	Window    time.Duration
	Capacity  int64
	Algorithm Algorithm
}

// ResourceLimit is a counting semaphore of Capacity units, such as
// connections, held from Acquire until Release. A request that does not name
// its key takes one unit.
type ResourceLimit struct {
	Key      string
	Capacity int64
}

func (l RateLimit) spec() backend.Spec {
	return backend.Spec{Key: l.Key, Kind: backend.Rate, Algorithm: algorithms.Kind(l.Algorithm), Window: l.Window, Capacity: l.Capacity}
}

func (l CallLimit) spec() backend.Spec {
	return backend.Spec{Key: CallKey, Kind: backend.Rate, Algorithm: algorithms.Kind(l.Algorithm), Window: l.Window, Capacity: l.Capacity}
}

func (l ResourceLimit) spec() backend.Spec {
	return backend.Spec{Key: l.Key, Kind: backend.Resource, Capacity: l.Capacity}
}

// String describes the limit, e.g. "RateLimit(tokens: 1000 per 1m0s, TokenBucket)".
func (l RateLimit) String() string {
	return fmt.Sprintf("RateLimit(%s: %d per %v, %v)", l.Key, l.Capacity, l.Window, l.Algorithm)
}

// String describes the limit, e.g. "CallLimit(100 per 1m0s, SlidingWindow)".
func (l CallLimit) String() string {
	return fmt.Sprintf("CallLimit(%d per %v, %v)", l.Capacity, l.Window, l.Algorithm)
}

// String describes the limit, e.g. "ResourceLimit(connections: 10)".
func (l ResourceLimit) String() string {
	return fmt.Sprintf("ResourceLimit(%s: %d)", l.Key, l.Capacity)
}

// The range of a limit. NewLimitSet refuses anything outside it with
// ErrInvalidLimit, on every backend.
const (
	MaxLimits   = backend.MaxSpecs    // the most limits one LimitSet may hold: 64
	MaxCapacity = backend.MaxCapacity // the largest Capacity: 2^50
	MaxWindow   = backend.MaxWindow   // the longest Window: 366 days
	MaxKeyLen   = backend.MaxKeyLen   // the longest key: 256 bytes
	MaxNameLen  = backend.MaxNameLen  // the longest set name (WithName): 1,024 bytes
)

// validateLimits checks one set's definitions and returns their specs.
func validateLimits(limits []Limit) ([]backend.Spec, error) {
	if len(limits) > MaxLimits {
		return nil, fmt.Errorf("%w: %d limits, more than %d in one set", ErrInvalidLimit, len(limits), MaxLimits)
	}
	specs := make([]backend.Spec, 0, len(limits))
	for i, l := range limits {
		if l == nil {
			return nil, fmt.Errorf("%w: limit %d is nil", ErrInvalidLimit, i)
		}
		s := l.spec()
		if _, isCall := l.(CallLimit); !isCall && s.Key == CallKey {
			return nil, fmt.Errorf("%w: %v: key %q is reserved for CallLimit", ErrInvalidLimit, l, CallKey)
		}
		specs = append(specs, s)
	}
	if err := backend.CheckSpecs(specs); err != nil {
		return nil, err
	}
	return specs, nil
}

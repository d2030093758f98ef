package backend

import (
	"fmt"
	"time"

	"github.com/concurry/concurry/algorithms"
)

// The range of the contract, the same on every backend. A definition or
// request outside it is refused before anything is taken, on the client side
// of a shared backend as well as in its server, so that a bad request never
// costs a connection or the holdings on it.
const (
	// MaxCapacity is the largest Capacity of any limit: 2^50. Every sum of
	// amounts a backend keeps (held units, debt, counters) stays far from
	// overflowing int64 below it, and Redis (whose Lua numbers are doubles)
	// keeps it exact.
	MaxCapacity int64 = 1 << 50
	// MaxWindow is the longest Window of a rate limit: 366 days.
	MaxWindow = 366 * 24 * time.Hour
	// MaxSpecs is the most limits one set may hold.
	MaxSpecs = 64
	// MaxNameLen is the longest set name, in bytes.
	MaxNameLen = 1024
	// MaxKeyLen is the longest limit key, in bytes.
	MaxKeyLen = 256
)

// CheckName reports whether name is usable as a shared set's name: non-empty
// (ErrNameRequired) and at most MaxNameLen bytes (ErrInvalidLimit).
func CheckName(name string) error {
	switch {
	case name == "":
		return ErrNameRequired
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: set name of %d bytes, more than %d", ErrInvalidLimit, len(name), MaxNameLen)
	}
	return nil
}

// CheckSpecs reports whether specs are a valid set definition: at most
// MaxSpecs of them; every key non-empty and at most MaxKeyLen bytes; every
// capacity in [1, MaxCapacity]; every rate limit with a window in
// (0, MaxWindow] and a known algorithm; and no two specs clashing (a resource
// sharing its key with anything, or two rate limits of one key and window).
// The error matches ErrInvalidLimit and names the offending spec.
func CheckSpecs(specs []Spec) error {
	if len(specs) > MaxSpecs {
		return fmt.Errorf("%w: %d limits, more than %d in one set", ErrInvalidLimit, len(specs), MaxSpecs)
	}
	for i, s := range specs {
		if err := s.check(); err != nil {
			return fmt.Errorf("%w: limit %d (%q): %s", ErrInvalidLimit, i, truncate(s.Key), err)
		}
		for j, o := range specs[:i] {
			if o.Key != s.Key {
				continue
			}
			if o.Kind == Resource || s.Kind == Resource {
				return fmt.Errorf("%w: limits %d and %d share key %q, and one is a resource", ErrInvalidLimit, j, i, s.Key)
			}
			if o.Window == s.Window {
				return fmt.Errorf("%w: limits %d and %d have the same key %q and window %v", ErrInvalidLimit, j, i, s.Key, s.Window)
			}
		}
	}
	return nil
}

// CheckAmounts reports whether amounts are a valid request of a set of
// specs: one amount per spec, each in [0, its capacity]. The error matches
// ErrInvalidRequest. The root package never asks for anything else; a shared
// backend's client checks it before sending, since its server would refuse
// the request.
func CheckAmounts(specs []Spec, amounts []int64) error {
	if len(amounts) != len(specs) {
		return fmt.Errorf("%w: %d amounts for a set of %d limits", ErrInvalidRequest, len(amounts), len(specs))
	}
	for i, n := range amounts {
		if n < 0 || n > specs[i].Capacity {
			return fmt.Errorf("%w: amount %d of %q is outside [0, %d]", ErrInvalidRequest, n, truncate(specs[i].Key), specs[i].Capacity)
		}
	}
	return nil
}

// check returns a description of what is wrong with s, or nil.
func (s Spec) check() error {
	switch {
	case s.Key == "":
		return fmt.Errorf("empty key")
	case len(s.Key) > MaxKeyLen:
		return fmt.Errorf("key of %d bytes, more than %d", len(s.Key), MaxKeyLen)
	case s.Kind > Resource:
		return fmt.Errorf("unknown kind %d", s.Kind)
	case s.Capacity <= 0:
		return fmt.Errorf("capacity %d must be positive", s.Capacity)
	case s.Capacity > MaxCapacity:
		return fmt.Errorf("capacity %d exceeds the maximum 2^50", s.Capacity)
	case s.Kind == Resource:
		return nil
	case s.Window <= 0:
		return fmt.Errorf("window %v must be positive", s.Window)
	case s.Window > MaxWindow:
		return fmt.Errorf("window %v exceeds the maximum of 366 days", s.Window)
	case s.Algorithm > algorithms.GCRA:
		return fmt.Errorf("unknown algorithm %d", s.Algorithm)
	}
	return nil
}

func truncate(key string) string {
	if len(key) > 40 {
		return key[:40] + "…"
	}
	return key
}

// Package observe holds what the metrics modules (extra/concurryotel,
// extra/concurryprom) share: the registry of the sets, pools and Keyeds they
// observe, and the values of their attributes.
package observe

import (
	"errors"
	"path"
	"reflect"
	"strings"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// OutcomeGranted is the outcome of a granted acquisition; a refusal has its
// cause (concurry.RefusalCause's String), and a LimitPool's losing wait on
// one of its sets OutcomeClaimed.
const (
	OutcomeGranted = "granted"
	OutcomeClaimed = "claimed"
)

// algorithmNames are the values of the algorithm attribute, by algorithm.
var algorithmNames = [...]string{
	concurry.TokenBucket:   "token_bucket",
	concurry.LeakyBucket:   "leaky_bucket",
	concurry.SlidingWindow: "sliding_window",
	concurry.FixedWindow:   "fixed_window",
	concurry.GCRA:          "gcra",
}

// AlgorithmOf returns the algorithm attribute of a limit: its algorithm in
// snake case, or "semaphore" for a ResourceLimit.
func AlgorithmOf(l concurry.Limit) string {
	var a concurry.Algorithm
	switch l := l.(type) {
	case concurry.RateLimit:
		a = l.Algorithm
	case concurry.CallLimit:
		a = l.Algorithm
	default:
		return "semaphore"
	}
	if int(a) < len(algorithmNames) {
		return algorithmNames[a]
	}
	return strings.ToLower(a.String())
}

// AlgorithmOfKey returns the algorithm attribute of key's limit in ls (the
// one with the shortest window), or "" when ls has no such key.
func AlgorithmOfKey(ls *concurry.LimitSet, key string) string {
	if key == "" {
		return ""
	}
	l, ok := ls.Limit(key)
	if !ok {
		return ""
	}
	return AlgorithmOf(l)
}

// StatsAlgorithm returns the algorithm attribute of a limit's stats.
func StatsAlgorithm(l concurry.LimitStats) string {
	if l.Kind == concurry.KindResource {
		return "semaphore"
	}
	if int(l.Algorithm) < len(algorithmNames) {
		return algorithmNames[l.Algorithm]
	}
	return strings.ToLower(l.Algorithm.String())
}

// OutcomeOf returns the outcome attribute of a wait that ended with err.
func OutcomeOf(err error) string {
	switch {
	case err == nil:
		return OutcomeGranted
	case errors.Is(err, backend.ErrClaimed):
		return OutcomeClaimed
	}
	return concurry.CauseOf(err).String()
}

// BackendName returns the backend attribute of b: the last element
// of the import path of b's type, so "memory" for memory.Backend,
// "unixsock" for unixsock.Client and "redis" for redis.Backend. It returns
// "memory" for a nil b, the backend of a set made without
// concurry.WithBackend.
func BackendName(b backend.Backend) string {
	if b == nil {
		return DefaultBackend
	}
	t := reflect.TypeOf(b)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if p := t.PkgPath(); p != "" {
		return path.Base(p)
	}
	return t.String()
}

const DefaultBackend = "memory"

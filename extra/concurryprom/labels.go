package concurryprom

import (
	"context"
	"errors"
	"path"
	"reflect"
	"strings"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// The label names of the metrics (see the package documentation).
const (
	LabelSet       = "set"       // the LimitSet's name (concurry.WithName), or a Keyed's name
	LabelBackend   = "backend"   // "memory", "unixsock", "redis", …
	LabelKey       = "key"       // the key of a limit
	LabelAlgorithm = "algorithm" // "token_bucket", …, "semaphore" for a ResourceLimit
	LabelWindow    = "window"    // a rate limit's window as a Go duration ("1m0s"); "" for a ResourceLimit
	LabelOutcome   = "outcome"   // "granted" or the cause of a refusal
	LabelKind      = "kind"      // of feedback: "pause" or "lower"
	LabelPool      = "pool"      // the name a LimitPool was registered under
	LabelIndex     = "index"     // a set's index in its pool
)

// OutcomeGranted is the outcome label of a granted acquisition; a refusal
// has its cause (concurry.RefusalCause's String: "would_block", "deadline",
// "canceled", "closed", "unavailable", "invalid"), and a LimitPool's losing
// wait on one of its sets "claimed".
const OutcomeGranted = "granted"

const outcomeClaimed = "claimed"

// algorithmNames are the values of the algorithm label, by algorithm.
var algorithmNames = [...]string{
	concurry.TokenBucket:   "token_bucket",
	concurry.LeakyBucket:   "leaky_bucket",
	concurry.SlidingWindow: "sliding_window",
	concurry.FixedWindow:   "fixed_window",
	concurry.GCRA:          "gcra",
}

// algorithmOf returns the algorithm label of a limit: its algorithm in
// snake case, or "semaphore" for a ResourceLimit.
func algorithmOf(l concurry.Limit) string {
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

// algorithmOfKey returns the algorithm label of key's limit in ls (the
// one with the shortest window), or "" when ls has no such key.
func algorithmOfKey(ls *concurry.LimitSet, key string) string {
	if key == "" {
		return ""
	}
	l, ok := ls.Limit(key)
	if !ok {
		return ""
	}
	return algorithmOf(l)
}

// statsAlgorithm returns the algorithm label of a limit's stats.
func statsAlgorithm(l concurry.LimitStats) string {
	if l.Kind == concurry.KindResource {
		return "semaphore"
	}
	if int(l.Algorithm) < len(algorithmNames) {
		return algorithmNames[l.Algorithm]
	}
	return strings.ToLower(l.Algorithm.String())
}

// outcomeOf returns the outcome label of a wait that ended with err.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return OutcomeGranted
	case errors.Is(err, backend.ErrClaimed):
		return outcomeClaimed
	case errors.Is(err, concurry.ErrWouldBlock):
		return concurry.CauseWouldBlock.String()
	case errors.Is(err, context.DeadlineExceeded):
		return concurry.CauseDeadline.String()
	case errors.Is(err, context.Canceled):
		return concurry.CauseCanceled.String()
	case errors.Is(err, concurry.ErrClosed):
		return concurry.CauseClosed.String()
	case errors.Is(err, concurry.ErrInvalidRequest), errors.Is(err, concurry.ErrUnknownKey),
		errors.Is(err, concurry.ErrExceedsCapacity), errors.Is(err, concurry.ErrInvalidLimit):
		return concurry.CauseInvalid.String()
	}
	return concurry.CauseUnavailable.String()
}

// BackendName returns the backend label of b: the last element
// of the import path of b's type, so "memory" for memory.Backend,
// "unixsock" for unixsock.Client and "redis" for redis.Backend. It returns
// "memory" for a nil b, the backend of a set made without
// concurry.WithBackend.
func BackendName(b backend.Backend) string {
	if b == nil {
		return defaultBackend
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

const defaultBackend = "memory"

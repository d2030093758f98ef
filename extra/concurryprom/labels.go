package concurryprom

import (
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/internal/observe"
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
const OutcomeGranted = observe.OutcomeGranted

// BackendName returns the backend label of b: the last element
// of the import path of b's type, so "memory" for memory.Backend,
// "unixsock" for unixsock.Client and "redis" for redis.Backend. It returns
// "memory" for a nil b, the backend of a set made without
// concurry.WithBackend.
func BackendName(b backend.Backend) string { return observe.BackendName(b) }

package concurryotel

import (
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/internal/observe"
)

// The attribute keys of the instruments (see the package documentation).
const (
	AttrSet       = "concurry.set.name"        // the LimitSet's name (concurry.WithName), or a Keyed's name
	AttrBackend   = "concurry.backend"         // "memory", "unixsock", "redis", …
	AttrKey       = "concurry.limit.key"       // the key of a limit
	AttrAlgorithm = "concurry.limit.algorithm" // "token_bucket", …, "semaphore" for a ResourceLimit
	AttrWindow    = "concurry.limit.window"    // a rate limit's window as a Go duration ("1m0s")
	AttrOutcome   = "concurry.outcome"         // "granted" or the cause of a refusal
	AttrFeedback  = "concurry.feedback.kind"   // "pause" or "lower"
	AttrPool      = "concurry.pool.name"       // the name a LimitPool was registered under
	AttrPoolIndex = "concurry.pool.index"      // a set's index in its pool
)

// OutcomeGranted is the concurry.outcome of a granted acquisition; a refusal
// has its cause (concurry.RefusalCause's String: "would_block", "deadline",
// "canceled", "closed", "unavailable", "invalid"), and a LimitPool's losing
// wait on one of its sets "claimed".
const OutcomeGranted = observe.OutcomeGranted

// BackendName returns the concurry.backend attribute of b: the last element
// of the import path of b's type, so "memory" for memory.Backend,
// "unixsock" for unixsock.Client and "redis" for redis.Backend. It returns
// "memory" for a nil b, the backend of a set made without
// concurry.WithBackend.
func BackendName(b backend.Backend) string { return observe.BackendName(b) }

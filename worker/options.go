package worker

import (
	"fmt"
	"math"
	"time"

	"github.com/concurry/concurry"
)

// Mode selects where a pool runs its tasks. The zero value is Goroutine.
type Mode uint8

const (
	// Goroutine gives each of MaxWorkers workers its own goroutine, which
	// owns one T built at NewPool and runs that worker's tasks one at a time.
	Goroutine Mode = iota
	// Sync runs each task in the goroutine that submits it, one at a time,
	// with one T built at NewPool; Submit returns a completed future.
	Sync
	// OnDemand builds a fresh T for every task, in a goroutine of its own,
	// with at most MaxWorkers alive at once, and discards it afterwards.
	OnDemand
)

// String returns "Goroutine", "Sync" or "OnDemand".
func (m Mode) String() string {
	switch m {
	case Goroutine:
		return "Goroutine"
	case Sync:
		return "Sync"
	case OnDemand:
		return "OnDemand"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Balancing selects which worker of a pool receives a task. The zero value,
// DefaultBalancing, is RoundRobin for a Goroutine pool and Random for an
// OnDemand pool, where it picks among the free worker indices.
type Balancing uint8

const (
	// DefaultBalancing is RoundRobin, or Random in OnDemand mode.
	DefaultBalancing Balancing = iota
	// RoundRobin cycles through the workers in index order.
	RoundRobin
	// LeastActive picks the worker with the fewest unfinished tasks (queued
	// or running); ties go to the lowest index.
	LeastActive
	// LeastTotal picks the worker that has been given the fewest tasks so
	// far; ties go to the lowest index.
	LeastTotal
	// Random picks a worker uniformly at random.
	Random
)

// String returns the balancing's name, such as "RoundRobin".
func (b Balancing) String() string {
	switch b {
	case DefaultBalancing:
		return "Default"
	case RoundRobin:
		return "RoundRobin"
	case LeastActive:
		return "LeastActive"
	case LeastTotal:
		return "LeastTotal"
	case Random:
		return "Random"
	}
	return fmt.Sprintf("Balancing(%d)", uint8(b))
}

// RetryAlgorithm selects how the wait before a retry grows. With base wait b,
// the wait before retry k (k = 1, 2, …) is: Exponential b·2^(k−1); Linear b·k;
// Fibonacci b·F(k) with F = 1, 2, 3, 5, 8, …; Fixed b. The zero value is
// Exponential.
type RetryAlgorithm uint8

const (
	// Exponential waits b, 2b, 4b, 8b, …
	Exponential RetryAlgorithm = iota
	// Linear waits b, 2b, 3b, …
	Linear
	// Fibonacci waits b, 2b, 3b, 5b, 8b, …
	Fibonacci
	// Fixed waits b every time.
	Fixed
)

// String returns the algorithm's name, such as "Exponential".
func (a RetryAlgorithm) String() string {
	switch a {
	case Exponential:
		return "Exponential"
	case Linear:
		return "Linear"
	case Fibonacci:
		return "Fibonacci"
	case Fixed:
		return "Fixed"
	}
	return fmt.Sprintf("RetryAlgorithm(%d)", uint8(a))
}

// DefaultMaxQueuedTasks is the submission queue of a worker when
// Options.MaxQueuedTasks is zero.
const DefaultMaxQueuedTasks = 100

// DefaultRetryWait is the base wait between attempts when Options.RetryWait
// is zero.
const DefaultRetryWait = time.Second

// DefaultRetryJitter is the RetryJitter of Options that set none: full
// jitter, each wait a uniform draw from [0, w].
const DefaultRetryJitter = 1.0

// NoJitter, as Options.RetryJitter, makes every retry wait exactly its
// length.
const NoJitter = -1.0

// MaxWorkersLimit is the largest Options.MaxWorkers a pool accepts: 65,536.
// Every worker index has its counters and limiter, and in Goroutine mode its
// goroutine, from NewPool on.
const MaxWorkersLimit = 1 << 16

const maxDuration = time.Duration(math.MaxInt64)

// Options configures a pool. The zero value is a single goroutine worker with
// a queue of 100 tasks, no limits and no retries. Every field's zero value
// means its default.
//
// Limits are given in at most one of three ways: Limiter, Limits or
// LimitSets; with none, every task receives an empty LimitSet that grants
// every request at once.
type Options struct {
	// MaxWorkers is the number of workers (Goroutine), or the most tasks
	// alive at once (OnDemand), from 1 to MaxWorkersLimit. Default 1; Sync
	// allows only 1.
	MaxWorkers int
	// Mode is where tasks run. Default Goroutine.
	Mode Mode
	// Balancing picks the worker of each task. Default RoundRobin, or
	// Random in OnDemand mode.
	Balancing Balancing
	// MaxQueuedTasks caps each Goroutine worker's submitted but unfinished
	// tasks, the one running included; Submit blocks while the chosen worker
	// is full. Default 100 (DefaultMaxQueuedTasks); negative means no cap.
	// Sync and OnDemand pools have no queue and ignore it.
	MaxQueuedTasks int

	// Limiter is shared by every worker: a *concurry.LimitSet or a
	// *concurry.LimitPool (or any other Limiter).
	Limiter concurry.Limiter
	// Limits gives each worker a private in-memory LimitSet of these limits.
	// In OnDemand mode each worker index has its own set, which the
	// successive workers of that index share.
	Limits []concurry.Limit
	// LimitSets gives each worker its own LimitPool over these sets, whose
	// round robin starts at the worker's index: workers 0, 1, 2 of a pool
	// over three sets take their first acquisitions from sets 0, 1, 2.
	LimitSets []*concurry.LimitSet

	// NumRetries is how many times a failed task is tried again, on the same
	// worker. Default 0.
	NumRetries int
	// RetryOn decides whether an error is worth a retry. Default nil, which
	// means DefaultRetryOn: every error except those a retry can never cure.
	// Whatever RetryOn says, no error is retried once the task's context has
	// ended. A RetryOn that panics means no retry; the task's error then
	// holds the *PanicError. See RetryOnErrors and RetryOnType.
	RetryOn func(error) bool
	// RetryAlgorithm is how the wait grows between attempts. Default
	// Exponential.
	RetryAlgorithm RetryAlgorithm
	// RetryWait is the base wait between attempts. Default 1s
	// (DefaultRetryWait).
	RetryWait time.Duration
	// RetryJitter, between 0 and 1, is the fraction of each wait drawn at
	// random: a wait w becomes a uniform draw from [w·(1−RetryJitter), w].
	// Default 0, which means DefaultRetryJitter: full jitter (1), so that
	// tasks that failed together do not retry together. NoJitter waits
	// exactly.
	RetryJitter float64
	// RetryMaxWait caps each wait (before jitter). Default 0, no cap. A
	// *RetryAfterError may ask for longer, and gets it.
	RetryMaxWait time.Duration

	// DrainOnStop makes Stop run every queued task (retries included) before
	// it returns, instead of cancelling them with ErrStopped. Default false.
	DrainOnStop bool
}

// normalize checks o and fills in its defaults.
func (o Options) normalize() (Options, error) {
	bad := func(format string, args ...any) (Options, error) {
		return Options{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
	switch {
	case o.MaxWorkers < 0 || o.MaxWorkers > MaxWorkersLimit:
		return bad("MaxWorkers %d is outside [0, %d]", o.MaxWorkers, MaxWorkersLimit)
	case o.Mode > OnDemand:
		return bad("unknown mode %v", o.Mode)
	case o.Mode == Sync && o.MaxWorkers > 1:
		return bad("Sync mode has one worker, not %d", o.MaxWorkers)
	case o.Balancing > Random:
		return bad("unknown balancing %v", o.Balancing)
	case o.NumRetries < 0:
		return bad("NumRetries %d is negative", o.NumRetries)
	case o.RetryAlgorithm > Fixed:
		return bad("unknown retry algorithm %v", o.RetryAlgorithm)
	case o.RetryWait < 0 || o.RetryMaxWait < 0:
		return bad("negative RetryWait %v or RetryMaxWait %v", o.RetryWait, o.RetryMaxWait)
	case !(o.RetryJitter >= 0 && o.RetryJitter <= 1) && o.RetryJitter != NoJitter:
		return bad("RetryJitter %v is not between 0 and 1, nor NoJitter", o.RetryJitter)
	}
	if o.MaxWorkers == 0 {
		o.MaxWorkers = 1
	}
	if o.Balancing == DefaultBalancing {
		o.Balancing = RoundRobin
		if o.Mode == OnDemand {
			o.Balancing = Random
		}
	}
	switch {
	case o.Mode != Goroutine:
		o.MaxQueuedTasks = 0
	case o.MaxQueuedTasks == 0:
		o.MaxQueuedTasks = DefaultMaxQueuedTasks
	case o.MaxQueuedTasks < 0:
		o.MaxQueuedTasks = -1
	}
	if o.RetryWait == 0 {
		o.RetryWait = DefaultRetryWait
	}
	switch o.RetryJitter {
	case 0:
		o.RetryJitter = DefaultRetryJitter
	case NoJitter:
		o.RetryJitter = 0
	}
	return o, nil
}

// limiters returns the limiter of each worker index, and the sets the pool
// made and must close.
func (o *Options) limiters() ([]concurry.Limiter, []*concurry.LimitSet, error) {
	shared := o.Limiter
	if ls, ok := shared.(*concurry.LimitSet); ok && ls == nil {
		shared = nil
	}
	if lp, ok := shared.(*concurry.LimitPool); ok && lp == nil {
		shared = nil
	}
	given := 0
	for _, set := range []bool{shared != nil, o.Limits != nil, o.LimitSets != nil} {
		if set {
			given++
		}
	}
	if given > 1 {
		return nil, nil, fmt.Errorf("%w: give at most one of Limiter, Limits and LimitSets", ErrInvalidOptions)
	}
	lims := make([]concurry.Limiter, o.MaxWorkers)
	var owned []*concurry.LimitSet
	for i := range lims {
		var err error
		switch {
		case shared != nil:
			lims[i] = shared
		case o.LimitSets != nil:
			lims[i], err = concurry.NewLimitPool(o.LimitSets, concurry.WithWorkerIndex(i))
		default:
			var ls *concurry.LimitSet
			if o.Limits != nil || i == 0 {
				ls, err = concurry.NewLimitSet(o.Limits)
				owned = append(owned, ls)
			}
			lims[i] = ls
			if ls == nil && err == nil {
				lims[i] = lims[0] // one empty set serves every worker
			}
		}
		if err != nil {
			closeAll(owned)
			return nil, nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
	}
	return lims, owned, nil
}

func closeAll(sets []*concurry.LimitSet) {
	for _, ls := range sets {
		if ls != nil {
			ls.Close()
		}
	}
}

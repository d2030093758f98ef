// Package backendtest is the conformance suite every concurry backend must
// pass: the LimitSet semantics of the design that do not depend on living in
// one process, driven through the public API of package concurry with real
// time. Windows are long (or, where a test waits for a refill, short with
// generous margins), and no test sleeps to synchronise: a test that needs a
// request to be waiting probes for it with TryAcquire, which fails exactly
// when a waiter is queued.
//
// A backend's test calls Run:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backend.Backend { return memory.New() })
//	}
package backendtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// Long is a window no test outlives: nothing refills during a test.
const Long = 1000 * time.Hour

// waitLimit bounds every wait of the suite; reaching it fails the test.
const waitLimit = 10 * time.Second

// Case is one behaviour of the suite.
type Case struct {
	Name string
	Test func(t *testing.T, e *Env)
}

// Cases returns every case of the suite, in a stable order.
func Cases() []Case {
	var cs []Case
	cs = append(cs, algorithmCases()...)
	cs = append(cs, acquireCases()...)
	cs = append(cs, waitCases()...)
	cs = append(cs, lifecycleCases()...)
	cs = append(cs, rangeCases()...)
	cs = append(cs, grantCases()...)
	cs = append(cs, deadlineCases()...)
	cs = append(cs, poolCases()...)
	cs = append(cs, inputCases()...)
	cs = append(cs, factsCases()...)
	cs = append(cs, feedbackCases()...)
	cs = append(cs, settleCases()...)
	cs = append(cs, queueCases()...)
	return cs
}

// Run runs every case in a parallel subtest with a backend of its own from
// newBackend. Set names are unique per run, so a backend with persistent
// state (Redis) can be reused across runs.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	RunWith(t, Capabilities{}, newBackend)
}

// RunWith is Run for a backend that has the given capabilities: the cases
// that need one it lacks are skipped.
func RunWith(t *testing.T, caps Capabilities, newBackend func(t *testing.T) backend.Backend) {
	prefix := fmt.Sprintf("backendtest/%d/%d", os.Getpid(), time.Now().UnixNano())
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			c.Test(t, &Env{T: t, Backend: newBackend(t), Caps: caps, prefix: prefix + "/" + t.Name()})
		})
	}
}

// Capabilities are parts of the contract a backend may not implement yet;
// the cases that need one are skipped unless the backend under test claims
// it. The zero value claims none.
type Capabilities struct {
	// Facts: refusals carry a *backend.RefusalError (the key that blocked
	// and RetryAfter), and Stats report Debt.
	Facts bool
	// Feedback: sets implement backend.Feedback (LimitSet.Pause and Lower).
	Feedback bool
}

// Env is what a case works with: the backend under test and helpers. Run
// makes one per case; a backend's own test may also build one as
// &Env{T: t, Backend: b} to run a single Case.
type Env struct {
	T       *testing.T
	Backend backend.Backend
	Caps    Capabilities // what the backend claims beyond the core; see Capabilities
	once    sync.Once
	prefix  string
	n       atomic.Int64
}

// Need skips the test unless has is true: unless the backend claims the
// capability named what (a field of Env.Caps).
func (e *Env) Need(has bool, what string) {
	e.T.Helper()
	if !has {
		e.T.Skipf("the backend does not claim %s (backendtest.Capabilities)", what)
	}
}

// Name returns a set name no other test uses, in this run or another.
func (e *Env) Name() string {
	e.once.Do(func() {
		if e.prefix == "" {
			e.prefix = fmt.Sprintf("backendtest/%d/%d/%s", os.Getpid(), time.Now().UnixNano(), e.T.Name())
		}
	})
	return fmt.Sprintf("%s/%d", e.prefix, e.n.Add(1))
}

// Set returns a new set of limits under a fresh name in the backend, closed
// when the test ends.
func (e *Env) Set(limits ...concurry.Limit) *concurry.LimitSet {
	e.T.Helper()
	return e.Named(e.Name(), limits...)
}

// Named returns a set of limits under the given name, closed when the test ends.
func (e *Env) Named(name string, limits ...concurry.Limit) *concurry.LimitSet {
	e.T.Helper()
	ls, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithBackend(e.Backend))
	if err != nil {
		e.T.Fatalf("NewLimitSet(%q): %v", name, err)
	}
	e.T.Cleanup(func() { ls.Close() })
	return ls
}

// Ctx returns a context that ends with the suite's wait limit.
func (e *Env) Ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	e.T.Cleanup(cancel)
	return ctx
}

// MustAcquire acquires req, failing the test on an error.
func (e *Env) MustAcquire(ls *concurry.LimitSet, req concurry.Amounts) *concurry.Acquisition {
	e.T.Helper()
	a, err := ls.Acquire(e.Ctx(), req)
	if err != nil {
		e.T.Fatalf("Acquire(%v): %v", req, err)
	}
	return a
}

// MustTry is TryAcquire that fails the test unless it grants.
func (e *Env) MustTry(ls *concurry.LimitSet, req concurry.Amounts) *concurry.Acquisition {
	e.T.Helper()
	a, err := ls.TryAcquire(context.Background(), req)
	if err != nil {
		e.T.Fatalf("TryAcquire(%v): %v", req, err)
	}
	return a
}

// WantErr fails the test unless err matches target.
func (e *Env) WantErr(err, target error, what string) {
	e.T.Helper()
	if !errors.Is(err, target) {
		e.T.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// Blocked fails the test unless TryAcquire(req) fails with ErrWouldBlock.
func (e *Env) Blocked(ls *concurry.LimitSet, req concurry.Amounts) {
	e.T.Helper()
	a, err := ls.TryAcquire(context.Background(), req)
	if err == nil {
		a.Release()
	}
	e.WantErr(err, concurry.ErrWouldBlock, fmt.Sprintf("TryAcquire(%v)", req))
}

// Done releases a, reporting usage first when it is not nil, and fails the
// test on an error.
func (e *Env) Done(a *concurry.Acquisition, usage concurry.Amounts) {
	e.T.Helper()
	if usage != nil {
		if err := a.Update(usage); err != nil {
			e.T.Fatalf("Update(%v): %v", usage, err)
		}
	}
	if err := a.Release(); err != nil {
		e.T.Fatalf("Release: %v", err)
	}
}

// Stat returns the stats of key's limit (the shortest window of the key).
func (e *Env) Stat(ls *concurry.LimitSet, key string) concurry.LimitStats {
	e.T.Helper()
	return e.StatAt(ls, key, 0)
}

// StatAt returns the stats of the i-th limit of key, in definition order.
func (e *Env) StatAt(ls *concurry.LimitSet, key string, i int) concurry.LimitStats {
	e.T.Helper()
	st, err := ls.Stats(context.Background())
	if err != nil {
		e.T.Fatalf("Stats: %v", err)
	}
	for _, l := range st.Limits {
		if l.Key == key {
			if i == 0 {
				return l
			}
			i--
		}
	}
	e.T.Fatalf("Stats: no limit %q", key)
	return concurry.LimitStats{}
}

// WantAvailable checks the available units (and in-use units, for a
// resource) of key's limit.
func (e *Env) WantAvailable(ls *concurry.LimitSet, key string, available int64) {
	e.T.Helper()
	if got := e.Stat(ls, key).Available; got != available {
		e.T.Fatalf("%q: %d available, want %d", key, got, available)
	}
}

// WantInUse checks the units of a resource key held now.
func (e *Env) WantInUse(ls *concurry.LimitSet, key string, inUse int64) {
	e.T.Helper()
	if got := e.Stat(ls, key).InUse; got != inUse {
		e.T.Fatalf("%q: %d in use, want %d", key, got, inUse)
	}
}

// WaitQueued returns once a blocked Acquire is queued in ls. probe must be a
// request that could be granted now were it not for that waiter, with
// TokenBucket rate keys only (a successful probe is refunded and released).
// It relies on TryAcquire never jumping a waiter.
func (e *Env) WaitQueued(ls *concurry.LimitSet, probe concurry.Amounts) {
	e.T.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		a, err := ls.TryAcquire(context.Background(), probe)
		if errors.Is(err, concurry.ErrWouldBlock) {
			return
		}
		if err != nil {
			e.T.Fatalf("probe %v: %v", probe, err)
		}
		usage := concurry.Amounts{}
		for k, n := range probe {
			if l, _ := ls.Limit(k); isRate(l) {
				usage[k] = 0
			} else {
				usage[k] = n
			}
		}
		e.Done(a, usage)
		if time.Now().After(deadline) {
			e.T.Fatalf("no waiter queued within %v", waitLimit)
		}
		time.Sleep(time.Millisecond) // back off between probes; not a synchronisation
	}
}

func isRate(l concurry.Limit) bool {
	_, ok := l.(concurry.RateLimit)
	return ok
}

// Result is the outcome of an Acquire run in a goroutine.
type Result struct {
	A   *concurry.Acquisition
	Err error
}

// Go runs Acquire(ctx, req) in a goroutine and returns its outcome's channel.
func (e *Env) Go(ctx context.Context, ls *concurry.LimitSet, req concurry.Amounts) <-chan Result {
	return Go(ctx, ls, req)
}

// Wait returns the outcome of a Go, failing the test after the wait limit.
func (e *Env) Wait(ch <-chan Result) (*concurry.Acquisition, error) {
	e.T.Helper()
	r := Await(e.T, ch)
	return r.A, r.Err
}

// Go runs l.Acquire(ctx, req) in a goroutine and returns its outcome's
// channel; for tests beside the suite, of any Limiter.
func Go(ctx context.Context, l concurry.Limiter, req concurry.Amounts) <-chan Result {
	ch := make(chan Result, 1)
	go func() {
		a, err := l.Acquire(ctx, req)
		ch <- Result{a, err}
	}()
	return ch
}

// Await returns the outcome of a Go, failing the test after the wait limit.
func Await(t testing.TB, ch <-chan Result) Result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("Acquire still blocked after %v", waitLimit)
		return Result{}
	}
}

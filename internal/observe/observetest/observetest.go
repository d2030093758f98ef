// Package observetest holds what the tests of the exporters
// (extra/concurryotel, extra/concurryprom) share: a backend that fails on
// demand, and a fixed script of decisions whose metrics each exporter's
// tests check in its own names. It is for tests only.
package observetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
)

// FaultyBackend keeps its sets in memory, and fails as a shared backend can
// when told to: holdings lost, Stats unreadable or hanging, and fault counts
// to report. Its sets implement backend.LeaseChecker and backend.FaultCounter
// but not backend.Releaser, so releases go through Settle.
type FaultyBackend struct {
	Lost     atomic.Bool    // holdings are lost: CheckLease and Settle fail with ErrLost
	Unread   atomic.Bool    // Stats fail with backend.ErrBackendUnavailable
	Hang     atomic.Bool    // Stats wait for their ctx to end
	Faults   backend.Faults // reported by every set
	Degraded int64          // reported by every set

	mem *memory.Backend
}

// ErrLost is the error of a holding FaultyBackend lost.
var ErrLost = fmt.Errorf("%w: the test dropped it", backend.ErrLeaseLost)

// NewFaultyBackend returns a backend that works until told otherwise, and
// reports faults and degraded decisions.
func NewFaultyBackend(faults backend.Faults, degraded int64) *FaultyBackend {
	return &FaultyBackend{Faults: faults, Degraded: degraded, mem: memory.New()}
}

// Open implements backend.Backend, with a private in-memory set.
func (b *FaultyBackend) Open(ctx context.Context, _ string, specs []backend.Spec) (backend.Set, error) {
	s, err := b.mem.Open(ctx, "", specs)
	return &faultySet{Set: s, b: b}, err
}

type faultySet struct {
	backend.Set
	b *FaultyBackend
}

func (s *faultySet) CheckLease(backend.Lease) error {
	if s.b.Lost.Load() {
		return ErrLost
	}
	return nil
}

func (s *faultySet) Settle(ctx context.Context, l backend.Lease, held, delta []int64, final bool, refunded []int64) error {
	err := s.Set.Settle(ctx, l, held, delta, final, refunded)
	if s.b.Lost.Load() {
		err = errors.Join(err, ErrLost)
	}
	return err
}

func (s *faultySet) Stats(ctx context.Context) ([]backend.SpecStats, error) {
	if s.b.Hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s.b.Unread.Load() {
		return nil, fmt.Errorf("%w: the test made it so", backend.ErrBackendUnavailable)
	}
	return s.Set.Stats(ctx)
}

func (s *faultySet) Faults() backend.Faults { return s.b.Faults }
func (s *faultySet) Degraded() int64        { return s.b.Degraded }

// ScriptLimits are the limits Script runs on: 10 calls and 100 tokens a
// second, and 2 connections.
func ScriptLimits() []concurry.Limit {
	return []concurry.Limit{
		concurry.CallLimit{Window: time.Second, Capacity: 10},
		concurry.RateLimit{Key: "tokens", Window: time.Second, Capacity: 100},
		concurry.ResourceLimit{Key: "conns", Capacity: 2},
	}
}

// Script runs a fixed sequence of decisions on set, a set of ScriptLimits,
// at fixed instants (it must run in a synctest bubble): three grants (one
// after a 100ms wait on tokens), a refusal of each of three causes, a refund
// of 50, an overage of 20 and two feedbacks. It returns the acquisition it
// still holds.
func Script(t testing.TB, set *concurry.LimitSet) *concurry.Acquisition {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustBe := func(err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("got %v, want %v", err, want)
		}
	}
	held, err := set.TryAcquire(ctx, concurry.Amounts{"tokens": 10}) // 90 tokens left
	must(err)
	a, err := set.TryAcquire(ctx, concurry.Amounts{"tokens": 80})
	must(err)
	must(a.Update(concurry.Amounts{"tokens": 30}))
	must(a.Release()) // 50 refunded: 60 left
	_, err = set.TryAcquire(ctx, concurry.Amounts{"tokens": 70})
	mustBe(err, concurry.ErrWouldBlock)
	b, err := set.Acquire(ctx, concurry.Amounts{"tokens": 70}) // waits 100ms for 10 tokens at 100/s
	must(err)
	must(b.Update(concurry.Amounts{"tokens": 90}))
	must(b.Release()) // 20 over: 20 in debt
	_, err = set.TryAcquire(ctx, concurry.Amounts{"tokens": 101})
	mustBe(err, concurry.ErrExceedsCapacity)
	dctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	_, err = set.Acquire(dctx, concurry.Amounts{"tokens": 50})
	mustBe(err, context.DeadlineExceeded)
	must(set.Lower(ctx, "tokens", 5, time.Now()))
	must(set.Pause(ctx, "", time.Now().Add(time.Second)))
	return held
}

// Only returns the entries of m (metric values by series name) whose names
// start with one of prefixes.
func Only(m map[string]float64, prefixes ...string) map[string]float64 {
	out := make(map[string]float64)
	for k, v := range m {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out[k] = v
			}
		}
	}
	return out
}

// Sum adds the values of the entries of m whose names start with prefix and
// contain every one of labels.
func Sum(m map[string]float64, prefix string, labels ...string) float64 {
	var total float64
	for k, v := range Only(m, prefix) {
		if !slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(k, l) }) {
			total += v
		}
	}
	return total
}

// OpenSet returns a set named name on limits, calling hooks, closed when the
// test ends.
func OpenSet(t testing.TB, hooks concurry.Hooks, name string, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	set, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithHooks(hooks))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return set
}

// Use acquires take of key on set at once, reports used, and releases.
func Use(t testing.TB, set *concurry.LimitSet, key string, take, used int64) {
	t.Helper()
	a, err := set.TryAcquire(context.Background(), concurry.Amounts{key: take})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(concurry.Amounts{key: used}); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
}

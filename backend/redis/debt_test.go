package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// debtStep charges overage (units taken beyond a grant of nothing) after a
// sleep, then reads the spec's Available and Debt.
type debtStep struct {
	dt      time.Duration // sleep before the step, whole µs
	charge  int64         // overage charged at the step's instant, if > 0
	avail   int64
	debt    int64
	comment string
}

// debtCase is a limit and what its stats must read along a trace.
type debtCase struct {
	name  string
	spec  backend.Spec
	steps []debtStep
}

// debtCases: overage shows as Debt with nothing available, for the
// algorithms that do not refund, and lasts until it drains (LeakyBucket)
// or leaves the window (SlidingWindow, FixedWindow). The traces start on a
// whole second, so that a FixedWindow's window starts with them.
func debtCases() []debtCase {
	rate := func(alg algorithms.Kind, w time.Duration, c int64) backend.Spec {
		return backend.Spec{Key: "u", Kind: backend.Rate, Algorithm: alg, Window: w, Capacity: c}
	}
	const big = backend.MaxCapacity // 2^50: the most one settle charges here
	return []debtCase{
		{"LeakyBucket", rate(algorithms.LeakyBucket, time.Second, 10), []debtStep{ // T = 100ms
			{0, 25, 0, 15, "25 queued"},
			{100 * time.Millisecond, 0, 0, 14, "24 queued"},
			{time.Millisecond, 0, 0, 14, "23.99 queued, rounded up"},
			{1399 * time.Millisecond, 0, 0, 0, "10 queued"},
			{100 * time.Millisecond, 0, 1, 0, "9 queued"},
		}},
		{"SlidingWindow", rate(algorithms.SlidingWindow, time.Second, 10), []debtStep{
			{0, 6, 4, 0, ""},
			{100 * time.Millisecond, 12, 0, 8, "18 in the window"},
			{0, 15, 0, 23, "33, merged into one instant"},
			{900 * time.Millisecond, 0, 0, 17, "the first take has left"},
			{99 * time.Millisecond, 0, 0, 17, ""},
			{time.Millisecond, 0, 10, 0, "the rest has left"},
		}},
		{"FixedWindow", rate(algorithms.FixedWindow, time.Second, 10), []debtStep{
			{100 * time.Millisecond, 4, 6, 0, ""},
			{800 * time.Millisecond, 9, 0, 3, "13 in the window"},
			{99*time.Millisecond + 999*time.Microsecond, 0, 0, 3, "the window's last µs"},
			{time.Microsecond, 0, 10, 0, "the next window"},
		}},
		// The most a window counts: MaxDebt units at one instant and eight
		// times the largest capacity after it, far more than 2^53 in all.
		// The Redis backend drops the entries it no longer needs; the sum
		// must stay exact as the takes leave the window one by one.
		{"SlidingWindow/MaxDebt", rate(algorithms.SlidingWindow, time.Second, 10), []debtStep{
			{0, big, 0, big - 10, ""},
			{0, 3 * big, 0, algorithms.MaxDebt - 10, "MaxDebt at one instant"},
			{0, big, 0, algorithms.MaxDebt - 10, "no more at that instant"},
			{time.Microsecond, big, 0, algorithms.MaxDebt - 10, ""},
			{time.Microsecond, big, 0, algorithms.MaxDebt - 10, ""},
			{time.Microsecond, big, 0, algorithms.MaxDebt - 10, ""},
			{time.Microsecond, big, 0, algorithms.MaxDebt - 10, ""},
			{time.Microsecond, big, 0, algorithms.MaxDebt - 10, ""},
			{time.Microsecond, big, 0, algorithms.MaxDebt - 10, ""},
			{time.Microsecond, big, 0, algorithms.MaxDebt - 10, ""},
			{time.Microsecond, big, 0, algorithms.MaxDebt - 10, "8·2^50 after the first instant"},
			{time.Second - 8*time.Microsecond, 0, 0, algorithms.MaxDebt - 10, "the first instant has left"},
			{time.Microsecond, 0, 0, algorithms.MaxDebt - 10, "7·2^50 left"},
			{4 * time.Microsecond, 0, 0, 3*big - 10, "3·2^50 left"},
			{2 * time.Microsecond, 0, 0, big - 10, ""},
			{time.Microsecond, 0, 10, 0, "all gone"},
		}},
		{"FixedWindow/MaxDebt", rate(algorithms.FixedWindow, time.Second, 10), []debtStep{
			{0, 3 * big, 0, 3*big - 10, ""},
			{0, 3 * big, 0, algorithms.MaxDebt - 10, "the count stops at MaxDebt"},
			{time.Second, 0, 10, 0, "the next window"},
		}},
	}
}

// runDebt replays c on set, sleeping with sleep, and fails at the first
// step whose stats differ.
func runDebt(t *testing.T, set backend.Set, c debtCase, sleep func(time.Duration)) {
	ctx := context.Background()
	for i, st := range c.steps {
		sleep(st.dt)
		for left := st.charge; left > 0; left -= backend.MaxCapacity {
			lease, err := set.Acquire(ctx, []int64{0}, backend.AcquireOptions{})
			if err != nil {
				t.Fatalf("step %d: an empty grant: %v", i, err)
			}
			if err := set.Settle(ctx, lease, []int64{0}, []int64{min(left, backend.MaxCapacity)}, true, nil); err != nil {
				t.Fatalf("step %d: settle: %v", i, err)
			}
		}
		stats, err := set.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := stats[0]; got.Available != st.avail || got.Debt != st.debt {
			t.Fatalf("step %d (%s): Available %d, Debt %d; want %d and %d", i, st.comment, got.Available, got.Debt, st.avail, st.debt)
		}
	}
}

// TestDebtVisible checks that Stats show overage as Debt, with the same
// numbers in memory and on Redis (as functions and as scripts).
func TestDebtVisible(t *testing.T) {
	client := redistest.Start(t).Client()
	for _, c := range debtCases() {
		t.Run(c.name+"/memory", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
				set, err := memory.New().Open(context.Background(), "", []backend.Spec{c.spec})
				if err != nil {
					t.Fatal(err)
				}
				defer set.Close()
				runDebt(t, set, c, time.Sleep)
			})
		})
		for _, scripts := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/redis/scripts=%v", c.name, scripts), func(t *testing.T) {
				b, _, sleep := clocked(client, "debt/"+t.Name(), scripts, (time.Now().UnixMicro()/1_000_000+1)*1_000_000)
				runDebt(t, open(t, b, c.spec), c, sleep)
			})
		}
	}
}

// debtEvent is a step of a random trace of overage: a sleep, then a
// request of amount per spec that, when granted, is settled at once with
// delta more used per spec; then every spec's stats are read.
type debtEvent struct {
	dt            time.Duration
	amount, delta []int64
}

// makeDebtTrace returns steps that charge overage of up to twice a spec's
// capacity now and then, so that stats read debt often. Steps are scaled
// to a spec's pace, and now and then to its window, so that overage both
// piles up and drains or expires.
func makeDebtTrace(rng *rand.Rand, specs []backend.Spec, steps int) []debtEvent {
	tr := make([]debtEvent, steps)
	for i := range tr {
		sp := specs[rng.IntN(len(specs))]
		if sp.Kind == backend.Rate {
			w := int64(sp.Window / time.Microsecond)
			span := max(1, w/sp.Capacity) * 4
			if rng.IntN(8) == 0 {
				span = w
			}
			tr[i].dt = time.Duration(rng.Int64N(span+1)) * time.Microsecond
		}
		tr[i].amount, tr[i].delta = make([]int64, len(specs)), make([]int64, len(specs))
		for k, s := range specs {
			tr[i].amount[k] = 1 + rng.Int64N(max(1, s.Capacity/3))
			if s.Kind == backend.Rate && rng.IntN(3) == 0 {
				tr[i].delta[k] = rng.Int64N(2*s.Capacity + 1)
			}
		}
	}
	return tr
}

// replayDebt runs tr on set and returns what each step observed: whether
// it was granted, and every spec's Available, InUse and Debt.
func replayDebt(t *testing.T, set backend.Set, tr []debtEvent, sleep func(time.Duration)) ([][]int64, int) {
	ctx := context.Background()
	out, debts := make([][]int64, len(tr)), 0
	for i, ev := range tr {
		sleep(ev.dt)
		lease, err := set.Acquire(ctx, ev.amount, backend.AcquireOptions{})
		switch {
		case err == nil:
			out[i] = append(out[i], 1)
			if err := set.Settle(ctx, lease, ev.amount, ev.delta, true, nil); err != nil {
				t.Fatal(err)
			}
		case errors.Is(err, backend.ErrWouldBlock):
			out[i] = append(out[i], 0)
		default:
			t.Fatal(err)
		}
		st, err := set.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			out[i] = append(out[i], s.Available, s.InUse, s.Debt)
			if s.Debt > 0 {
				debts++
			}
		}
	}
	return out, debts
}

// TestDebtDifferential replays random traces of heavy overage through
// backend/memory and backend/redis, for the algorithms that do not refund,
// and requires the same grants and stats, Debt included, at every step
// (the clocks agree as in TestDifferential). It leaves out the LeakyBucket
// limits whose Window/Capacity is below a µs: the Redis backend rounds
// back-to-back departures up to the µs (see the package doc), and there
// a µs is worth many units of a queue beyond its capacity.
func TestDebtDifferential(t *testing.T) {
	client := redistest.Start(t).Client()
	for _, alg := range []algorithms.Kind{algorithms.LeakyBucket, algorithms.SlidingWindow, algorithms.FixedWindow} {
		for si, specs := range diffSpecs(alg) {
			if alg == algorithms.LeakyBucket && slices.ContainsFunc(specs, func(s backend.Spec) bool {
				return s.Kind == backend.Rate && s.Window < time.Duration(s.Capacity)*time.Microsecond
			}) {
				continue
			}
			t.Run(fmt.Sprintf("%v/%d", alg, si), func(t *testing.T) {
				tr := makeDebtTrace(rand.New(rand.NewPCG(uint64(alg), uint64(si))), specs, 300)
				var want [][]int64
				start := inMemory(t, specs, func(set backend.Set) { want, _ = replayDebt(t, set, tr, time.Sleep) })
				b, _, sleep := clocked(client, "debtdiff", false, start)
				got, debts := replayDebt(t, open(t, b, specs...), tr, sleep)
				for i := range want {
					if !slices.Equal(want[i], got[i]) {
						t.Fatalf("step %d: memory %v, redis %v (granted, then available, in use, debt per spec)", i, want[i], got[i])
					}
				}
				if debts < len(tr)/10 {
					t.Fatalf("debt read at only %d of %d steps: the trace tells little", debts, len(tr))
				}
				t.Logf("%d steps, debt read %d times", len(tr), debts)
			})
		}
	}
}

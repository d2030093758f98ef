package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// The differential test replays one random trace through backend/memory and
// backend/redis and requires identical decisions, refunds and availability.
//
// The clocks agree exactly: the memory side runs in a testing/synctest
// bubble, whose fake clock advances only by the trace's sleeps, and the Redis
// side takes every script's time from the trace through the test-only clock
// hook (cr.SetClock) instead of Redis TIME. Steps are whole microseconds, the
// Redis backend's granularity, so no tolerance is needed. Usage is reported
// with the final settle only, because the Redis backend defers non-final
// deltas to it.
//
// Refusals are compared by their facts (the key that blocked and RetryAfter,
// rounded up to the µs on the memory side), stats by their debt too, and
// the traces give upstream feedback (Pause, Lower, stale reports
// included), so that the Lua algorithms' Debt and Lower are held to the Go
// ones.

// event is one step of a trace.
type event struct {
	dt     time.Duration // sleep before the step
	op     byte          // 'a' acquire, 's' settle, 'q' query stats, 'p' pause, 'l' lower
	amount []int64       // acquire: per spec
	lease  int           // settle: index into the held leases
	usage  []int64       // settle: usage per spec
	spec   int           // pause (-1: every spec), lower: the spec
	value  int64         // pause: how long (µs, from now); lower: remaining
	asOf   int64         // lower: µs before now the report was true (stale when large)
}

// outcome is what one step observed.
type outcome struct {
	Granted  bool
	Refusal  string // the key that blocked and RetryAfter in µs, rounded up
	Refunded []int64
	Avail    []int64 // available, in use and debt, per spec
}

func diffSpecs(alg algorithms.Kind) [][]backend.Spec {
	rate := func(w time.Duration, c int64) backend.Spec {
		return backend.Spec{Key: "k" + fmt.Sprint(w), Kind: backend.Rate, Algorithm: alg, Window: w, Capacity: c}
	}
	res := backend.Spec{Key: "conn", Kind: backend.Resource, Capacity: 3}
	sets := [][]backend.Spec{
		{rate(time.Second, 10), rate(10*time.Second, 37), res},
		{rate(24*time.Hour, 999_983)}, // C·W in µs ≈ 2^56: the exact slow path
		{rate(7*time.Millisecond, 5), res},
		{rate(backend.MaxWindow, backend.MaxCapacity), rate(time.Hour, backend.MaxCapacity-1)}, // the ends of the range
		{rate(time.Microsecond, 1), rate(2*time.Microsecond, 1)},                               // the smallest whole-µs windows
	}
	if alg != algorithms.LeakyBucket { // LeakyBucket rounds departures to µs: see the package doc
		sets = append(sets, []backend.Spec{rate(1001*time.Microsecond, 3), rate(time.Second, 7)})
	}
	return sets
}

func makeTrace(rng *rand.Rand, specs []backend.Spec, steps int) []event {
	var tr []event
	held := 0
	for range steps {
		ev := event{}
		sp := specs[rng.IntN(len(specs))]
		if sp.Kind == backend.Rate {
			per := max(1, int64(sp.Window/time.Microsecond)/sp.Capacity)
			ev.dt = time.Duration(rng.Int64N(3*per+1)) * time.Microsecond
		}
		switch r := rng.IntN(10); {
		case r < 5 || held == 0:
			ev.op, ev.amount = 'a', make([]int64, len(specs))
			for i, s := range specs {
				ev.amount[i] = 1 + rng.Int64N(max(1, s.Capacity/3))
				if s.Kind == backend.Resource || rng.IntN(4) == 0 {
					ev.amount[i] = 1
				}
			}
			held++ // an upper bound; settles of refused grants are skipped
		case r < 8:
			ev.op, ev.lease, ev.usage = 's', rng.IntN(held), make([]int64, len(specs))
			for i := range ev.usage {
				ev.usage[i] = rng.Int64N(2)*rng.Int64N(3) - 1 // -1 means "as granted"
			}
		case r < 9 && rng.IntN(4) > 0:
			ev.op = 'q'
		default:
			ev = feedbackEvent(rng, specs, ev.dt)
		}
		tr = append(tr, ev)
	}
	return tr
}

// feedbackEvent returns a pause or a lower of a random spec, after dt.
func feedbackEvent(rng *rand.Rand, specs []backend.Spec, dt time.Duration) event {
	i := rng.IntN(len(specs))
	sp := specs[i]
	if sp.Kind == backend.Resource || rng.IntN(3) == 0 {
		ev := event{dt: dt, op: 'p', spec: i, value: rng.Int64N(2000)}
		if rng.IntN(3) == 0 {
			ev.spec = -1
		}
		return ev
	}
	ev := event{dt: dt, op: 'l', spec: i, value: rng.Int64N(sp.Capacity+3) - 2, asOf: rng.Int64N(3)}
	if rng.IntN(5) == 0 {
		ev.asOf = 1_000_000 // older than any report the trace made in the last second
	}
	return ev
}

// refusalFacts returns the facts of a refusal err, RetryAfter rounded up to
// the µs.
func refusalFacts(t *testing.T, err error) string {
	var r *backend.RefusalError
	if !errors.As(err, &r) {
		t.Fatalf("refusal %v is not a *backend.RefusalError", err)
	}
	return fmt.Sprintf("%q %dµs", r.Key, (r.RetryAfter+time.Microsecond-1)/time.Microsecond)
}

// feedback applies a pause or lower event to set at now (Unix µs) and
// reports whether it was stale (too late to change anything), which both
// backends must agree on.
func feedback(t *testing.T, set backend.Set, ev event, now int64) bool {
	f := set.(backend.Feedback)
	var err error
	if ev.op == 'p' {
		err = f.Pause(context.Background(), ev.spec, (now+ev.value)*1000)
	} else {
		err = f.Lower(context.Background(), ev.spec, ev.value, (now-ev.asOf)*1000)
	}
	if errors.Is(err, backend.ErrFeedbackStale) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}

// replay runs tr on set at the instants now() reports after each sleep.
func replay(t *testing.T, set backend.Set, specs []backend.Spec, tr []event, sleep func(time.Duration), now func() int64) []outcome {
	ctx := context.Background()
	type lease struct {
		id      backend.Lease
		granted []int64
	}
	var held []lease
	var out []outcome
	for _, ev := range tr {
		sleep(ev.dt)
		var o outcome
		switch ev.op {
		case 'a':
			id, err := set.Acquire(ctx, ev.amount, backend.AcquireOptions{})
			if err != nil && !errors.Is(err, backend.ErrWouldBlock) {
				t.Fatal(err)
			}
			if o.Granted = err == nil; o.Granted {
				held = append(held, lease{id, slices.Clone(ev.amount)})
			} else {
				o.Refusal = refusalFacts(t, err)
			}
		case 's':
			if len(held) == 0 {
				break
			}
			i := ev.lease % len(held)
			l := held[i]
			held = slices.Delete(held, i, i+1)
			delta := make([]int64, len(specs))
			for k, u := range ev.usage {
				if u >= 0 && specs[k].Kind == backend.Rate {
					delta[k] = u*l.granted[k]/2 - l.granted[k] + u // 0, ~granted/2 or ~granted+2 used
				}
			}
			o.Refunded = make([]int64, len(specs))
			if err := set.Settle(ctx, l.id, l.granted, delta, true, o.Refunded); err != nil {
				t.Fatal(err)
			}
		case 'q':
			st, err := set.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st {
				o.Avail = append(o.Avail, s.Available, s.InUse, s.Debt)
			}
		case 'p', 'l':
			if feedback(t, set, ev, now()) {
				o.Refusal = "stale feedback"
			}
		}
		out = append(out, o)
	}
	return out
}

func TestDifferential(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	for _, scripts := range []bool{false, true} {
		for alg := algorithms.TokenBucket; alg <= algorithms.GCRA; alg++ {
			for si, specs := range diffSpecs(alg) {
				t.Run(fmt.Sprintf("scripts=%v/%v/%d", scripts, alg, si), func(t *testing.T) {
					differential(t, client, scripts, alg, si, specs)
				})
			}
		}
	}
}

// differential replays the trace of (alg, si) through both backends; the
// Redis one runs its entry points as scripts when scripts is set.
func differential(t *testing.T, client *redis.Client, scripts bool, alg algorithms.Kind, si int, specs []backend.Spec) {
	tr := makeTrace(rand.New(rand.NewPCG(uint64(alg), uint64(si))), specs, 400)
	var want []outcome
	start := inMemory(t, specs, func(set backend.Set) {
		want = replay(t, set, specs, tr, time.Sleep, func() int64 { return time.Now().UnixMicro() })
	})
	b, now, sleep := clocked(client, fmt.Sprintf("diff/%v", scripts), scripts, start)
	got := replay(t, open(t, b, specs...), specs, tr, sleep, now)
	granted, timed, debts := 0, 0, 0
	for i := range want {
		if fmt.Sprint(want[i]) != fmt.Sprint(got[i]) {
			t.Fatalf("step %d (%c): memory %+v, redis %+v", i, tr[i].op, want[i], got[i])
		}
		if got[i].Granted {
			granted++
		}
		if got[i].Refusal != "" && !strings.HasSuffix(got[i].Refusal, " 0µs") {
			timed++
		}
		for k := 2; k < len(got[i].Avail); k += 3 {
			if got[i].Avail[k] > 0 {
				debts++
			}
		}
	}
	if granted == 0 || granted == len(tr) || timed == 0 {
		t.Fatalf("the trace granted %d of %d steps, %d refusals said when: it tells little", granted, len(tr), timed)
	}
	t.Logf("%d steps: %d granted, %d refusals said when, %d debts seen", len(tr), granted, timed, debts)
}

// inMemory opens specs on backend/memory in a testing/synctest bubble and
// runs replay on the set there, where time.Sleep moves the bubble's fake
// clock; it returns the instant the bubble started, where the Redis side's
// clock starts (see clocked).
func inMemory(t *testing.T, specs []backend.Spec, replay func(set backend.Set)) int64 {
	var start time.Time
	synctest.Test(t, func(t *testing.T) {
		start = time.Now()
		set, err := memory.New().Open(context.Background(), "", specs)
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		replay(set)
	})
	return start.UnixMicro()
}

// clocked returns a Redis backend under prefix whose scripts read a test
// clock (cr.SetClock) that starts at start (Unix µs), running its entry
// points as scripts when scripts is set; now reads the clock and sleep
// moves it on.
func clocked(client redis.UniversalClient, prefix string, scripts bool, start int64) (b *cr.Backend, now func() int64, sleep func(time.Duration)) {
	b = cr.New(client, cr.Options{Prefix: prefix})
	if scripts {
		cr.UseScripts(b)
	}
	cr.SetClock(b, func() int64 { return start })
	return b, func() int64 { return start }, func(d time.Duration) { start += d.Microseconds() }
}

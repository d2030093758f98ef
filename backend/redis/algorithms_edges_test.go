package redis_test

// The five algorithms on Redis at exact instants of a test clock, through package concurry: refusals, debt, refunds, and the ends of the range.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/algorithms"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
	"github.com/concurry/concurry/internal/backendtest"
)

// paClock is a frozen test clock in µs.
type paClock struct{ now int64 }

func (c *paClock) add(d time.Duration) { c.now += d.Microseconds() }

// clock returns c as a backendtest.Clock: the scripts resolve a µs.
func (c *paClock) clock() backendtest.Clock {
	return backendtest.Clock{Advance: c.add, Q: time.Microsecond}
}

// paSets counts the sets paSet opened, so that each has a name of its own.
var paSets atomic.Int64

// paSet opens limits on a fresh Redis backend whose scripts read clk, under
// a name no other set has.
func paSet(t *testing.T, client redis.UniversalClient, clk *paClock, limits ...concurry.Limit) *concurry.LimitSet {
	t.Helper()
	b := cr.New(client, cr.Options{Prefix: "edges-alg"})
	cr.SetClock(b, func() int64 { return clk.now })
	name := fmt.Sprintf("%s/%d", t.Name(), paSets.Add(1))
	ls, err := concurry.NewLimitSet(limits, concurry.WithName(name), concurry.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	return ls
}

// paNow returns a whole second of the current time, in µs.
func paNow() int64 { return time.Now().Unix() * 1_000_000 }

var paAll = []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA, concurry.LeakyBucket, concurry.SlidingWindow, concurry.FixedWindow}

// The TokenBucket and GCRA scenarios of backendtest, at the µs of the test
// clock: "TokenBucket: ... refills continuously at Capacity/Window" and
// RetryAfter "how long until the whole request would fit" (at 3 per second
// the first unit is back at ⌈333,333.3⌉ µs, not a µs before, and the
// fraction is kept); refunds, "Less than requested: the difference is
// refunded where the algorithm refunds", capped at a full bucket (GCRA:
// "never before now"), Stats.Refunded counting "units given back"; and "Debt
// is visible" (15 of overage at 1 unit/s is a debt of 15, paid off at 15 s;
// one unit fits at 16 s exactly).
func TestEdgeAlgRedisTokenBucketScenarios(t *testing.T) {
	client := redistest.Start(t).Client()
	for _, sc := range []struct {
		name     string
		window   time.Duration
		capacity int64
		run      func(testing.TB, backendtest.Clock, *concurry.LimitSet)
	}{
		{"FractionalRefill", time.Second, 3, backendtest.FractionalRefill},
		{"RefundedCountsWhatWasGivenBack", time.Second, 10, backendtest.RefundNeverBeforeNow},
		{"DebtPaidOffExactly", 10 * time.Second, 10, backendtest.DebtPaidOff},
	} {
		for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA} {
			t.Run(sc.name+"/"+alg.String(), func(t *testing.T) {
				clk := &paClock{paNow()}
				sc.run(t, clk.clock(), paSet(t, client, clk, concurry.RateLimit{Key: "u", Window: sc.window, Capacity: sc.capacity, Algorithm: alg}))
			})
		}
	}
}

// LeakyBucket: "A request of n units departs at max(now, next) and moves next
// to its departure + n·T ... TryAcquire succeeds only when it can depart now";
// overage is charged as the queue's drain time.
func TestEdgeAlgRedisLeakyBucket(t *testing.T) {
	client := redistest.Start(t).Client()
	clk := &paClock{paNow()}
	ls := paSet(t, client, clk, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 4, Algorithm: concurry.LeakyBucket})
	backendtest.Take(t, ls, concurry.Amounts{"u": 1}, concurry.Amounts{"u": 1}) // next = 250ms
	backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", 250*time.Millisecond)
	if got := backendtest.LimitStat(t, ls, "u").Available; got != 3 {
		t.Fatalf("Available %d with one unit queued ahead, want 3", got)
	}
	clk.add(250 * time.Millisecond)
	backendtest.Take(t, ls, concurry.Amounts{"u": 1}, concurry.Amounts{"u": 9}) // next = 250ms + 9·250ms
	if st := backendtest.LimitStat(t, ls, "u"); st.Available != 0 || st.Overage != 8 {
		t.Fatalf("%+v, want Available 0, Overage 8", st)
	}
	backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", 2250*time.Millisecond)
	clk.add(1500 * time.Millisecond)
	if got := backendtest.LimitStat(t, ls, "u").Available; got != 1 {
		t.Fatalf("Available %d with 3 units queued ahead, want 1", got)
	}
	clk.clock().FitsIn(t, ls, 750*time.Millisecond, "u", concurry.Amounts{"u": 4})
}

// "SlidingWindow: ... the sum of amounts admitted in (now−Window, now] never
// exceeds Capacity": units taken at s leave at exactly s+W.
func TestEdgeAlgRedisSlidingWindowEdges(t *testing.T) {
	client := redistest.Start(t).Client()
	clk := &paClock{paNow()}
	backendtest.SlidingWindowEdges(t, clk.clock(), paSet(t, client, clk, concurry.RateLimit{Key: "u", Window: time.Second, Capacity: 10, Algorithm: concurry.SlidingWindow}))
}

// "FixedWindow: a counter per window aligned to multiples of Window since the
// Unix epoch ...; up to 2× Capacity across a boundary."
func TestEdgeAlgRedisFixedWindowEpoch(t *testing.T) {
	client := redistest.Start(t).Client()
	w := (7 * time.Second).Microseconds()
	clk := &paClock{(paNow()/w+2)*w - 2_000_000} // 2 s before a boundary
	backendtest.FixedWindowEpoch(t, clk.clock(), func(l ...concurry.Limit) *concurry.LimitSet { return paSet(t, client, clk, l...) })
}

// "Capacities up to 2^50 and windows up to 366 days ... no sum of amounts can
// overflow": at 2^50 per 366 days every algorithm answers to the µs.
func TestEdgeAlgRedisExtremeRange(t *testing.T) {
	client := redistest.Start(t).Client()
	const c = concurry.MaxCapacity
	const w = concurry.MaxWindow
	for _, alg := range paAll {
		t.Run(alg.String(), func(t *testing.T) {
			clk := &paClock{paNow()}
			ls := paSet(t, client, clk, concurry.RateLimit{Key: "u", Window: w, Capacity: c, Algorithm: alg})
			if alg == concurry.LeakyBucket {
				backendtest.Take(t, ls, concurry.Amounts{"u": c}, concurry.Amounts{"u": c})
			} else {
				backendtest.Take(t, ls, concurry.Amounts{"u": c - 1}, concurry.Amounts{"u": c - 1})
				backendtest.Take(t, ls, concurry.Amounts{"u": 1}, concurry.Amounts{"u": 1})
			}
			all := w
			if alg == concurry.FixedWindow {
				wu := w.Microseconds()
				all = time.Duration((clk.now/wu+1)*wu-clk.now) * time.Microsecond
			}
			one := all
			if alg == concurry.TokenBucket || alg == concurry.GCRA {
				one = time.Microsecond // ⌈W/C⌉ = ⌈0.028 µs⌉
			}
			backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", one)
			backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": c}), "u", all)
			clk.add(all - time.Microsecond)
			if alg != concurry.TokenBucket && alg != concurry.GCRA {
				backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", time.Microsecond)
			}
			clk.add(time.Microsecond)
			backendtest.Take(t, ls, concurry.Amounts{"u": c}, concurry.Amounts{"u": c})
		})
	}
}

// Debt at the top of the range: 2^50 per 366 days in debt by 2^50+1 (two
// grants of 1 reporting 2^50 each, a third holding 1).
func TestEdgeAlgRedisExtremeDebt(t *testing.T) {
	client := redistest.Start(t).Client()
	const c = concurry.MaxCapacity
	const w = concurry.MaxWindow
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			clk := &paClock{paNow()}
			ls := paSet(t, client, clk, concurry.RateLimit{Key: "u", Window: w, Capacity: c, Algorithm: alg})
			held := backendtest.DebtOf(t, ls, c, 1)
			if st := backendtest.LimitStat(t, ls, "u"); st.Available != 0 || st.Debt != c+1 {
				t.Fatalf("%+v, want Available 0, Debt 2^50+1", st)
			}
			held[0].Update(concurry.Amounts{"u": 0})
			held[0].Release() // refunds 1
			if st := backendtest.LimitStat(t, ls, "u"); st.Debt != c {
				t.Fatalf("%+v after a refund of 1, want Debt 2^50", st)
			}
			backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": 1}), "u", w+time.Microsecond)
			backendtest.Refused(t, backendtest.Try(ls, concurry.Amounts{"u": c}), "u", 2*w)
			clk.add(2 * w)
			backendtest.Take(t, ls, concurry.Amounts{"u": c}, concurry.Amounts{"u": c})
		})
	}
}

// Overage within the range on a slow limit (10 per 366 days, 1000 units over):
// "the excess is charged too ... Debt is visible", with "the same semantics"
// and "refunds included" on every backend. In memory the debt is 992 units,
// a refund of one unit brings it to 991, and one unit fits again after
// 992·T (T = 36.6 days); a LeakyBucket with 1000 units of overage drains
// after 1001·T. Both are past 2112, so RetryAfter saturates there.
func TestEdgeAlgRedisSlowLimitLargeOverage(t *testing.T) {
	client := redistest.Start(t).Client()
	for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA, concurry.LeakyBucket} {
		t.Run(alg.String(), func(t *testing.T) {
			clk := &paClock{paNow()}
			ls := paSet(t, client, clk, concurry.RateLimit{Key: "u", Window: concurry.MaxWindow, Capacity: 10, Algorithm: alg})
			backendtest.SlowLimitLargeOverage(t, ls, alg, func(d time.Duration) time.Duration { return paSaturated(clk, d) })
		})
	}
}

// paSaturated returns d, or less where now + d passes 2^52 µs (the year
// 2112), where the scripts' instants saturate (see the package doc).
func paSaturated(clk *paClock, d time.Duration) time.Duration {
	return min(d, time.Duration(1<<52-clk.now)*time.Microsecond)
}

// paModel is the reference: package algorithms driven as the root package
// drives it (TryAcquire = Ready then Take; Release = Take of the overage or
// Refund of the unused part where the algorithm refunds), at µs instants.
type paModel struct {
	st  algorithms.State
	alg concurry.Algorithm
}

func (m *paModel) try(now, n int64) (bool, time.Duration) {
	ns := now * 1000
	if r := m.st.Ready(ns, n); r > ns {
		return false, time.Duration((r-ns+999)/1000) * time.Microsecond
	}
	m.st.Take(ns, n)
	return true, 0
}

func (m *paModel) settle(now, n, used int64) {
	switch ns := now * 1000; {
	case used > n:
		m.st.Take(ns, used-n)
	case used < n && m.alg.Refunds():
		m.st.Refund(ns, n-used)
	}
}

// A differential at odd, coprime limits near the top of the range (amounts
// near capacity, overage of up to 2^50 per report, refunds): "the same
// semantics" on every backend, "no sum of amounts can overflow". The script's
// rate is reduced by gcd(C, W), which is 1 here, so every product takes the
// exact slow path.
func TestEdgeAlgRedisDifferentialAtTheTopOfTheRange(t *testing.T) {
	client := redistest.Start(t).Client()
	type lim struct {
		c int64
		w time.Duration
	}
	for _, l := range []lim{
		{concurry.MaxCapacity - 3, concurry.MaxWindow - time.Microsecond},
		{concurry.MaxCapacity - 1, 86400*time.Second + 7*time.Microsecond},
		{999_999_937, concurry.MaxWindow - 13*time.Microsecond},
		{7, concurry.MaxWindow - time.Microsecond},
	} {
		for _, alg := range paAll {
			t.Run(alg.String()+"/"+time.Duration(l.w).String(), func(t *testing.T) {
				clk := &paClock{paNow()}
				ls := paSet(t, client, clk, concurry.RateLimit{Key: "u", Window: l.w, Capacity: l.c, Algorithm: alg})
				m := &paModel{st: algorithms.New(algorithms.Kind(alg), l.w, l.c), alg: alg}
				c := l.c
				wus := int64(l.w / time.Microsecond)
				per := max(wus/c, 1) // µs per unit, at least 1
				steps := []struct {
					dt      int64 // µs before the step
					n, used int64
				}{
					{0, c - 5, c - 5}, {0, 3, 3}, {1, 2, 1}, {per, 1, 1}, {3 * per, c / 2, c / 3},
					{per * 7, 4, c}, {wus/3 + 11, c, c}, {1, 1, 0}, {wus, c - 1, c - 2},
					{wus*2 + 5, c, c}, {per * 2, 2, concurry.MaxCapacity}, {wus * 3, 1, 1},
				}
				for i, s := range steps {
					clk.now += s.dt
					wantOK, wantRA := m.try(clk.now, s.n)
					a, err := ls.TryAcquire(context.Background(), concurry.Amounts{"u": s.n})
					if (err == nil) != wantOK {
						t.Fatalf("step %d (+%dµs, %d): granted %v, the reference says %v (%v)", i, s.dt, s.n, err == nil, wantOK, err)
					}
					if err != nil {
						var r *concurry.RefusalError
						if !errors.As(err, &r) || r.RetryAfter != wantRA {
							t.Fatalf("step %d: refusal %v (%+v), the reference says RetryAfter %v", i, err, r, wantRA)
						}
					} else {
						a.Update(concurry.Amounts{"u": s.used})
						a.Release()
						m.settle(clk.now, s.n, s.used)
					}
					st := backendtest.LimitStat(t, ls, "u")
					ns := clk.now * 1000
					if st.Available != m.st.Available(ns) || st.Debt != m.st.Debt(ns) {
						t.Fatalf("step %d: Available %d, Debt %d; the reference says %d and %d", i, st.Available, st.Debt, m.st.Available(ns), m.st.Debt(ns))
					}
				}
			})
		}
	}
}

// "no sum of amounts can overflow": 5·2^50 of overage on 1 per 366 days
// leaves nothing available, a debt within [0, 2^52], a positive RetryAfter,
// and a deadline Acquire that fails at once — on Redis too.
func TestEdgeAlgRedisSaturatedLimitsNeverWrap(t *testing.T) {
	client := redistest.Start(t).Client()
	for _, alg := range paAll {
		t.Run(alg.String(), func(t *testing.T) {
			clk := &paClock{paNow()}
			ls := paSet(t, client, clk, concurry.RateLimit{Key: "u", Window: concurry.MaxWindow, Capacity: 1, Algorithm: alg})
			backendtest.Saturate(t, ls, time.Nanosecond, time.Minute, 5*time.Second)
		})
	}
}

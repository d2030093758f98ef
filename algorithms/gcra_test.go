package algorithms_test

import (
	"testing"

	"github.com/concurry/concurry/algorithms"
	"pgregory.net/rapid"
)

// TestGCRATable checks GCRA at the exact instants TokenBucket is checked at.
func TestGCRATable(t *testing.T) { bucketTable(t, algorithms.GCRA) }

// TestGCRANeverOverAdmits checks the admission bound without refunds.
func TestGCRANeverOverAdmits(t *testing.T) { bucketNeverOverAdmits(t, algorithms.GCRA, false) }

// TestGCRANeverOverAdmitsWithRefunds checks the bound with refunds.
func TestGCRANeverOverAdmitsWithRefunds(t *testing.T) {
	bucketNeverOverAdmits(t, algorithms.GCRA, true)
}

// TestGCRAMatchesOracle checks every decision against the exact token-bucket
// oracle.
func TestGCRAMatchesOracle(t *testing.T) { bucketMatchesOracle(t, algorithms.GCRA) }

// TestGCRANoDrift is TestTokenBucketNoDrift for GCRA.
func TestGCRANoDrift(t *testing.T) { bucketNoDrift(t, algorithms.GCRA) }

// TestGCRATolerance checks the GCRA reading of the limit: with TAT ahead of
// now, n units fit iff TAT + n·T − now ≤ τ = W.
func TestGCRATolerance(t *testing.T) {
	s := newState(algorithms.GCRA, sec, 4) // T = 250ms
	s.Take(t0, 2)                          // TAT = t0 + 500ms
	eq(t, "Ready(t0,2)", s.Ready(t0, 2), t0)
	eq(t, "Ready(t0,3)", s.Ready(t0, 3), t0+250*ms) // TAT + 750ms − 1s
	s.Take(t0, 2)                                   // TAT = t0 + 1s
	eq(t, "Ready(t0,1)", s.Ready(t0, 1), t0+250*ms)
	eq(t, "Refund(t0+100ms,1)", s.Refund(t0+100*ms, 1), 1) // TAT = t0 + 750ms
	eq(t, "Ready(t0+100ms,1)", s.Ready(t0+100*ms, 1), t0+100*ms)
	eq(t, "Refund(t0+600ms,5)", s.Refund(t0+600*ms, 5), 0) // TAT − now = 150ms: 0.6 unit
	eq(t, "Available", s.Available(t0+600*ms), 4)
}

// TestGCRAMatchesTokenBucket replays random traces of every operation —
// conditional takes, overage, refunds, lowering, steps back in time —
// through GCRA and TokenBucket and requires identical Ready, Available, Debt
// and Refund results.
func TestGCRAMatchesTokenBucket(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawParams(t)
		g := newState(algorithms.GCRA, p.window, p.capacity)
		b := newState(algorithms.TokenBucket, p.window, p.capacity)
		now := p.start
		for i, st := range drawTrace(t, p, []opKind{opTry, opForce, opRefund, opLower}, true) {
			now += st.dt
			n := min(max(st.n, 1), p.capacity)
			for _, k := range []int64{1, n, p.capacity} {
				if rg, rb := g.Ready(now, k), b.Ready(now, k); rg != rb {
					t.Fatalf("step %d: Ready(%d, %d): GCRA %d, TokenBucket %d", i, now, k, rg, rb)
				}
			}
			if ag, ab := g.Available(now), b.Available(now); ag != ab {
				t.Fatalf("step %d: Available(%d): GCRA %d, TokenBucket %d", i, now, ag, ab)
			}
			if dg, db := g.Debt(now), b.Debt(now); dg != db {
				t.Fatalf("step %d: Debt(%d): GCRA %d, TokenBucket %d", i, now, dg, db)
			}
			switch st.op {
			case opLower:
				g.Lower(now, st.n)
				b.Lower(now, st.n)
			case opTry:
				if g.Ready(now, n) == now {
					g.Take(now, n)
					b.Take(now, n)
				}
			case opForce:
				g.Take(now, st.n)
				b.Take(now, st.n)
			case opRefund:
				if rg, rb := g.Refund(now, st.n), b.Refund(now, st.n); rg != rb {
					t.Fatalf("step %d: Refund(%d, %d): GCRA %d, TokenBucket %d", i, now, st.n, rg, rb)
				}
			}
		}
	})
}

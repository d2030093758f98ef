package concurry

import (
	"math"
	"sync"
	"testing"
	"unsafe"
)

// The counters count one line until an add is raced, then spread over cells
// on cache lines of their own; reads sum both, and every count saturates.
func TestGrantCounts(t *testing.T) {
	g := newGrantCounts(3)
	g.addAuto()
	g.addSpec(2, 500)
	if g.cells.Load() != nil {
		t.Fatal("cells made without a race")
	}
	if g.auto() != 1 || g.spec(2) != 500 || g.spec(0) != 0 {
		t.Fatalf("auto %d, spec 2 %d, spec 0 %d; want 1, 500, 0", g.auto(), g.spec(2), g.spec(0))
	}

	g.spread() // as the first raced add does
	cells := *g.cells.Load()
	if len(cells) != grantCells*g.width || g.width != lineWords {
		t.Fatalf("%d cells of width %d, want %d of %d", len(cells)/g.width, g.width, grantCells, lineWords)
	}
	if p := uintptr(unsafe.Pointer(&cells[0])); p%(lineWords*8) != 0 {
		t.Fatalf("the cells start at %#x, not on a cache line", p)
	}
	g.spread() // a second spread keeps the cells the first made
	if &(*g.cells.Load())[0] != &cells[0] {
		t.Fatal("a second spread replaced the cells, losing their counts")
	}
	g.addAuto()
	g.addSpec(2, 7)
	if g.auto() != 2 || g.spec(2) != 507 {
		t.Fatalf("after spreading: auto %d, spec 2 %d; want 2 and 507", g.auto(), g.spec(2))
	}
	if g.base[0].Load() != 1 || g.base[3].Load() != 500 {
		t.Fatal("an add after spreading went to the base")
	}

	// Saturation: in the base (an add that would wrap goes to a cell,
	// which saturates), in a cell, and in the sum.
	h := newGrantCounts(1)
	h.base[1].Store(math.MaxInt64 - 1)
	h.addSpec(0, 5)
	if got := h.spec(0); got != math.MaxInt64 {
		t.Fatalf("base near the top plus 5: %d, want MaxInt64", got)
	}
	h.addSpec(0, math.MaxInt64)
	h.addSpec(0, math.MaxInt64)
	if got := h.spec(0); got != math.MaxInt64 {
		t.Fatalf("a cell added to past the top: %d, want MaxInt64", got)
	}
	k := newGrantCounts(1)
	k.spread()
	(*k.cells.Load())[1].Store(math.MaxInt64)
	(*k.cells.Load())[k.width+1].Store(math.MaxInt64)
	if got := k.spec(0); got != math.MaxInt64 {
		t.Fatalf("two full cells: %d, want MaxInt64", got)
	}
	if got := saturated(0, 0); got != 0 {
		t.Fatalf("saturated(0, 0) = %d", got)
	}
}

// Grants made from many goroutines at once are each counted once, whether
// they went to the base or to the cells. Run with -race.
func TestGrantCountsRaced(t *testing.T) {
	ls, err := NewLimitSet([]Limit{CallLimit{Window: 1 << 40, Capacity: MaxCapacity}, RateLimit{Key: "tokens", Window: 1 << 40, Capacity: MaxCapacity}})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	const goroutines, each = 16, 500
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				a, err := ls.TryAcquire(t.Context(), Amounts{"tokens": 3})
				if err != nil {
					t.Error(err)
					return
				}
				_ = a.Update(Amounts{"tokens": 3})
				_ = a.Release()
			}
		})
	}
	wg.Wait()
	st, err := ls.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	calls, _ := st.Limit(CallKey)
	tokens, _ := st.Limit("tokens")
	if calls.Granted != goroutines*each || tokens.Granted != 3*goroutines*each {
		t.Fatalf("Granted: calls %d, tokens %d; want %d and %d", calls.Granted, tokens.Granted, goroutines*each, 3*goroutines*each)
	}
	t.Logf("cells made: %v", ls.grants.cells.Load() != nil)
}

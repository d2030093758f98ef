package concurry

import (
	"math"
	"sync/atomic"
	"unsafe"
)

// grantCounts are a set's grant counters: in slot 0 the grants that took one
// unit of every call and resource limit (one count for them all rather than
// one add per limit per grant; Stats adds it to each of those limits'
// Granted), and in slot 1+i the units of spec i granted otherwise (always
// for a rate limit). Every grant adds to them.
//
// A counter that goroutines on several cores add to at once moves its cache
// line between the cores on every add: from 64 goroutines on 2 cores, a
// CallLimit's TryAcquire+Release took a quarter longer than without the
// count. So the counters start as one line, and the first add that finds
// another add racing it (its compare-and-swap fails) spreads them over
// grantCells cells, each on cache lines of its own; a goroutine adds to the
// cell its stack's address picks, which is the same cell for as long as
// its stack stays where it is. A set that is never raced keeps one line;
// one that is pays grantCells lines (4 KiB for up to 7 limits) once.
// A read sums the base and the cells. Each counter saturates at
// math.MaxInt64 rather than wrapping, and so does the sum.
type grantCounts struct {
	base  []atomic.Int64                 // one counter per slot
	cells atomic.Pointer[[]atomic.Int64] // nil until raced; cell k at k*width, each on a cache line boundary
	width int                            // counters per cell: the slots, rounded up to whole cache lines
}

// grantCells is how many cells raced counters spread over. With fewer, the
// goroutines that share a cell run on both cores (8 cells took 10 % off the
// 64-goroutine CallLimit cycle, within its spread; 64 cells 18 %).
const grantCells = 64

// lineWords is how many counters fill a cache line (64 bytes).
const lineWords = 8

func newGrantCounts(specs int) grantCounts {
	slots := 1 + specs
	return grantCounts{base: make([]atomic.Int64, slots), width: (slots + lineWords - 1) / lineWords * lineWords}
}

// addAuto counts a grant that took one unit of every call and resource limit.
func (g *grantCounts) addAuto() { g.add(0, 1) }

// addSpec counts n units of spec i granted.
func (g *grantCounts) addSpec(i int, n int64) { g.add(1+i, n) }

// add adds n ≥ 0 to slot, saturating.
func (g *grantCounts) add(slot int, n int64) {
	if g.cells.Load() == nil {
		c := &g.base[slot]
		if old := c.Load(); old+n >= 0 && c.CompareAndSwap(old, old+n) {
			return
		}
	}
	g.addRaced(slot, n)
}

// addRaced is add once the base was raced (or would wrap, which is as
// rare as it is harmless to spread for): it adds to the goroutine's cell,
// made if missing.
func (g *grantCounts) addRaced(slot int, n int64) {
	cells := g.cells.Load()
	if cells == nil {
		g.spread()
		cells = g.cells.Load()
	}
	addCount(&(*cells)[g.cell()+slot], n)
}

// spread makes the cells, if no other add made them first.
func (g *grantCounts) spread() {
	all := make([]atomic.Int64, grantCells*g.width+lineWords-1)
	skip := 0 // to the first cache line boundary
	for uintptr(unsafe.Pointer(&all[skip]))%(lineWords*8) != 0 {
		skip++
	}
	cells := all[skip : skip+grantCells*g.width]
	g.cells.CompareAndSwap(nil, &cells)
}

// cell returns the offset of the cell the calling goroutine adds to, picked
// by where its stack is. Goroutine stacks are at least 8 KiB apart, so the
// bits from 13 up tell them apart.
func (g *grantCounts) cell() int {
	var here byte
	p := uintptr(unsafe.Pointer(&here))
	return int((p>>13^p>>19)%grantCells) * g.width
}

// auto returns the grants counted by addAuto.
func (g *grantCounts) auto() int64 { return g.sum(0) }

// spec returns the units of spec i counted by addSpec.
func (g *grantCounts) spec(i int) int64 { return g.sum(1 + i) }

// sum returns slot's count: the base and every cell, saturating.
func (g *grantCounts) sum(slot int) int64 {
	total := g.base[slot].Load()
	if cells := g.cells.Load(); cells != nil {
		for k := 0; k < len(*cells); k += g.width {
			total = saturated(total, (*cells)[k+slot].Load())
		}
	}
	return total
}

// saturated returns a + b for a, b ≥ 0, or math.MaxInt64 when the sum
// would wrap.
func saturated(a, b int64) int64 {
	if s := a + b; s >= 0 {
		return s
	}
	return math.MaxInt64
}

package memset_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/internal/memset"
)

// identitySpecs is the definition of a typical identity of a Keyed: a call
// rate, a token rate and a connection count, with windows of an hour so that
// nothing refills during a measurement.
var identitySpecs = []backend.Spec{
	{Key: "call_count", Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: time.Hour, Capacity: 1000},
	{Key: "tokens", Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: time.Hour, Capacity: 100_000},
	{Key: "conns", Kind: backend.Resource, Capacity: 10},
}

// bytesPerSet returns the heap a set of specs keeps, handle included, once
// it has granted, settled and released one request: the share of one
// identity of a Keyed that lives in this package.
func bytesPerSet(specs []backend.Spec, amounts, delta []int64) float64 {
	const n = 20_000
	handles := make([]*memset.Handle, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range handles {
		h := memset.NewSet(specs).Handle(nil)
		if _, err := h.Acquire(bg, amounts, backend.AcquireOptions{}); err != nil {
			panic(err)
		}
		_ = h.Settle(bg, 0, amounts, delta, true, nil)
		handles[i] = h
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(handles)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
}

// TestBytesPerSet bounds the memory of a set (issue 13): specs shared with
// the caller, one block for every limit's state, nothing for waiting or
// feedback until a request waits or feedback comes.
func TestBytesPerSet(t *testing.T) {
	got := bytesPerSet(identitySpecs, []int64{1, 100, 1}, []int64{0, -50, 0})
	t.Logf("%.0f bytes per set of %d limits", got, len(identitySpecs))
	if got > 150 {
		t.Errorf("a set of %d limits keeps %.0f bytes; want at most 150", len(identitySpecs), got)
	}
	call := identitySpecs[:1]
	t.Logf("%.0f bytes per set of a CallLimit", bytesPerSet(call, []int64{1}, []int64{0}))
	gcra := []backend.Spec{{Key: "r", Kind: backend.Rate, Algorithm: algorithms.GCRA, Window: time.Hour, Capacity: 10}}
	t.Logf("%.0f bytes per set of a GCRA limit", bytesPerSet(gcra, []int64{1}, []int64{-1}))
}

package bench

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// BenchmarkKeyedEviction passes 1,000,000 distinct identities through a
// Keyed (one call each; an identity refills 1 ms after its call) and reports
// the peak heap growth and number of identities held while they pass, and
// what is left once they are idle and swept (residue, bytes over the heap
// before). Run it with -benchtime 1x.
func BenchmarkKeyedEviction(b *testing.B) {
	const n = 1_000_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "user-" + strconv.Itoa(i)
	}
	for range b.N {
		before := heap()
		k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: []concurry.Limit{
			concurry.CallLimit{Window: time.Millisecond, Capacity: 1},
			concurry.RateLimit{Key: "tokens", Window: time.Millisecond, Capacity: 1000},
			concurry.ResourceLimit{Key: "connections", Capacity: 4},
		}})
		if err != nil {
			b.Fatal(err)
		}
		var peakHeap uint64
		peakHeld := 0
		for i, id := range ids {
			a, err := k.TryAcquire(bg, id, concurry.Amounts{"tokens": 10})
			if err != nil {
				b.Fatal(err)
			}
			_ = a.Update(concurry.Amounts{"tokens": 10})
			_ = a.Release()
			if i%5_000 == 0 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapAlloc-min(ms.HeapAlloc, before))
				peakHeld = max(peakHeld, k.Len())
			}
		}
		time.Sleep(2 * time.Millisecond) // every identity refills: all are full again
		k.Sweep(bg)
		residue := int64(heap()) - int64(before)
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak-MiB")
		b.ReportMetric(float64(peakHeld), "peak-identities")
		b.ReportMetric(float64(k.Len()), "identities-left")
		b.ReportMetric(float64(residue), "residue-B")
		runtime.KeepAlive(k)
	}
}

package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/go-chi/httprate"
	sethlimit "github.com/sethvargo/go-limiter/httplimit"
	"github.com/sethvargo/go-limiter/memorystore"
	ulule "github.com/ulule/limiter/v3"
	ulstdlib "github.com/ulule/limiter/v3/drivers/middleware/stdlib"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/httplimit"
)

// The HTTP middleware beside its peers: each limits requests per client IP
// to a rate no request of the benchmark reaches, so every request is
// admitted and ns/op is the middleware's own cost per request (the handler
// does nothing). "1id" sends every request from one address; "100kid"
// cycles through 100,000 addresses, so every identity stays in memory.

const generous = concurry.MaxCapacity

type middleware struct {
	name string
	wrap func(http.Handler) http.Handler
}

// middlewares returns each middleware limiting every identity to limit
// requests per hour. "ConcurryCalls" is the like-for-like row: one
// CallLimit per identity and the default cost, as the peers keep one rate
// per key; "Concurry" gives every identity three limits (also a rate of
// bytes, the body size, and a limit of 8 requests in flight), which the
// peers cannot express.
func middlewares(b *testing.B, limit int64) []middleware {
	store, err := memorystore.New(&memorystore.Config{Tokens: uint64(limit), Interval: time.Hour, SweepMinTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close(context.Background()) })
	seth, err := sethlimit.NewMiddleware(store, sethlimit.IPKeyFunc())
	if err != nil {
		b.Fatal(err)
	}
	ul := ulstdlib.NewMiddleware(ulule.New(ulmemory.NewStore(), ulule.Rate{Period: time.Hour, Limit: limit}))
	return []middleware{
		{"PeerHttprate", httprate.LimitBy(int(min(limit, 1<<30)), time.Hour, remoteHost)},
		{"PeerUlule", ul.Handler},
		{"PeerSethvargo", seth.Handle},
		{"ConcurryCalls", func(next http.Handler) http.Handler {
			k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: []concurry.Limit{
				concurry.CallLimit{Window: time.Hour, Capacity: limit},
			}})
			if err != nil {
				b.Fatal(err)
			}
			return httplimit.Handler(next, httplimit.Options{Keyed: k})
		}},
		{"Concurry", func(next http.Handler) http.Handler {
			k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: []concurry.Limit{
				concurry.CallLimit{Window: time.Hour, Capacity: limit},
				concurry.RateLimit{Key: "bytes", Window: time.Hour, Capacity: limit},
				concurry.ResourceLimit{Key: "in_flight", Capacity: 8},
			}})
			if err != nil {
				b.Fatal(err)
			}
			return httplimit.Handler(next, httplimit.Options{Keyed: k, Cost: httplimit.CostBodySize("bytes")})
		}},
	}
}

// remoteHost keys httprate by the connection's peer, as the other
// middlewares here do.
func remoteHost(r *http.Request) (string, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	return host, err
}

// discard is a ResponseWriter that keeps nothing, so that the benchmark
// measures the middleware rather than a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

var noop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

func requests(n int) []*http.Request {
	rs := make([]*http.Request, n)
	for i := range rs {
		r, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
		r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:4321", i>>16&255, i>>8&255, i&255)
		rs[i] = r
	}
	return rs
}

func BenchmarkHTTPMiddleware(b *testing.B) {
	for _, ids := range []int{1, 100_000} {
		reqs := requests(ids)
		b.Run(fmt.Sprintf("bare/%did", ids), func(b *testing.B) {
			serve(b, noop, reqs)
		})
		for _, m := range middlewares(b, generous) {
			b.Run(fmt.Sprintf("%s/%did", m.name, ids), func(b *testing.B) {
				h := m.wrap(noop)
				if ids > 1 { // every identity in memory before the clock starts
					serve(nil, h, reqs)
				}
				serve(b, h, reqs)
			})
		}
	}
}

func serve(b *testing.B, h http.Handler, reqs []*http.Request) {
	w := &discard{h: make(http.Header)}
	if b == nil {
		for _, r := range reqs {
			h.ServeHTTP(w, r)
			clear(w.h)
		}
		return
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.ServeHTTP(w, reqs[i])
		clear(w.h)
		if i++; i == len(reqs) {
			i = 0
		}
	}
}

// BenchmarkHTTPMemoryPerIdentity reports the heap each middleware keeps per
// identity it has seen (B/identity), after 100,000 identities made one
// request each. One iteration is the measurement: run it with
// -benchtime 1x.
func BenchmarkHTTPMemoryPerIdentity(b *testing.B) {
	const n = 100_000
	reqs := requests(n)
	for _, m := range middlewares(b, 100) { // no identity refills during the test: all stay
		b.Run(m.name, func(b *testing.B) {
			var perID float64
			for range b.N {
				before := heap()
				h := m.wrap(noop)
				serve(nil, h, reqs)
				perID = float64(heap()-before) / n
				runtime.KeepAlive(h)
			}
			b.ReportMetric(perID, "B/identity")
		})
	}
}

func heap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

package bench

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	ulule "github.com/ulule/limiter/v3"
	ulstdlib "github.com/ulule/limiter/v3/drivers/middleware/stdlib"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/concurry/concurry"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
	"github.com/concurry/concurry/httplimit"
)

// BenchmarkHTTPMiddlewareRedis compares the HTTP middleware over Redis with
// ulule/limiter's standard-library middleware over its Redis store, on one
// redis-server started for the run. Each limits requests per client IP to
// a rate no request of the benchmark reaches, so every request is admitted
// and ns/op is the middleware's cost per request, Redis round trips
// included (the handler does nothing). "1id" sends every request from one
// address; "10kid" cycles through 10,000 addresses, each already seen once
// before the clock starts; "newid" sends every request from an address
// never seen before (the first request of each client).
//
// PeerUlule and Concurry have one limit per identity: a fixed window of
// requests per hour, ulule's algorithm. Floor is the least such a limit can
// cost under concurry's contract (see floorScript): where it stands between
// the two says how much of the gap is the contract and how much the rest. Concurry3Limits gives each identity
// a CallLimit, a RateLimit of request bytes and a ResourceLimit of requests
// in flight, held until the handler returns: a lease, so a second round
// trip to release it. calls/op is the number of Redis round trips per
// request, and srv-µs/op the Redis CPU time per request.
//
// Run the passes interleaved, so that ours and the peer share the
// machine's noise:
//
//	cd bench && go test -c -o bench.test . && for i in 1 2 3 4 5; do
//	./bench.test -test.run '^$' -test.bench HTTPMiddlewareRedis -test.benchmem; done | go run ./ratios
func BenchmarkHTTPMiddlewareRedis(b *testing.B) {
	srv := redistest.Start(b)
	counter := &callCounter{}
	client := srv.Client()
	client.AddHook(counter)
	for _, ids := range []int{1, 10_000} {
		reqs := requests(ids)
		for _, m := range redisMiddlewares(b, client) {
			b.Run(fmt.Sprintf("%s/%s", m.name, idsName(ids)), func(b *testing.B) {
				h := m.wrap(noop)
				serve(nil, h, reqs) // every identity in Redis, scripts loaded, before the clock starts
				report := measure(b, client, counter)
				serve(b, h, reqs)
				report()
			})
		}
	}
	for _, m := range redisMiddlewares(b, client) {
		b.Run(m.name+"/newid", func(b *testing.B) {
			h := m.wrap(noop)
			r := requests(1)[0]
			serve(nil, h, []*http.Request{r}) // scripts loaded
			w := &discard{h: make(http.Header)}
			report := measure(b, client, counter)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				r.RemoteAddr = fmt.Sprintf("11.%d.%d.%d:4321", i>>16&255, i>>8&255, i&255)
				h.ServeHTTP(w, r)
				clear(w.h)
			}
			report()
		})
	}
}

func idsName(n int) string {
	if n >= 1000 {
		return fmt.Sprintf("%dkid", n/1000)
	}
	return fmt.Sprintf("%did", n)
}

// redisMiddlewares returns the middlewares BenchmarkHTTPMiddlewareRedis
// compares, each with keys of its own in the server.
func redisMiddlewares(b *testing.B, client *redis.Client) []middleware {
	prefix := fmt.Sprintf("bench%d", time.Now().UnixNano())
	store, err := ulredis.NewStoreWithOptions(client, ulule.StoreOptions{Prefix: prefix + "-ulule"})
	if err != nil {
		b.Fatal(err)
	}
	ul := ulstdlib.NewMiddleware(ulule.New(store, ulule.Rate{Period: time.Hour, Limit: generous}))
	keyed := func(name string, limits []concurry.Limit, cost func(*http.Request) (concurry.Amounts, error)) middleware {
		return middleware{name, func(next http.Handler) http.Handler {
			k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: limits, Name: prefix + "-" + name,
				Backend: cr.New(client, cr.Options{})})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = k.Close() })
			return httplimit.Handler(next, httplimit.Options{Keyed: k, Cost: cost})
		}}
	}
	return []middleware{
		{"PeerUlule", ul.Handler},
		floorMiddleware(client, prefix+"-floor"),
		keyed("Concurry", []concurry.Limit{
			concurry.CallLimit{Window: time.Hour, Capacity: generous, Algorithm: concurry.FixedWindow},
		}, nil),
		keyed("Concurry3Limits", []concurry.Limit{
			concurry.CallLimit{Window: time.Hour, Capacity: generous, Algorithm: concurry.FixedWindow},
			concurry.RateLimit{Key: "bytes", Window: time.Hour, Capacity: generous},
			concurry.ResourceLimit{Key: "in_flight", Capacity: 8},
		}, httplimit.CostBodySize("bytes")),
	}
}

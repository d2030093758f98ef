// Package bench holds side-by-side benchmarks of concurry and its peers
// (golang.org/x/time/rate, golang.org/x/sync/semaphore, go-redis/redis_rate,
// alitto/pond, and the HTTP limiters go-chi/httprate, ulule/limiter with its
// memory and Redis stores, and sethvargo/go-limiter). It is a module of its
// own so that the library's go.mod carries no benchmark-only dependencies.
// Run: make bench (the targets, as a ratio table) or make bench-all.
//
// BenchmarkHTTPMiddleware sets httplimit.Handler beside go-chi/httprate,
// ulule/limiter and sethvargo/go-limiter, each limiting requests per client
// IP. The peers keep one rate per key, so the like-for-like row is
// "ConcurryCalls": a Keyed of one CallLimit per identity and the default
// cost; the target "no slower than the fastest peer" is judged on it. The
// "Concurry" row gives every identity three limits (calls, a rate of body
// bytes, 8 requests in flight), which the peers cannot express; it is
// reported beside them, not judged.
package bench

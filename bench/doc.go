// Package bench holds side-by-side benchmarks of concurry and its peers
// (golang.org/x/time/rate, golang.org/x/sync/semaphore, go-redis/redis_rate,
// alitto/pond, and the HTTP limiters go-chi/httprate, ulule/limiter with its
// memory and Redis stores, and sethvargo/go-limiter). It is a module of its
// own so that the library's go.mod carries no benchmark-only dependencies.
// Run: make bench (the targets, as a ratio table) or make bench-all.
package bench
